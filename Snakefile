# OECL reproduction pipeline: config -> one training job per run -> aggregated AUROCs.
# Usage: snakemake --cores 2            (the embedded `digits` benchmark with the smoke preset)
# `snakemake --lint` asks for a conda environment per rule; every rule here runs the one installed project
# (environment.yml / pip install -e .), and a per-rule environment would install torch once per rule.
from snakemake.utils import min_version

min_version("9.20")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/datasets.smk"
include: "rules/train.smk"
include: "rules/aggregate.smk"


rule all:
    input:
        f"results/{PRESET}/aggregate/auc.csv",
        f"results/{PRESET}/aggregate/summary.md",
    default_target: True
