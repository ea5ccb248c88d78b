"""Figures from synthetic run folders and a synthetic auc.csv (no training)."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from oecl_core import figures as F

NAN = float("nan")


def make_run(root, cls=0, seed=0, epochs=20, oe=True, aug_every=0, warmup=5, weight=0.5, s_mu=0.8, collapsed=False,
             metrics=True, scale=1.0):
    run = root / str(cls) / f"seed{seed}"
    run.mkdir(parents=True)
    rows = []
    for e in range(epochs):
        stats = e % aug_every == 0 if aug_every else False
        rows.append(dict(epoch=e, loss=5 - e / epochs, lr=0.1, alpha=0.0 if e < warmup else 1.0,
                         norm_id=scale * (10 + e + seed), norm_oe=(2 + e / 10) if oe else NAN,
                         norm_ood=scale * (8 + e / 2),
                         seconds=1.0, images_per_s=100.0, collapsed=int(collapsed and e == epochs - 1),
                         mu_id=5 + e if stats else NAN, sigma_id=1.0 if stats else NAN,
                         sigma_v_id=0.5 if stats else NAN, mu_ood=3 + e / 2 if stats else NAN,
                         sigma_ood=1.0 if stats else NAN, sigma_v_ood=0.6 if stats else NAN))
    pd.DataFrame(rows).to_csv(run / "log.csv", index=False)
    if metrics:
        (run / "metrics.json").write_text(json.dumps({
            "auroc": {"s_l2": 0.7, "s_l2_ens": 0.72, "s_mu": s_mu, "sim_s_mu": 0.75}, "status": "ok",
            "settings": {"dataset": "digits", "method": "align_uniform", "cls": cls, "seed": seed, "train_size": 0,
                         "oe": "", "warmup_epochs": warmup, "uniformity_weight": weight}}))
    return run


def lines_with_label(ax):
    return [ln for ln in ax.get_lines()
            if not ln.get_label().startswith("_") and not ln.get_label().startswith("end of warm-up")]


def test_fig1_groups_seeds_and_labels(tmp_path):
    runs = [make_run(tmp_path / "a", cls=0, seed=s) for s in (0, 1)] + [make_run(tmp_path / "b", cls=3, seed=0)]
    fig = F.fig1_norms(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    labels = sorted(ln.get_label() for ln in ax.get_lines())
    assert labels == ["class 0: OOD", "class 0: normal", "class 3: OOD", "class 3: normal"]
    assert len(ax.collections) == 2  # min-max bands for the two-seed label only
    mean = [ln for ln in ax.get_lines() if ln.get_label() == "class 0: normal"][0]
    assert np.allclose(mean.get_ydata(), 10.5 + np.arange(20))
    assert "Fig. 1" in ax.get_title() and ax.get_yscale() == "linear"
    fig = F.fig1_norms(runs[:2], labels=["x", "y"])
    assert len(fig.axes[0].get_lines()) == 4 and not fig.axes[0].collections


def test_fig5_log_scale_when_norms_span_orders(tmp_path):
    fig = F.fig5_raw_norms([make_run(tmp_path, scale=1.0), make_run(tmp_path / "b", scale=1000.0)],
                           labels=["1", "1000"])
    ax = fig.axes[0]
    assert "Fig. 5" in ax.get_title() and ax.get_yscale() == "log" and len(ax.get_lines()) == 4


def test_fig2_ratio_uses_logged_epochs_only(tmp_path):
    fig = F.fig2_ratio([make_run(tmp_path, aug_every=5)])
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert len(ax.get_lines()) == 2
        assert list(ax.get_lines()[0].get_xdata()) == [0, 5, 10, 15]
    assert np.allclose(fig.axes[0].get_lines()[0].get_ydata(), (5 + np.array([0, 5, 10, 15])) / 0.5)


def test_fig2_without_aug_stats_says_how_to_get_them(tmp_path):
    with pytest.raises(F.MissingFigureData, match="aug_stats_every"):
        F.fig2_ratio([make_run(tmp_path)])


def auc_table():
    rows = []
    for _label, oe, base in [("near", "benchmark", 0.9), ("far", "sample_photos", 0.8), ("none", "none", 0.7)]:
        for size in (2000, 50, 500):
            for seed in (0, 1):
                for cls in (0, 1):
                    for score in ("s_l2", "s_mu"):
                        rows.append(dict(preset="smoke", benchmark=f"diminishing~train_size={size}~oe={oe}",
                                         dataset="digits", method="oecl", cls=cls, seed=seed, score=score,
                                         auroc=base + 0.01 * seed + 0.001 * cls, status="ok", oe=oe, epochs=10,
                                         train_seconds=1.0, run=f"r{size}{seed}{cls}"))
    # a collapsed run is ignored
    rows.append(dict(rows[0], auroc=0.0, status="collapsed"))
    return pd.DataFrame(rows)


def test_fig_size_sweep(tmp_path):
    auc = auc_table()
    auc.to_csv(tmp_path / "auc.csv", index=False)
    auc = pd.read_csv(tmp_path / "auc.csv")
    groups = {"near OE": "diminishing~oe=benchmark", "far OE": "oe=sample_photos", "no OE": "diminishing~oe=none"}
    fig = F.fig_size_sweep(auc, "s_l2", groups)
    ax = fig.axes[0]
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(containers) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(groups)
    near = containers[0]
    assert list(near.lines[0].get_xdata()) == [50, 500, 2000]
    assert np.allclose(near.lines[0].get_ydata(), 100 * (0.9 + 0.005 + 0.0005))
    # error bars: std over seeds of the per-seed class mean = 0.5 points
    seg = near.lines[2][0].get_segments()[0]
    assert math.isclose(seg[1][1] - seg[0][1], 2 * 0.5, rel_tol=1e-6)
    assert ax.get_xscale() == "log"


def test_fig_size_sweep_missing_group_or_score():
    groups = {"near OE": "diminishing~oe=benchmark", "far OE": "diminishing~oe=imagenet"}
    with pytest.raises(F.MissingFigureData, match="far OE.*oe=imagenet"):
        F.fig_size_sweep(auc_table(), "s_l2", groups)
    with pytest.raises(F.MissingFigureData, match="no rows with score 'nope'"):
        F.fig_size_sweep(auc_table(), "nope", {"near OE": "diminishing"})


def test_fig4_collapse(tmp_path):
    fig = F.fig4_collapse(make_run(tmp_path, warmup=5, collapsed=True))
    assert len(fig.axes) == 2
    ax_loss, ax_norm = fig.axes
    assert len(lines_with_label(ax_loss)) == 1 and len(lines_with_label(ax_norm)) == 2
    vlines = [ln for ln in ax_norm.get_lines() if ln.get_linestyle() == "--"]
    assert len(vlines) == 1 and list(vlines[0].get_xdata()) == [5, 5]
    assert any("collapsed" in t.get_text() for t in fig.texts)
    fig = F.fig4_collapse(make_run(tmp_path / "ok"))
    assert not fig.texts


def test_fig4_needs_oe(tmp_path):
    with pytest.raises(F.MissingFigureData, match="norm_oe"):
        F.fig4_collapse(make_run(tmp_path, oe=False))


def test_fig6_weights(tmp_path):
    runs = [make_run(tmp_path / f"w{w}", weight=w, s_mu=0.5 + w / 2, seed=s) for w in (0.9, 0.1, 0.5) for s in (0, 1)]
    fig = F.fig6_weights(runs)
    ax_a, ax_b = fig.axes
    assert len(ax_a.get_lines()) == 2 and len(ax_b.get_lines()) == 1
    assert list(ax_b.get_lines()[0].get_xdata()) == [0.1, 0.5, 0.9]
    assert np.allclose(ax_b.get_lines()[0].get_ydata(), [55, 75, 95])
    assert np.allclose(ax_a.get_lines()[0].get_ydata(), 29.5)  # final norm_id, mean of seeds 0 and 1
    with pytest.raises(F.MissingFigureData, match="two different uniformity_weight"):
        F.fig6_weights(runs[:2])


def test_fig8_warmup(tmp_path):
    fig = F.fig8_warmup(make_run(tmp_path / "w", warmup=5), make_run(tmp_path / "n", warmup=0))
    ax_loss, ax_norm = fig.axes
    assert len(lines_with_label(ax_loss)) == 2 and len(lines_with_label(ax_norm)) == 4
    assert "Fig. 8" in ax_loss.get_title()


def test_missing_inputs_raise(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(F.MissingFigureData, match="log.csv is missing"):
        F.fig1_norms([tmp_path / "empty"])
    with pytest.raises(F.MissingFigureData, match="metrics.json is missing"):
        F.fig6_weights([make_run(tmp_path, metrics=False)])
    with pytest.raises(F.MissingFigureData):
        F.fig8_warmup(tmp_path / "empty", tmp_path / "empty")
    assert issubclass(F.MissingFigureData, FileNotFoundError)


def test_save_figure(tmp_path):
    fig = F.fig1_norms([make_run(tmp_path)])
    written = F.save_figure(fig, tmp_path / "out" / "sub" / "fig1")
    for suffix in ("pdf", "png"):
        path = tmp_path / "out" / "sub" / f"fig1.{suffix}"
        assert path in written and path.stat().st_size > 0
    assert (tmp_path / "out" / "sub" / "fig1.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "out" / "sub" / "fig1.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in (tmp_path / "out" / "sub").iterdir()) == ["fig1.pdf", "fig1.png"]


# ---------------------------------------------------------------------------------------------------------
# The registry of figure kinds: what the planner plans for each configured figure, the figure script draws
# ---------------------------------------------------------------------------------------------------------

def _config_figures():
    import yaml

    return yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())["figures"]


@pytest.mark.parametrize("name", [f"fig{i}" for i in range(1, 9)])
def test_each_configured_figure_is_drawn_from_the_runs_its_kind_plans(tmp_path, name):
    """Every figure of config.yaml (smoke preset): experiments.figure_runs plans its groups through
    experiments.FIGURE_KINDS, synthetic run folders stand in for the planned runs (with their real resolved settings
    in metrics.json), and the kind's drawer (figures.FIGURE_DRAWERS, what workflow_scripts/figure.py calls) draws it
    from exactly those folders."""
    from oecl_core.experiments import figure_runs, run_config, table_for_preset

    figure = _config_figures()[name]
    spec = table_for_preset(figure, "smoke")
    groups = figure_runs(name, figure, "smoke")
    folders = {}
    for label, runs in groups.items():
        folders[label] = []
        for run in runs:
            folder = tmp_path / run.folder("smoke")
            assert folder == make_run(folder.parent.parent, cls=run.cls, seed=run.seed, aug_every=5)
            settings = run_config("smoke", run).to_dict()
            (folder / "metrics.json").write_text(json.dumps({
                "auroc": {"s_l2": 0.6 + 0.1 * len(folders), "s_mu": 0.8}, "status": "ok", "settings": settings,
                "timings": {"train_seconds": 1.0}}))
            folders[label].append(folder)
    fig = F.FIGURE_DRAWERS[spec["kind"]](folders, spec, name)
    assert isinstance(fig, Figure)
    if spec["kind"] == "size_sweep":  # one error-bar line per legend entry, at the configured sizes
        containers = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
        assert len(containers) == len(spec["groups"])
        assert all(list(c.lines[0].get_xdata()) == sorted(spec["sizes"]) for c in containers)
    if spec["kind"] == "weights":  # one point per configured weight, read from the runs' settings
        assert list(fig.axes[1].get_lines()[0].get_xdata()) == sorted(spec["weights"])


def test_figure_kinds_are_the_planner_checks_choices():
    from oecl_core.experiments import FIGURE_KINDS, figure_runs

    with pytest.raises(ValueError, match="kind 'histogram'; valid choices: " + ", ".join(FIGURE_KINDS)):
        figure_runs("fig1", {"kind": "histogram", "dataset": "digits"}, "smoke")
    with pytest.raises(ValueError, match=r"figures.fig6 \(kind weights\) needs weights"):
        figure_runs("fig6", {"kind": "weights", "dataset": "digits"}, "smoke")
    assert {f["kind"] for f in _config_figures().values()} <= set(FIGURE_KINDS)


def test_every_planned_figure_kind_has_a_drawer():
    """The planner's kinds (experiments.FIGURE_KINDS, the one list) and the drawers (figures.FIGURE_DRAWERS) agree."""
    from oecl_core.experiments import FIGURE_KINDS

    assert list(F.FIGURE_DRAWERS) == list(FIGURE_KINDS)
