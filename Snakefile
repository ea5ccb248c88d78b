# OECL reproduction pipeline: config -> data preparation -> one training job per run -> tables and figures.
#   snakemake --cores 2 table1 --config preset=smoke     Table I on the embedded digits benchmark (CPU, minutes)
#   snakemake --cores 8 table1                           Table I as the paper states it (GPU; data prepared on demand)
#   snakemake table1 --report report.zip --config preset=smoke   then Snakemake's report of it (captions: report/)
# Every rule names the one environment file (environment.yml), so `--use-conda` builds one environment for all.
import signal
from pathlib import Path

from snakemake.utils import min_version, validate

from oecl_core.schema import check_config_keys

min_version("9.20")


configfile: "config.yaml"


# Snakemake's own report (snakemake --report report.zip): this description, and the tables, figures, ledger and
# report page marked report(...) in rules/, with their captions in report/.
report: "report/workflow.rst"


# A misspelt key (seed: for seeds:) must stop the workflow, not drop a setting: named with the valid keys first,
# then the schema's own checks.
check_config_keys(config, Path(workflow.basedir) / "schemas/config.schema.yaml")
validate(config, "schemas/config.schema.yaml")


# Inside a SLURM job the warning signal (--signal=USR1@N, profiles/slurm) reaches every process of the job step.
# Snakemake's process there would die of it (SIGUSR1's default action) and the job with it, the training orphaned
# mid-step (measured on SLURM 22.05): it ignores the signal, and the training process checkpoints and requeues the job.
if workflow.remote_exec:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


include: "rules/common.smk"
include: "rules/datasets.smk"
include: "rules/train.smk"
include: "rules/aggregate.smk"
include: "rules/tables.smk"
include: "rules/figures.smk"
include: "rules/theorem.smk"
include: "rules/report.smk"


rule all:
    input:
        f"results/{PRESET}/report.md",
    default_target: True
