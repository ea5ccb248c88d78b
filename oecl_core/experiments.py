"""Experiment specifications: the pipeline's names for runs, and the expansion of a table's matrix into runs.

A *benchmark spec* names a benchmark plus the run settings that make it a variant, e.g.
    one_vs_rest                          Table I
    one_vs_rest~oe=svhn                  Table IX, SVHN as OE
    few_shot~obtainable=0~shots=1        Table IV, one melanoma image as OE
It is the <benchmark> folder of a run's folder (RUN_FOLDER).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Callable

from .config import IDENTITY_FIELDS, PRESETS, SETTING_TYPES, RunConfig, parse_setting, resolve_config
from .data import BENCHMARKS, get_dataset
from .data.benchmarks import PER_CLASS, oe_pool_empty
from .data.registry import BENCHMARK_OE, is_prepared_set
from .methods import METHODS
from .methods.base import empty_oe_error
from .reference import NOT_REPORTED

SEP = "~"
# The one layout of a run's folder, below a runs root: the pipeline's results/<preset>/runs/ (RUNS_ROOT; its rules
# build their output, log and benchmark paths from RUN_FOLDER) and the `sweep` command's --out folder.
RUN_FOLDER = "{benchmark}/{dataset}/{method}/{cls}/seed{seed}"
RUNS_ROOT = "results/{preset}/runs"


def parse_benchmark_spec(spec: str) -> tuple[str, dict]:
    """'few_shot~shots=1' -> ('few_shot', {'shots': 1}); settings are checked against RunConfig's fields."""
    name, *parts = spec.split(SEP)
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r} in {spec!r}; valid choices: {', '.join(BENCHMARKS)}")
    overrides = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or key not in SETTING_TYPES or key in IDENTITY_FIELDS:
            valid = sorted(k for k in SETTING_TYPES if k not in IDENTITY_FIELDS)
            raise ValueError(f"bad setting {part!r} in benchmark spec {spec!r}; "
                             f"write key=value with a key among {', '.join(valid)}")
        try:
            overrides[key] = parse_setting(key, value)
        except ValueError as err:
            raise ValueError(f"bad setting {part!r} in benchmark spec {spec!r}: {err}") from None
    return name, overrides


def _spec_value(value) -> str:
    """A setting as a spec writes it; a tuple as parse_setting reads it back ('10,15')."""
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def benchmark_spec(name: str, **settings) -> str:
    return SEP.join([name] + [f"{k}={_spec_value(v)}" for k, v in sorted(settings.items())])


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

    @property
    def relative_folder(self) -> str:
        return RUN_FOLDER.format(**asdict(self))

    def folder(self, preset: str) -> str:
        return f"{RUNS_ROOT.format(preset=preset)}/{self.relative_folder}"


def run_config(preset: str, run: Run, **overrides) -> RunConfig:
    """A run's complete settings: resolve_config of its preset, data set and method, with its benchmark spec's
    settings and then `overrides` (None = not given) on top. The CLI's `run` / `train` and the planner both use it."""
    name, settings = parse_benchmark_spec(run.benchmark)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return resolve_config(preset, run.dataset, run.method, benchmark=name, cls=run.cls, seed=run.seed,
                          label=run.benchmark if run.benchmark != name else None, **settings)


@dataclass(frozen=True)
class RunInputs:
    """The data sets one run reads, as its resolved settings name them."""
    dataset: str
    oe: str  # "" when the run reads no OE set: none, or the OE the benchmark builds from the data set itself
    anomaly: str  # "" unless the benchmark tests against another data set's images (unlabeled)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for n in (self.dataset, self.oe, self.anomaly) if n))

    @property
    def to_prepare(self) -> tuple[str, ...]:
        """Those read from <data root>/<name>/, which `python -m oecl_core data prepare <name>` makes."""
        return tuple(n for n in self.names if is_prepared_set(n))


@lru_cache(maxsize=None)  # the planner asks once per training job; resolving is pure
def run_inputs(preset: str, run: Run) -> RunInputs:
    """The data sets `run` reads under `preset`, from the same RunConfig its training job resolves, so the planner
    waits for exactly those (e.g. no ImageNet-22k for a few-shot run, whose OE is the benchmark's own images)."""
    cfg = run_config(preset, run)
    return RunInputs(cfg.dataset, "" if cfg.oe in ("none", BENCHMARK_OE) else cfg.oe, cfg.anomaly)


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


def rows_of_datasets(table: dict, datasets: list[str]) -> dict:
    """A table cut to the rows of `datasets` (in its body and in every per-preset block): config.yaml's `datasets:`,
    e.g. Table I's CIFAR-10 row alone as a first real run."""
    def cut(block: dict) -> dict:
        return {**block, "rows": [r for r in block["rows"] if r["dataset"] in datasets]} if "rows" in block else block

    return {k: cut(v) if k in PRESETS else v for k, v in cut(table).items()}


# `run: paper_ran` on a column: measured in the rows where the paper ran the method itself (and in rows the paper
# has no number for, such as the smoke preset's digits); its quoted cells (* / ‡) stay quoted.
PAPER_RAN = "paper_ran"


def column_runs(column: dict, paper_source: str, preset: str) -> bool:
    """Whether a table cell is trained here: the column's `run` (true / false / paper_ran), its `run_in` (the
    presets it runs under, default all) and the source of the paper's number for the cell ("paper" = the
    authors' own run, "" = the paper has none, "not_reported" = a "×" cell, never run, else quoted)."""
    if preset not in column.get("run_in", [preset]) or paper_source == NOT_REPORTED:
        return False
    run = column.get("run", False)
    if run == PAPER_RAN:
        return paper_source in ("paper", "")
    return bool(run)


