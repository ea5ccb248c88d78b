# One job per (benchmark, dataset, method, class, seed). Re-running resumes from the run's checkpoint.


rule train_run:
    input:
        lambda wc: prepared_inputs(wc.dataset, wc.method),
    output:
        metrics="results/{preset}/runs/{benchmark}/{dataset}/{method}/{cls}/seed{seed}/metrics.json",
    log:
        "results/{preset}/logs/train/{benchmark}/{dataset}/{method}/{cls}/seed{seed}.log",
    benchmark:
        "results/{preset}/benchmarks/train/{benchmark}/{dataset}/{method}/{cls}/seed{seed}.tsv"
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        data_root=DATA_ROOT,
    threads: config.get("train_threads", 1)
    shell:
        "OECL_DATA={params.data_root} python -m oecl_core run --preset {wildcards.preset} --dataset {wildcards.dataset}"
        " --benchmark {wildcards.benchmark} --method {wildcards.method} --cls {wildcards.cls}"
        " --seed {wildcards.seed} --out {params.out} > {log} 2>&1"
