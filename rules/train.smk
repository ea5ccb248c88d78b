# One job per (benchmark spec, data set, method, class, seed). Re-running resumes from the run's checkpoint.
# The run folder is RUNS_ROOT/RUN_FOLDER (oecl_core/experiments.py; its fields are the wildcards), as for the CLI's
# sweep; the log and benchmark files mirror it.
from oecl_core.distributed import gpus_for, launcher


rule train_run:
    input:
        prepared_inputs,
    output:
        metrics=f"{RUNS_ROOT}/{RUN_FOLDER}/metrics.json",
    log:
        f"results/{{preset}}/logs/train/{RUN_FOLDER}.log",
    benchmark:
        f"results/{{preset}}/benchmarks/train/{RUN_FOLDER}.tsv"
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
