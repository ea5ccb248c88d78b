"""Experiment specifications: the pipeline's names for runs, and the expansion of a table's matrix into runs.

A *benchmark spec* names a benchmark plus the run settings that make it a variant, e.g.
    one_vs_rest                          Table I
    one_vs_rest~oe=svhn                  Table IX, SVHN as OE
    few_shot~obtainable=0~shots=1        Table IV, one melanoma image as OE
It is the <benchmark> folder of results/<preset>/runs/<benchmark>/<dataset>/<method>/<cls>/seed<seed>/.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from .config import RunConfig
from .data import BENCHMARKS, get_dataset
from .methods import METHODS

SEP = "~"
_TYPES = {f.name: f.type for f in fields(RunConfig)}


def _cast(key: str, value: str):
    kind = _TYPES[key]
    if kind in ("int", int):
        return int(value)
    if kind in ("float", float):
        return float(value)
    if kind in ("bool", bool):
        return value.lower() in ("1", "true", "yes")
    return value


def parse_benchmark_spec(spec: str) -> tuple[str, dict]:
    """'few_shot~shots=1' -> ('few_shot', {'shots': 1}); settings are checked against RunConfig's fields."""
    name, *parts = spec.split(SEP)
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r} in {spec!r}; valid choices: {', '.join(BENCHMARKS)}")
    overrides = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or key not in _TYPES or key in ("benchmark", "dataset", "method", "cls", "seed", "preset", "label"):
            valid = sorted(k for k in _TYPES if k not in ("benchmark", "dataset", "method", "cls", "seed", "preset", "label"))
            raise ValueError(f"bad setting {part!r} in benchmark spec {spec!r}; write key=value with a key among {', '.join(valid)}")
        overrides[key] = _cast(key, value)
    return name, overrides


def benchmark_spec(name: str, **settings) -> str:
    return SEP.join([name] + [f"{k}={v}" for k, v in sorted(settings.items())])


OE_SETTINGS = ("oe", "oe_count")


def spec_for_method(spec: str, method: str) -> str:
    """The spec a method's run really needs: OE settings are dropped for methods that use no external OE, so
    e.g. SimCLR is trained once for a table whose rows differ only in their OE set."""
    if METHODS[method].uses_external_oe if method in METHODS else True:
        return spec
    name, settings = parse_benchmark_spec(spec)
    return benchmark_spec(name, **{k: v for k, v in settings.items() if k not in OE_SETTINGS})


@dataclass(frozen=True)
class Run:
    benchmark: str  # spec
    dataset: str
    method: str
    cls: int
    seed: int

    def folder(self, preset: str) -> str:
        return f"results/{preset}/runs/{self.benchmark}/{self.dataset}/{self.method}/{self.cls}/seed{self.seed}"


def class_indices(dataset: str, classes, where: str) -> list[int]:
    """'all', a list of indices, or a list of class names -> indices, with errors that list the valid choices."""
    if classes == "all":
        return list(range(len(get_dataset(dataset).classes())))
    if not isinstance(classes, list):
        raise ValueError(f"{where}: classes must be 'all' or a list, got {classes!r}")
    names = None
    out = []
    for c in classes:
        if isinstance(c, str):
            names = names or get_dataset(dataset).classes()
            if c not in names:
                raise ValueError(f"{where}: class {c!r} is not a class of {dataset}; valid choices: {', '.join(names)}")
            out.append(names.index(c))
        elif isinstance(c, int):
            out.append(c)
        else:
            raise ValueError(f"{where}: class {c!r} must be an index or a name")
    return out


def table_for_preset(table: dict, preset: str) -> dict:
    """A table's settings with its per-preset block (e.g. `smoke:`) applied on top."""
    merged = {k: v for k, v in table.items() if k not in ("smoke", "paper", "official")}
    merged.update(table.get(preset, {}) or {})
    return merged


# `run: paper_ran` on a column: measured in the rows where the paper ran the method itself (and in rows the paper
# has no number for, such as the smoke preset's digits); its quoted cells (* / ‡) stay quoted.
PAPER_RAN = "paper_ran"


def column_runs(column: dict, paper_source: str, preset: str) -> bool:
    """Whether a table cell is trained here: the column's `run` (true / false / paper_ran), its `run_in` (the
    presets it runs under, default all) and the source of the paper's number for the cell ("paper" = the
    authors' own run, "" = the paper has none, else quoted)."""
    if preset not in column.get("run_in", [preset]):
        return False
    run = column.get("run", False)
    if run == PAPER_RAN:
        return paper_source in ("paper", "")
    return bool(run)


def table_paper_cell(paper, name: str, row: dict, column: dict, bench: str) -> dict:
    """The paper's cell (reference.paper_cell: value, std, source ("" where the paper has none), mark) for one row
    and column of table `name`, keyed by the row's and column's `setting`, `paper_dataset` and `paper_method`."""
    from .reference import paper_cell, roman

    setting = "|".join(s for s in (row.get("setting", ""), column.get("setting", "")) if s)
    dataset = column.get("paper_dataset", row.get("paper_dataset", row["dataset"]))
    return paper_cell(paper, roman(name), dataset, column.get("paper_method", column["method"]), setting, bench)


