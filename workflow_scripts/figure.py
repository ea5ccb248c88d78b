"""Snakemake adapter: one figure from its runs' logs and metrics (oecl_core.figures)."""
from pathlib import Path

from oecl_core import figures
from oecl_core.experiments import table_for_preset
from oecl_core.io import stderr_to_log
from oecl_core.report import collect

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stderr_to_log(sm.log[0]):
    spec = table_for_preset(sm.params.figure, sm.wildcards.preset)
    groups = {label: [Path(f) for f in folders] for label, folders in sm.params.groups.items()}
    kind = spec["kind"]
    if kind == "norms":
        fig = figures.fig1_norms(groups["runs"])
    elif kind == "ratio":
        fig = figures.fig2_ratio(groups["runs"])
    elif kind == "collapse":
        fig = figures.fig4_collapse(groups["runs"][0])
    elif kind == "raw_norms":
        fig = figures.fig5_raw_norms(groups["runs"])
    elif kind == "weights":
        fig = figures.fig6_weights(groups["runs"])
    elif kind == "warmup":
        fig = figures.fig8_warmup(groups["with"][0], groups["without"][0])
    else:  # size_sweep: the runs of each legend entry, identified by their benchmark spec
        auc = collect([Path(f) / "metrics.json" for folders in groups.values() for f in folders])
        fig = figures.fig_size_sweep(auc, spec.get("score", "s_mu"), spec["groups"],
                                     title=f"{sm.wildcards.name}: AUROC vs training-set size")
    figures.save_figure(fig, Path(sm.output.pdf).with_suffix(""))