def lacks_oe(preset: str, run: Run) -> bool:
    """Whether a run's method is an objective over OE images (Method.oe_optional False) while the run's OE pool is
    empty by construction (few-shot with k = 0): such a cell is not applicable, and train() refuses the run."""
    method = METHODS.get(run.method)
    if method is None or not method.uses_external_oe or method.oe_optional:
        return False
    cfg = run_config(preset, run)
    return cfg.alpha > 0 and oe_pool_empty(cfg)


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
            if not column_runs(column, table_paper_cell(paper, name, row, column, bench)["paper_source"], preset):
                continue
            probe = Run(spec_for_method(spec, column["method"]), row["dataset"], column["method"], 0, 0)
            if lacks_oe(preset, probe):
                if column.get("run") is True:  # asked for explicitly: say so before any job (paper_ran skips it)
                    raise ValueError(f"{where}: {empty_oe_error(run_config(preset, probe))}")
                continue
            methods.append(column["method"])
        if not methods:
            continue  # a row of quoted numbers only
        dataset = row["dataset"]
        get_dataset(dataset)
        classes = row.get("classes", t.get("classes", "all" if bench in PER_CLASS else [0]))
        indices = class_indices(dataset, classes, where)
        if bench in PER_CLASS:
            n = len(get_dataset(dataset).classes())
            bad = [c for c in indices if not 0 <= c < n]
            if bad:
                raise ValueError(f"{where}: class index {bad[0]} out of range for {dataset} (0..{n - 1})")
        for method in dict.fromkeys(methods):
            runs += [Run(spec_for_method(spec, method), dataset, method, c, s) for c in indices for s in seeds]
    return list(dict.fromkeys(runs))


def with_settings(spec: str, **settings) -> str:
    """spec with `settings` (None = not given) set on top of its own."""
    name, current = parse_benchmark_spec(spec)
    current.update({k: v for k, v in settings.items() if v is not None})
    return benchmark_spec(name, **current)


# --- Figure kinds: config.yaml's `figures.<name>.kind` and the runs each plans (figure_runs). The one list of kinds:
# oecl_core.figures.FIGURE_DRAWERS draws the same kinds (tests/test_figures.py checks both agree).
# plan(settings, spec, runs) -> {group: [Run]}: `settings` is the figure's config (preset block applied), `spec` its
# benchmark spec with its `settings`, runs(spec, only_first_seed=False) the figure's runs of one spec.

@dataclass(frozen=True)
class FigureKind:
    plan: Callable[[dict, str, Callable], dict]
    needs: tuple[str, ...] = ()  # config keys the kind requires besides kind and dataset


def _plan_seeds(f, spec, runs) -> dict:
    return {"runs": runs(spec)}


def _plan_warmup(f, spec, runs) -> dict:
    return {"with": runs(spec, True), "without": runs(with_settings(spec, warmup_epochs=0), True)}


def _plan_weights(f, spec, runs) -> dict:
    return {"runs": [r for w in f["weights"] for r in runs(with_settings(spec, uniformity_weight=w))]}


def _plan_size_sweep(f, spec, runs) -> dict:
    # each legend entry is its own benchmark spec (e.g. near vs far OE), run at every training-set size
    return {label: [r for n in f["sizes"] for r in runs(with_settings(group_spec, train_size=n))]
            for label, group_spec in f["groups"].items()}


FIGURE_KINDS: dict[str, FigureKind] = {
    "norms": FigureKind(_plan_seeds),
    "ratio": FigureKind(_plan_seeds),
    "collapse": FigureKind(_plan_seeds),
    "raw_norms": FigureKind(_plan_seeds),
    "weights": FigureKind(_plan_weights, needs=("weights",)),
    "warmup": FigureKind(_plan_warmup),
    "size_sweep": FigureKind(_plan_size_sweep, needs=("sizes", "groups")),
}


def figure_runs(name: str, figure: dict, preset: str) -> dict[str, list[Run]]:
    """The runs behind one figure, grouped by role (e.g. {'runs': [...]} or {'with': [...], 'without': [...]},
    or one group per legend entry of a size sweep), as its kind (FIGURE_KINDS) plans them."""
    f = table_for_preset(figure, preset)
    kind = FIGURE_KINDS.get(f["kind"])
    if kind is None:
        raise ValueError(f"config: figures.{name}.kind {f['kind']!r}; valid choices: {', '.join(FIGURE_KINDS)}")
    missing = [key for key in kind.needs if key not in f]
    if missing:
        raise ValueError(f"config: figures.{name} (kind {f['kind']}) needs {', '.join(missing)}")
    dataset, method = f["dataset"], f.get("method", "oecl")
    get_dataset(dataset)
    if method not in METHODS:
        raise ValueError(f"config: figures.{name}.method {method!r}; valid choices: {', '.join(METHODS)}")
    cls = class_indices(dataset, [f.get("cls", 0)], f"config: figures.{name}")[0]
    seeds = f.get("seeds", [0])
    spec = with_settings(f.get("benchmark", "one_vs_rest"), **f.get("settings", {}))

    def runs(variant: str, only_first_seed: bool = False) -> list[Run]:
        """The figure's runs of one benchmark spec: each seed (or the first), the OE settings dropped where the
        method uses none (spec_for_method), so they coincide with the tables' runs."""
        return [Run(spec_for_method(variant, method), dataset, method, cls, s)
                for s in (seeds[:1] if only_first_seed else seeds)]

    return kind.plan(f, spec, runs)
