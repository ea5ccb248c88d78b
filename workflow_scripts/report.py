"""Snakemake adapter: every table's Markdown and every figure on one page (results/<preset>/report.md)."""
import os
from pathlib import Path

from oecl_core.io import stderr_to_log, write_text

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stderr_to_log(sm.log[0]):
    out = Path(sm.output[0])
    parts = [f"# OECL reproduction report (preset `{sm.wildcards.preset}`)", "",
             "Every table puts our measured AUROCs (columns 'ours') beside the paper's numbers ('paper'). Numbers the "
             "paper quoted from other works are marked * or ‡. The runs behind every cell are listed in "
             f"`tables/<table>_runs.csv`; all runs in `{os.path.relpath(sm.input.auc, out.parent)}`.", ""]
    for md in sm.input.tables:
        parts += [Path(md).read_text(), ""]
    parts.append("## Figures\n")
    for png in sm.input.figures:
        parts.append(f"![{Path(png).stem}]({os.path.relpath(png, out.parent)})\n")
    write_text(out, "\n".join(parts))
