# Helpers shared by the rules: configuration checks, and which runs each table and figure needs.
from oecl_core.config import PRESETS
from oecl_core.data import DATASETS, get_dataset
from oecl_core.data.registry import PREPARED_OE
from oecl_core.experiments import figure_runs, parse_benchmark_spec, table_runs
from oecl_core.methods import METHODS

PRESET = config["preset"]
if PRESET not in PRESETS:
    raise ValueError(f"config: unknown preset {PRESET!r}; valid choices: {', '.join(PRESETS)}")
DATA_ROOT = config["data_root"]
TRAIN_RESOURCES = config["train_resources"][PRESET]
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


def _is_prepared_set(name):
    return name in PREPARED_OE or (name in DATASETS and DATASETS[name].prepared)


def prepared_inputs(wildcards):
    """Manifests of the prepared data sets a run reads: its own, its OE set and its anomaly set."""
    spec = get_dataset(wildcards.dataset)
    _, settings = parse_benchmark_spec(wildcards.benchmark)
    names = [wildcards.dataset] if spec.prepared else []
    if METHODS[wildcards.method].uses_external_oe:
        names.append(settings.get("oe", spec.default_oe))
    names.append(settings.get("anomaly", ""))
    return [f"{DATA_ROOT}/{n}/manifest.json" for n in dict.fromkeys(names) if _is_prepared_set(n)]