def table_runs(name: str, table: dict, preset: str) -> list[Run]:
    """Every run a table needs under a preset: rows x columns marked run x classes x seeds."""
    from .reference import load_paper_tables

    t = table_for_preset(table, preset)
    paper = load_paper_tables()
    seeds = t.get("seeds", [0])
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"config: tables.{name}.seeds must be a list of integers, got {seeds!r}")
    runs: list[Run] = []
    for i, row in enumerate(t.get("rows", [])):
        where = f"config: tables.{name}.rows[{i}]"
        spec = row.get("benchmark", t.get("benchmark", "one_vs_rest"))
        bench, _ = parse_benchmark_spec(spec)
        methods = []
        for column in t.get("columns", []):
            if column.get("run") not in (True, False, None, PAPER_RAN):
                raise ValueError(f"config: tables.{name}: column {column['method']!r} has run: {column['run']!r}; "
                                 f"valid choices: true, false, {PAPER_RAN}")
            if column.get("run") and column["method"] not in METHODS:
                raise ValueError(f"config: tables.{name}: column {column['method']!r} is marked run but no such method "
                                 f"is implemented; methods that run here: {', '.join(METHODS)}")
            if column_runs(column, table_paper_cell(paper, name, row, column, bench)["paper_source"], preset):
                methods.append(column["method"])
        if not methods:
            continue  # a row of quoted numbers only
        dataset = row["dataset"]
        get_dataset(dataset)
        classes = row.get("classes", t.get("classes", "all" if bench in ("one_vs_rest", "leave_one_out") else [0]))
        indices = class_indices(dataset, classes, where)
        if bench in ("one_vs_rest", "leave_one_out"):
            n = len(get_dataset(dataset).classes())
            bad = [c for c in indices if not 0 <= c < n]
            if bad:
                raise ValueError(f"{where}: class index {bad[0]} out of range for {dataset} (0..{n - 1})")
        for method in dict.fromkeys(methods):
            runs += [Run(spec_for_method(spec, method), dataset, method, c, s) for c in indices for s in seeds]
    return list(dict.fromkeys(runs))


def _with_settings(spec: str, **settings) -> str:
    name, current = parse_benchmark_spec(spec)
    current.update({k: v for k, v in settings.items() if v is not None})
    return benchmark_spec(name, **current)


def figure_runs(name: str, figure: dict, preset: str) -> dict[str, list[Run]]:
    """The runs behind one figure, grouped by role (e.g. {'runs': [...]} or {'with': [...], 'without': [...]},
    or one group per legend entry of a size sweep). Figure kinds: see oecl_core/figures.py."""
    f = table_for_preset(figure, preset)
    dataset, method = f["dataset"], f.get("method", "oecl")
    get_dataset(dataset)
    if method not in METHODS:
        raise ValueError(f"config: figures.{name}.method {method!r}; valid choices: {', '.join(METHODS)}")
    spec = f.get("benchmark", "one_vs_rest")
    cls = class_indices(dataset, [f.get("cls", 0)], f"config: figures.{name}")[0]
    seeds = f.get("seeds", [0])
    kind = f["kind"]
    if kind in ("norms", "ratio", "collapse", "raw_norms"):
        return {"runs": [Run(_with_settings(spec, **f.get("settings", {})), dataset, method, cls, s) for s in seeds]}
    if kind == "warmup":
        return {"with": [Run(spec, dataset, method, cls, seeds[0])],
                "without": [Run(_with_settings(spec, warmup_epochs=0), dataset, method, cls, seeds[0])]}
    if kind == "weights":
        return {"runs": [Run(_with_settings(spec, uniformity_weight=w), dataset, method, cls, s)
                         for w in f["weights"] for s in seeds]}
    if kind == "size_sweep":
        groups = {}
        for label, group_spec in f["groups"].items():
            groups[label] = [Run(spec_for_method(_with_settings(group_spec, train_size=n), method), dataset, method, cls, s)
                             for n in f["sizes"] for s in seeds]
        return groups
    raise ValueError(f"config: figures.{name}.kind {kind!r}; valid choices: norms, ratio, collapse, raw_norms, warmup, "
                     "weights, size_sweep")


def run_config(preset: str, run: Run, **overrides) -> RunConfig:
    """The settings a pipeline run trains with: what its job (`python -m oecl_core run --preset P --dataset D
    --benchmark SPEC --method M --cls C --seed S`) resolves, for the planner (tests/test_plan.py checks they agree).
    overrides: further settings (None values are ignored)."""
    from .config import resolve_config

    benchmark, settings = parse_benchmark_spec(run.benchmark)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return resolve_config(preset, run.dataset, run.method, cls=run.cls, seed=run.seed, oe=settings.pop("oe", None),
                          benchmark=benchmark, label=run.benchmark if "~" in run.benchmark else None, **settings)
