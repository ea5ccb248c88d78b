# One job per (benchmark spec, data set, method, class, seed). Re-running resumes from the run's checkpoint.
# The run folder is RUNS_ROOT/RUN_FOLDER (oecl_core/experiments.py; its fields are the wildcards), as for the CLI's
# sweep; the log and benchmark files mirror it.
from oecl_core.distributed import gpus_for, launcher


def train_gpus(wildcards):
    return gpus_for(wildcards.method, TRAIN_RESOURCES["gpu"])  # > 1 only for methods with multi-process training


# The GPU model a site asks for (a profile's `default-resources: gpu_model`), only by jobs that get GPUs: given one,
# the SLURM plugin submits a job with no GPU as --gpus=MODEL:0, whose job step then fails ("Step requested GRES but
# job doesn't have GRES"). "" asks for no model.
SITE_DEFAULTS = workflow.resource_settings.default_resources


def train_gpu_model(wildcards, input, attempt):
    model = SITE_DEFAULTS.get("gpu_model") if SITE_DEFAULTS is not None else None
    if not train_gpus(wildcards) or model is None or model.name == "":
        return ""
    # evaluated as Snakemake evaluates a default resource (tests/test_pipeline.py checks both cases)
    return model.evaluate(wildcards, input=input, attempt=attempt, threads=TRAIN_RESOURCES["threads"],
                          rulename="train_run", async_run=workflow.async_run).value or ""


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
    # A run stopped by a signal checkpoints; on SLURM's warning signal it requeues its job, and on SIGTERM (a time
    # limit, a preemption) it exits 75 and the next attempt resumes it (profiles/slurm sets the retries;
    # oecl_core/retry.py). Snakemake empties the log at each start: it holds the last start's.
    # exec: the training process is Snakemake's own child, no shell between them that a signal would kill first.
    shell:
        "OECL_DATA={params.data_root} exec {params.launcher} -m oecl_core run --preset {wildcards.preset}"
        " --dataset {wildcards.dataset} --benchmark '{wildcards.benchmark}' --method {wildcards.method}"
        " --cls {wildcards.cls} --seed {wildcards.seed} --out {params.out} --attempt {resources.attempt}{params.keep}"
        " > {log} 2>&1"
