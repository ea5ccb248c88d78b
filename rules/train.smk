# One job per (benchmark spec, data set, method, class, seed). Re-running resumes from the run's checkpoint.
from oecl_core.distributed import gpus_for, launcher


rule train_run:
    input:
        prepared_inputs,
    output:
        metrics="results/{preset}/runs/{benchmark}/{dataset}/{method}/{cls}/seed{seed}/metrics.json",
    log:
        "results/{preset}/logs/train/{benchmark}/{dataset}/{method}/{cls}/seed{seed}.log",
    benchmark:
        "results/{preset}/benchmarks/train/{benchmark}/{dataset}/{method}/{cls}/seed{seed}.tsv"
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        data_root=DATA_ROOT,
        launcher=lambda wc, resources: launcher(int(resources.gpu)),  # torchrun, one process per GPU
    threads: TRAIN_RESOURCES["threads"]
    resources:
        gpu=lambda wc: gpus_for(wc.method, TRAIN_RESOURCES["gpu"]),  # > 1 only for methods with multi-process training
        mem_mb=TRAIN_RESOURCES["mem_mb"],
        runtime=TRAIN_RESOURCES["runtime"],
    shell:
        "OECL_DATA={params.data_root} {params.launcher} -m oecl_core run --preset {wildcards.preset}"
        " --dataset {wildcards.dataset} --benchmark '{wildcards.benchmark}' --method {wildcards.method}"
        " --cls {wildcards.cls} --seed {wildcards.seed} --out {params.out} > {log} 2>&1"
