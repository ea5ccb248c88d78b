"""The paper's figures (Figs. 1-8) drawn from run folders (log.csv, metrics.json) and the aggregate auc.csv.

Every ``fig*`` function returns a :class:`matplotlib.figure.Figure` (no pyplot, no global state) and writes
nothing; :func:`save_figure` writes one as PDF and PNG. When an input a figure needs is absent, the function
raises :class:`MissingFigureData` naming the missing data and the runs / settings that produce it: a figure
is never drawn from placeholder data. FIGURE_DRAWERS (at the end) maps each kind of figure config.yaml can ask for
to the function that draws it; the runs each kind needs are planned in experiments.FIGURE_KINDS.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


class MissingFigureData(FileNotFoundError):
    """An input a figure needs is absent (the message says which, and what produces it)."""


def _read_run(run, metrics: bool = False) -> tuple[pd.DataFrame, dict | None]:
    """(log.csv as a DataFrame, metrics.json as a dict or None) of one run folder."""
    run = Path(run)
    log_path, metrics_path = run / "log.csv", run / "metrics.json"
    if not log_path.is_file():
        raise MissingFigureData(f"{log_path} is missing: the run {run} has not been trained (train it, e.g. "
                                "`python -m oecl_core run ...`, or the pipeline rule that produces this run)")
    log = pd.read_csv(log_path)
    if log.empty:
        raise MissingFigureData(f"{log_path} has no epochs yet: the run {run} has not finished an epoch")
    if not metrics:
        return log, None
    if not metrics_path.is_file():
        raise MissingFigureData(f"{metrics_path} is missing: the run {run} has not been scored yet "
                                "(running it to the end writes metrics.json)")
    return log, json.loads(metrics_path.read_text())


def _labelled(runs, labels, missing: str) -> list[tuple]:
    """(run, legend label) pairs: the given labels, or each run's group label; `missing` is the error for no runs."""
    if not runs:
        raise MissingFigureData(missing)
    labels = list(labels) if labels is not None else [_group_label(r) for r in runs]
    if len(labels) != len(runs):
        raise ValueError(f"{len(labels)} labels for {len(runs)} runs")
    return list(zip(runs, labels))


def _group_label(run: Path) -> str:
    """Default label: runs .../<cls>/seed<k> of the same class share a label (so seeds are averaged)."""
    run = Path(run)
    return f"class {run.parent.name}" if run.name.startswith("seed") else run.name


def _plot_band(ax, logs: list[pd.DataFrame], column: str, **style) -> list[float]:
    """Plots column vs epoch: one run as a line, several as the mean with a shaded min-max band.
    Returns the finite plotted values (to choose the y scale)."""
    frames = [lg[["epoch", column]].dropna() for lg in logs]
    stats = pd.concat(frames).groupby("epoch")[column].agg(["mean", "min", "max"])
    line, = ax.plot(stats.index, stats["mean"], **style)
    if len(logs) > 1:
        ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2, linewidth=0)
    return [v for v in stats["min"].tolist() + stats["max"].tolist() if math.isfinite(v)]


def _log_y_if_wide(ax, values) -> None:
    """Log-scaled y axis when the (positive) values span more than 100x."""
    values = [v for v in values if v > 0]
    if values and max(values) > 100 * min(values):
        ax.set_yscale("log")


