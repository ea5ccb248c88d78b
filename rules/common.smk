# Helpers shared by the rules: configuration checks, and which runs each table and figure needs.
import re

from oecl_core.config import PRESETS
from oecl_core import gpu_slots
from oecl_core.distributed import gpus_for, launcher
from oecl_core.data import get_dataset
from oecl_core.experiments import RUN_FOLDER, RUNS_ROOT, Run, figure_runs, rows_of_datasets, run_inputs, table_runs

PRESET = config["preset"]
if PRESET not in PRESETS:
    raise ValueError(f"config: unknown preset {PRESET!r}; valid choices: {', '.join(PRESETS)}")
DATA_ROOT = config["data_root"]
TRAIN_RESOURCES = config["train_resources"][PRESET]
KEEP_CHECKPOINTS = config.get("keep_checkpoints", True)  # false: a run's checkpoint goes once it is scored
TABLES = config["tables"]
if config.get("datasets"):  # only these data sets' rows, e.g. --config 'datasets=[cifar10]'
    for _dataset in config["datasets"]:
        try:
            get_dataset(_dataset)
        except ValueError as error:
            raise ValueError(f"config: datasets: {error}") from None
    TABLES = {name: rows_of_datasets(table, config["datasets"]) for name, table in TABLES.items()}
FIGURES = config["figures"]

# Expanded and checked here, before any job runs: a bad data set, method, class or seed list stops Snakemake.
TABLE_RUNS = {name: table_runs(name, table, PRESET) for name, table in TABLES.items()}
FIGURE_RUNS = {name: figure_runs(name, figure, PRESET) for name, figure in FIGURES.items()}


def one_of(names):
    """A wildcard constraint matching exactly these names (config.yaml's tables or figures): the names are defined
    there alone, and adding Table X to config.yaml needs no pattern here. None given: a pattern that matches nothing."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def metrics_files(runs):
    return [os.path.join(run.folder(PRESET), "metrics.json") for run in runs]


def all_runs():
    runs = [r for rs in TABLE_RUNS.values() for r in rs]
    runs += [r for groups in FIGURE_RUNS.values() for rs in groups.values() for r in rs]
    return list(dict.fromkeys(runs))


def prepared_inputs(wildcards):
    """Manifests of the prepared data sets a run reads (experiments.run_inputs: its own, its OE and anomaly sets)."""
    run = Run(wildcards.benchmark, wildcards.dataset, wildcards.method, int(wildcards.cls), int(wildcards.seed))
    return [f"{DATA_ROOT}/{name}/manifest.json" for name in run_inputs(wildcards.preset, run).to_prepare]


def table_report(path, kind):
    """A table file (kind: Markdown, LaTeX, ...) as an item of Snakemake's report, under Tables / tableN."""
    return report(path, caption="../report/table.rst", category="Tables", subcategory="{name}",
                  labels={"table": "{name}", "file": kind})


# Training jobs' resources (rules/train.smk).


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
