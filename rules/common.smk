# Helpers shared by the rules: configuration checks and the list of runs.
from oecl_core.config import PRESETS
from oecl_core.data import BENCHMARKS, DATASETS, get_dataset
from oecl_core.data.registry import PREPARED_OE
from oecl_core.methods import METHODS

PRESET = config["preset"]
DATA_ROOT = config.get("data_root", "data")
if PRESET not in PRESETS:
    raise ValueError(f"config: unknown preset {PRESET!r}; valid choices: {', '.join(PRESETS)}")


def experiment_runs(name, exp):
    """(dataset, benchmark, method, cls, seed) of every run of one experiment block, checked before any job runs."""
    for key in ("dataset", "benchmark", "methods", "classes", "seeds"):
        if key not in exp:
            raise ValueError(f"config: experiments.{name} lacks {key!r}")
    spec = get_dataset(exp["dataset"])
    if exp["benchmark"] not in BENCHMARKS:
        raise ValueError(f"config: experiments.{name}.benchmark {exp['benchmark']!r}; valid choices: {', '.join(BENCHMARKS)}")
    if not isinstance(exp["seeds"], list) or not all(isinstance(s, int) for s in exp["seeds"]):
        raise ValueError(f"config: experiments.{name}.seeds must be a list of integers, got {exp['seeds']!r}")
    n_classes = len(spec.classes())
    classes = range(n_classes) if exp["classes"] == "all" else exp["classes"]
    for cls in classes:
        if not isinstance(cls, int) or not 0 <= cls < n_classes:
            raise ValueError(f"config: experiments.{name}.classes has {cls!r}; valid: 0..{n_classes - 1} or 'all'")
    for method in exp["methods"]:
        if method not in METHODS:
            raise ValueError(f"config: experiments.{name}.methods has {method!r}; valid choices: {', '.join(METHODS)}")
        for cls in classes:
            for seed in exp["seeds"]:
                yield exp["dataset"], exp["benchmark"], method, cls, seed


RUNS = [run for name, exp in config["experiments"].items() for run in experiment_runs(name, exp)]
METRICS = "results/{preset}/runs/{benchmark}/{dataset}/{method}/{cls}/seed{seed}/metrics.json"


def all_metrics(wildcards=None):
    return [
        METRICS.format(preset=PRESET, dataset=d, benchmark=b, method=m, cls=c, seed=s)
        for d, b, m, c, s in RUNS
    ]



def prepared_inputs(dataset, method):
    """Manifests of the prepared data sets a run reads: its own, and its default OE set when that is prepared too."""
    spec = get_dataset(dataset)
    names = [dataset] if spec.prepared else []
    oe = spec.default_oe
    if METHODS[method].uses_external_oe and (oe in PREPARED_OE or (oe in DATASETS and DATASETS[oe].prepared)):
        names.append(oe)
    return [f"{DATA_ROOT}/{name}/manifest.json" for name in names]
