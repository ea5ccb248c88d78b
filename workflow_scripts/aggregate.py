"""Snakemake adapter: metrics.json files -> auc.csv and a Markdown summary (logic in oecl_core.aggregate)."""

from oecl_core.io import stderr_to_log, write_text
from oecl_core.aggregate import collect, summarise, to_markdown

with stderr_to_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    auc = collect(snakemake.input)  # noqa: F821
    write_text(snakemake.output.auc, auc.to_csv(index=False))  # noqa: F821
    summary = summarise(auc)
    text = ("# Mean AUROC (%) over classes\n\nstd across classes; runs flagged collapsed are included "
            "(as in the paper's means), counted, and left out of mean_without_collapsed.\n\n")
    write_text(snakemake.output.summary, text + to_markdown(summary))  # noqa: F821
