# Helpers shared by the rules: configuration checks, and which runs each table and figure needs.
from oecl_core.config import PRESETS
from oecl_core.experiments import RUN_FOLDER, RUNS_ROOT, Run, figure_runs, run_inputs, table_runs

PRESET = config["preset"]
if PRESET not in PRESETS:
    raise ValueError(f"config: unknown preset {PRESET!r}; valid choices: {', '.join(PRESETS)}")
DATA_ROOT = config["data_root"]
TRAIN_RESOURCES = config["train_resources"][PRESET]
KEEP_CHECKPOINTS = config.get("keep_checkpoints", True)  # false: a run's checkpoint goes once it is scored
TABLES = config["tables"]
FIGURES = config["figures"]

# Expanded and checked here, before any job runs: a bad data set, method, class or seed list stops Snakemake.
TABLE_RUNS = {name: table_runs(name, table, PRESET) for name, table in TABLES.items()}
FIGURE_RUNS = {name: figure_runs(name, figure, PRESET) for name, figure in FIGURES.items()}


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
