# OECL reproduction pipeline: config -> data preparation -> one training job per run -> tables and figures.
#   snakemake --cores 2 table1 --config preset=smoke     Table I on the embedded digits benchmark (CPU, minutes)
#   snakemake --cores 8 table1                           Table I as the paper states it (GPU; data prepared on demand)
# `snakemake --lint` asks for a conda environment per rule; every rule here runs the one installed project
# (environment.yml / pip install -e .), and a per-rule environment would install torch once per rule.
from snakemake.utils import min_version, validate

min_version("9.20")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


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
