"""Snakemake adapter: one figure from its runs' logs and metrics, drawn by its kind
(oecl_core.figures.FIGURE_DRAWERS)."""
from pathlib import Path

from oecl_core import figures
from oecl_core.experiments import table_for_preset
from oecl_core.io import stderr_to_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stderr_to_log(sm.log[0]):
    spec = table_for_preset(sm.params.figure, sm.wildcards.preset)
    groups = {label: [Path(f) for f in folders] for label, folders in sm.params.groups.items()}
    fig = figures.FIGURE_DRAWERS[spec["kind"]](groups, spec, sm.wildcards.name)
    figures.save_figure(fig, Path(sm.output.pdf).with_suffix(""))
