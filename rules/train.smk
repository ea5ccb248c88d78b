# One job per (benchmark spec, data set, method, class, seed). Re-running resumes from the run's checkpoint.
# The run folder is RUNS_ROOT/RUN_FOLDER (oecl_core/experiments.py; its fields are the wildcards), as for the CLI's
# sweep; the log and the timing file (Snakemake's `benchmark:` record of time and memory) mirror it.
rule train_run:
    input:
        prepared_inputs,
    output:
        metrics=f"{RUNS_ROOT}/{RUN_FOLDER}/metrics.json",
    log:
        f"results/{{preset}}/logs/train/{RUN_FOLDER}.log",
    benchmark:
        f"results/{{preset}}/timings/train/{RUN_FOLDER}.tsv"
    params:
        out=lambda wc, output: os.path.dirname(output.metrics),
        data_root=DATA_ROOT,
        # torchrun (one process per GPU) for several GPUs; behind oecl_core.gpu_slots for any, which takes GPUs no
        # other job holds and sets CUDA_VISIBLE_DEVICES to them (Snakemake's `gpu` resource caps their total but
        # numbers none). A job with no GPU starts as it did.
        launcher=lambda wc, resources: gpu_slots.command(int(resources.gpu), launcher(int(resources.gpu))),
        # keep_checkpoints (config.yaml) is no setting of a run: a function of `output`, so that Snakemake's params
        # trigger, which leaves such parameters out, reruns no job when it changes
        keep=lambda wc, output: "" if KEEP_CHECKPOINTS else " --no-keep-checkpoint",
    threads: TRAIN_RESOURCES["threads"]
    resources:
        gpu=train_gpus,
        gpu_model=train_gpu_model,
        mem_mb=TRAIN_RESOURCES["mem_mb"],
        runtime=TRAIN_RESOURCES["runtime"],
        attempt=lambda wc, attempt: attempt,  # for `run --attempt`: a retry resumes a stopped run, never a failed one
    conda:
        "../environment.yml"
    # A run stopped by a signal checkpoints; on SLURM's warning signal it requeues its job, and on SIGTERM (a time
    # limit, a preemption) it exits 75 and the next attempt resumes it (profiles/slurm sets the retries;
    # oecl_core/retry.py). Snakemake empties the log at each start: it holds the last start's.
    # exec: the training process is Snakemake's own child, no shell between them that a signal would kill first
    # (gpu_slots execs the training in its own place too, holding its GPUs' locks).
    shell:
        "OECL_DATA={params.data_root} exec {params.launcher} -m oecl_core run --preset {wildcards.preset}"
        " --dataset {wildcards.dataset} --benchmark '{wildcards.benchmark}' --method {wildcards.method}"
        " --cls {wildcards.cls} --seed {wildcards.seed} --out {params.out} --attempt {resources.attempt}{params.keep}"
        " > {log} 2>&1"
