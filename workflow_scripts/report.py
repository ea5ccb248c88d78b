"""Snakemake adapter: every table's Markdown and every figure on one page (results/<preset>/report.md)."""
import os
from pathlib import Path

from oecl_core.io import stderr_to_log, write_text
from oecl_core.verify import ledger_markdown

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
    parts += ["## Theorem III.1, checked numerically\n",
              "Monte Carlo estimates of the expected cosine of two i.i.d. Gaussian vectors against bounds (5) and (6), "
              "on a grid of (mu, sigma, tr Sigma_V, dimension, epsilon); the check rows are in "
              "`figures/theorem31.csv`, the method and the reading of sigma that holds in docs/theorem.md.\n",
              f"![theorem31]({os.path.relpath(sm.input.theorem, out.parent)})\n",
              "## Cells verified at paper scale\n",
              "Runs at the paper's full settings, one row each, from `results/verified/ledger.csv` "
              "(`python -m oecl_core verify`, README):\n", ledger_markdown(sm.input.ledger), ""]
    write_text(out, "\n".join(parts))
