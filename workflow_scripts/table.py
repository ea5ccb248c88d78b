"""Snakemake adapter: one table's run metrics -> <name>.tex / .md / .csv and the rows behind it (oecl_core.tables)."""

from oecl_core.io import stderr_to_log, write_text
from oecl_core.aggregate import collect
from oecl_core.tables import write_table

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stderr_to_log(sm.log[0]):
    auc = collect(sm.input)
    write_text(sm.output.runs, auc.to_csv(index=False))  # every AUROC the table shows, traceable to its run folder
    write_table(sm.wildcards.name, sm.params.table, sm.wildcards.preset, auc, sm.output.tex[: -len(".tex")])