def _norm_figure(runs, labels, title: str, method_hint: str) -> Figure:
    runs = [Path(r) for r in runs]
    pairs = _labelled(runs, labels, f"no runs given: {title} needs at least one {method_hint} run folder")
    groups: dict[str, list[pd.DataFrame]] = {}
    for run, label in pairs:
        log, _ = _read_run(run)
        if not log["norm_id"].notna().any() or not log["norm_ood"].notna().any():
            raise MissingFigureData(f"{run}/log.csv has no finite norm_id / norm_ood values: the run logs no "
                                    "held-out OOD probe (needs log_samples > 0 and a split with OOD test images)")
        groups.setdefault(label, []).append(log)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    values: list[float] = []
    for i, (label, logs) in enumerate(groups.items()):
        color = f"C{i}"
        values += _plot_band(ax, logs, "norm_id", color=color, linestyle="-", label=f"{label}: normal")
        values += _plot_band(ax, logs, "norm_ood", color=color, linestyle="--", label=f"{label}: OOD")
    _log_y_if_wide(ax, values)
    ax.set(xlabel="epoch", ylabel=r"mean $\ell_2$-norm $\|f(x)\|$", title=title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def fig1_norms(runs, labels=None) -> Figure:
    """Paper Fig. 1: mean ||f(x)|| of normal (norm_id) and OOD (norm_ood) samples vs epoch, training SimCLR
    on normal samples only. Runs sharing a label (default: runs of the same class, i.e. seeds) are drawn as
    their mean with a shaded min-max band; normal solid, OOD dashed."""
    return _norm_figure(runs, labels, r"Fig. 1: $\ell_2$-norm of contrastive features (SimCLR)", "simclr")


def fig5_raw_norms(runs, labels=None) -> Figure:
    """Paper Fig. 5: as Fig. 1 for training without l2-normalisation (method align_uniform_raw, z(x) = f(x))."""
    return _norm_figure(runs, labels, r"Fig. 5: $\ell_2$-norm of features, trained without $\ell_2$-normalisation",
                        "align_uniform_raw")


def fig2_ratio(runs, labels=None) -> Figure:
    """Paper Fig. 2: mu/sigma_v (left) and sigma_v (right) of normal (id) and OOD samples vs epoch, from the
    epochs where the augmentation statistics were logged (rows with finite mu_id; RunConfig.aug_stats_every > 0).
    Runs sharing a label are averaged with a min-max band, as in Fig. 1."""
    runs = [Path(r) for r in runs]
    pairs = _labelled(runs, labels, "no runs given: Fig. 2 needs simclr runs trained with aug_stats_every > 0")
    groups: dict[str, list[pd.DataFrame]] = {}
    for run, label in pairs:
        log, _ = _read_run(run)
        cols = ["mu_id", "sigma_v_id", "mu_ood", "sigma_v_ood"]
        if any(c not in log for c in cols) or not np.isfinite(log["mu_id"].to_numpy(float)).any():
            raise MissingFigureData(f"{run}/log.csv has no augmentation statistics (mu_id is nan on every epoch): "
                                    "Fig. 2 needs runs trained with aug_stats_every > 0 (--aug-stats-every 10, "
                                    "or the benchmark spec NAME~aug_stats_every=10)")
        log = log[np.isfinite(log["mu_id"].to_numpy(float))].copy()
        log["ratio_id"], log["ratio_ood"] = log["mu_id"] / log["sigma_v_id"], log["mu_ood"] / log["sigma_v_ood"]
        groups.setdefault(label, []).append(log)
    fig = Figure(figsize=(10, 4))
    axes = [fig.add_subplot(1, 2, k) for k in (1, 2)]
    for ax, (key, name) in zip(axes, [("ratio", r"$\mu / \sigma_V$"), ("sigma_v", r"$\sigma_V$")]):
        values: list[float] = []
        for i, (label, logs) in enumerate(groups.items()):
            prefix = "" if len(groups) == 1 else f"{label}: "
            values += _plot_band(ax, logs, f"{key}_id", color=f"C{i}", linestyle="-", marker=".",
                                 label=f"{prefix}normal")
            values += _plot_band(ax, logs, f"{key}_ood", color=f"C{i}", linestyle="--", marker=".",
                                 label=f"{prefix}OOD")
        _log_y_if_wide(ax, values)
        ax.set(xlabel="epoch", ylabel=name, title=f"Fig. 2: {name} of augmented views")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _variant_tokens(row) -> set[str]:
    """The tokens a row of auc.csv matches: its benchmark's parts ('name', 'key=value', ...) and
    method=/oe=/dataset=."""
    tokens = set(str(row["benchmark"]).split("~"))
    tokens |= {f"{k}={row[k]}" for k in ("method", "oe", "dataset") if k in row and pd.notna(row[k])}
    return tokens


def fig_size_sweep(auc: pd.DataFrame, score: str, groups: dict[str, str], title: str | None = None) -> Figure:
    """Paper Figs. 3 and 7: AUROC (%) of `score` vs training-set size, one error-bar line per OE setting.

    groups maps a legend label to a pattern selecting rows of auc by their `benchmark`: a row matches when
    every '~'-separated part of the pattern (the benchmark name,
    'key=value' variants, or method=/oe=/dataset= for those columns) is one of the row's parts, in any order
    (so 'diminishing~oe=benchmark' matches 'diminishing~train_size=500~oe=benchmark'). The size is read from
    `train_size=N` in the benchmark. Only runs with status "ok" count. Per size: the mean over seeds and classes;
    error bars: the std (ddof=0) over seeds of the per-seed mean over classes. Log x when sizes span > 10x.
    """
    if "score" not in auc or score not in set(auc["score"]):
        raise MissingFigureData(f"auc.csv has no rows with score {score!r} (scores present: "
                                f"{sorted(set(auc.get('score', [])))}); aggregate the size-sweep runs first")
    rows = auc[auc["score"] == score]
    rows = rows[rows["status"] == "ok"] if "status" in rows else rows
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    all_sizes: list[int] = []
    for label, pattern in groups.items():
        parts = set(pattern.split("~"))
        # whole tokens only: 'oe=sample_photos' must not match 'oe=sample_photos_digit_like'
        hit = rows[[parts <= _variant_tokens(r) for _, r in rows.iterrows()]]
        if hit.empty:
            raise MissingFigureData(f"auc.csv has no finished (status ok) runs with score {score!r} for {label!r} "
                                    f"(benchmark pattern {pattern!r}): run the size-sweep benchmark variants "
                                    f"'{pattern}~train_size=N' and aggregate them into auc.csv")
        size = hit["benchmark"].astype(str).str.extract(r"(?:^|~)train_size=(\d+)(?:~|$)")[0]
        if size.isna().any():
            bad = sorted(set(hit.loc[size.isna(), "benchmark"]))
            raise MissingFigureData(f"{label!r}: benchmark(s) {bad} carry no train_size=N variant, so their "
                                    "training-set size is unknown; run them as '<benchmark>~train_size=N'")
        hit = hit.assign(size=size.astype(int), auroc=100 * hit["auroc"].astype(float))
        per_seed = hit.groupby(["size", "seed"])["auroc"].mean()  # mean over classes
        stats = per_seed.groupby("size").agg(["mean", lambda s: s.std(ddof=0)]).sort_index()
        stats.columns = ["mean", "std"]
        ax.errorbar(stats.index.to_numpy(), stats["mean"].to_numpy(), yerr=stats["std"].to_numpy(), marker="o",
                    capsize=3, label=label)
        all_sizes += stats.index.tolist()
    if max(all_sizes) > 10 * min(all_sizes):
        ax.set_xscale("log")
    ticks = sorted(set(all_sizes))
    ax.set_xticks(ticks, [str(t) for t in ticks], minor=False)
    ax.minorticks_off()
    ax.set(xlabel="training-set size (normal images)", ylabel=f"AUROC (%), score {score}",
           title=title or "Figs. 3 / 7: AUROC vs training-set size, near vs far OE")
    ax.legend()
    fig.tight_layout()
    return fig


def _mark_warmup(axes, log: pd.DataFrame) -> None:
    """A dashed vertical line on each axis at the first epoch with alpha > 0 (the end of the warm-up)."""
    on = log.loc[log["alpha"] > 0, "epoch"]
    for k, ax in enumerate(axes if len(on) else []):
        ax.axvline(float(on.iloc[0]), color="gray", linestyle="--", linewidth=1,
                   label="end of warm-up (alpha > 0)" if k == 0 else None)


def _need_oe(run, log: pd.DataFrame, fig: str) -> None:
    if not log["norm_oe"].notna().any():
        raise MissingFigureData(f"{run}/log.csv has no norm_oe values: {fig} needs a run trained with OE "
                                "(method oecl or self_oecl)")


def fig4_collapse(run) -> Figure:
    """Paper Fig. 4: training loss (left) and the norms of ID (norm_id) and OE (norm_oe) samples (right) vs epoch
    of one run (self-OECL on a rotation-invariant class, e.g. Raabin-WBC monocyte), with a dashed line where alpha
    first becomes > 0 (the end of the warm-up) and a note when the last epoch is flagged collapsed."""
    run = Path(run)
    log, _ = _read_run(run)
    _need_oe(run, log, "Fig. 4")
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_norm = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax_loss.plot(log["epoch"], log["loss"], color="C0", label="training loss")
    ax_norm.plot(log["epoch"], log["norm_id"], color="C1", label="ID (training) samples")
    ax_norm.plot(log["epoch"], log["norm_oe"], color="C2", label="OE samples")
    _log_y_if_wide(ax_norm, log[["norm_id", "norm_oe"]].stack().tolist())
    _mark_warmup([ax_loss, ax_norm], log)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Fig. 4: training loss")
    ax_norm.set(xlabel="epoch", ylabel=r"mean $\ell_2$-norm $\|f(x)\|$", title=r"Fig. 4: $\ell_2$-norm of ID and OE")
    for ax in (ax_loss, ax_norm):
        ax.legend(fontsize="small")
    if "collapsed" in log and int(log["collapsed"].iloc[-1]) == 1:
        fig.text(0.5, 0.01, "collapsed: the ID feature norm fell to the OE norm (trivial features)",
                 ha="center", va="bottom", color="C3")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def fig6_weights(runs) -> Figure:
    """Paper Fig. 6: runs of align_uniform differing in settings.uniformity_weight (metrics.json): (a) the final
    norm_id and norm_ood (last log.csv row) vs the weight; (b) AUROC (s_mu, %) vs the weight. Runs with the same
    weight (seeds) are averaged. The paper also plots L_align and exp(L_uniform); they are not logged here, so
    they are left out."""
    rows = []
    for run in map(Path, runs):
        log, m = _read_run(run, metrics=True)
        weight = m.get("settings", {}).get("uniformity_weight")
        s_mu = m.get("auroc", {}).get("s_mu")
        if weight is None or s_mu is None or not math.isfinite(float(s_mu)):
            raise MissingFigureData(f"{run}/metrics.json lacks settings.uniformity_weight or a finite auroc.s_mu: "
                                    "Fig. 6 needs scored align_uniform runs")
        last = log.iloc[-1]
        rows.append(dict(weight=float(weight), norm_id=last["norm_id"], norm_ood=last["norm_ood"],
                         auroc=100 * float(s_mu)))
    table = pd.DataFrame(rows, columns=["weight", "norm_id", "norm_ood", "auroc"])
    if table["weight"].nunique() < 2:
        raise MissingFigureData(f"Fig. 6 needs runs with at least two different uniformity_weight values, got "
                                f"{sorted(table['weight'].unique())}: run align_uniform with --uniformity-weight w "
                                "for several w")
    stats = table.groupby("weight").mean().sort_index()
    fig = Figure(figsize=(10, 4))
    ax_a, ax_b = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax_a.plot(stats.index, stats["norm_id"], marker="o", label="normal")
    ax_a.plot(stats.index, stats["norm_ood"], marker="s", linestyle="--", label="OOD")
    _log_y_if_wide(ax_a, stats[["norm_id", "norm_ood"]].stack().tolist())
    ax_b.plot(stats.index, stats["auroc"], marker="o", color="C3", label=r"AUROC ($s_\mu$)")
    ax_a.set(xlabel=r"uniformity weight $\alpha$", ylabel=r"final mean $\ell_2$-norm",
             title=r"Fig. 6(a): $\ell_2$-norm vs weight")
    ax_b.set(xlabel=r"uniformity weight $\alpha$", ylabel="AUROC (%)", title="Fig. 6(b): AUROC vs weight")
    for ax in (ax_a, ax_b):
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def fig8_warmup(with_warmup_run, without_warmup_run) -> Figure:
    """Paper Fig. 8: training loss (left) and the norms of training (norm_id, solid) and OE (norm_oe, dashed)
    samples (right) vs epoch for OECL with and without warm-up; a dashed line marks the end of the warm-up of the first
    run."""
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_norm = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    values: list[float] = []
    for i, (run, name) in enumerate([(with_warmup_run, "with warm-up"), (without_warmup_run, "without warm-up")]):
        log, _ = _read_run(run)
        _need_oe(run, log, "Fig. 8")
        ax_loss.plot(log["epoch"], log["loss"], color=f"C{i}", label=name)
        ax_norm.plot(log["epoch"], log["norm_id"], color=f"C{i}", linestyle="-", label=f"{name}: training")
        ax_norm.plot(log["epoch"], log["norm_oe"], color=f"C{i}", linestyle="--", label=f"{name}: OE")
        values += log[["norm_id", "norm_oe"]].stack().tolist()
        if i == 0:
            _mark_warmup([ax_loss, ax_norm], log)
    _log_y_if_wide(ax_norm, values)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Fig. 8: training loss")
    ax_norm.set(xlabel="epoch", ylabel=r"mean $\ell_2$-norm $\|f(x)\|$",
                title=r"Fig. 8: $\ell_2$-norm of training and OE")
    for ax in (ax_loss, ax_norm):
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, out_stem) -> list[Path]:
    """Writes <out_stem>.pdf and <out_stem>.png (dpi 150) atomically, creating the folder. Returns the paths."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in ("pdf", "png"):
        path = out_stem.with_name(out_stem.name + f".{fmt}")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fig.savefig(tmp, format=fmt, dpi=150)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(path)
    return written


# --- Drawers: config.yaml's `figures.<name>.kind` -> the function workflow_scripts/figure.py draws it with. The kinds
# and the runs each plans live in experiments.FIGURE_KINDS (the planner's side); tests/test_figures.py checks that
# both name the same kinds. draw(groups, settings, name) -> Figure: groups maps each planned group to its run folders,
# settings is the figure's config (preset block applied).


def _draw_size_sweep(groups, f, name) -> Figure:
    from .aggregate import collect

    auc = collect([Path(run) / "metrics.json" for folders in groups.values() for run in folders])
    return fig_size_sweep(auc, f.get("score", "s_mu"), f["groups"], title=f"{name}: AUROC vs training-set size")


FIGURE_DRAWERS: dict[str, Callable[[dict, dict, str], Figure]] = {
    "norms": lambda g, f, name: fig1_norms(g["runs"]),
    "ratio": lambda g, f, name: fig2_ratio(g["runs"]),
    "collapse": lambda g, f, name: fig4_collapse(g["runs"][0]),
    "raw_norms": lambda g, f, name: fig5_raw_norms(g["runs"]),
    "weights": lambda g, f, name: fig6_weights(g["runs"]),
    "warmup": lambda g, f, name: fig8_warmup(g["with"][0], g["without"][0]),
    "size_sweep": _draw_size_sweep,
}
