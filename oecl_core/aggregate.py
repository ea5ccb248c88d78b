"""From run folders to tidy AUROC tables: the aggregation step of the pipeline (and of `sweep`)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

AUC_COLUMNS = ["preset", "benchmark", "dataset", "method", "cls", "seed", "score", "auroc", "status", "oe",
               "epochs", "train_seconds", "run", "undertrained"]


def metrics_rows(path) -> list[dict]:
    """One row per score function of one run's metrics.json."""
    path = Path(path)
    m = json.loads(path.read_text())
    s = m["settings"]
    base = dict(preset=s["preset"], benchmark=s.get("label") or s["benchmark"], dataset=s["dataset"],
                method=s["method"], cls=s["cls"], seed=s["seed"], status=m["status"], oe=s["oe"], epochs=s["epochs"],
                train_seconds=m["timings"].get("train_seconds"), run=str(path.parent),
                undertrained=bool(m.get("undertrained", False)))
    return [dict(base, score=name, auroc=value) for name, value in m["auroc"].items()]


def collect(paths) -> pd.DataFrame:
    rows = [row for p in paths for row in metrics_rows(p)]
    return pd.DataFrame(rows, columns=AUC_COLUMNS).sort_values(
        ["benchmark", "dataset", "method", "cls", "seed", "score"])


def summarise(auc: pd.DataFrame) -> pd.DataFrame:
    """Mean AUROC (%) over classes of the per-class mean over seeds, and the std across classes (the convention of
    the paper's tables), per (benchmark, data set, method, score). Collapsed runs are included, as in the paper's
    means, counted, and left out of `mean_without_collapsed`."""
    keys = ["benchmark", "dataset", "method", "score"]

    def class_means(rows):
        return rows.groupby(keys + ["cls"])["auroc"].mean().groupby(keys)

    grouped = class_means(auc)
    out = pd.DataFrame({"mean": 100 * grouped.mean(), "std": 100 * grouped.std(ddof=0), "classes": grouped.size()})
    collapsed = auc[auc["status"] != "ok"].groupby(keys).size()
    out["collapsed_runs"] = collapsed.reindex(out.index).fillna(0).astype(int)
    out["mean_without_collapsed"] = (100 * class_means(auc[auc["status"] == "ok"]).mean()).reindex(out.index)
    return out.round(2).reset_index()


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pandas' own needs the optional `tabulate` package)."""
    cells = [[str(c) for c in df.columns]] + [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row]
                                               for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("---" for _ in df.columns) + "|")
    return "\n".join(lines) + "\n"
