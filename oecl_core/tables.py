"""Regenerated tables: our measured AUROCs beside the paper's numbers, as LaTeX, Markdown and CSV.

A table (config.yaml, `tables:`) is rows x columns. A column is one of the paper's methods; a column with
`run: true` is trained here and its cells show ours, the paper's and the difference; any other column shows the
paper's number only, marked as quoted where the paper took it from elsewhere (* / ‡). Our cell value is the
mean over seeds of the mean AUROC over classes, +- the std over seeds (the paper's "mean over trials").
Runs flagged collapsed are included, as the paper's means include its collapsing runs (self-OECL on DIOR and
Raabin-WBC); such a cell is marked with a dagger and shows the mean without them beside it, in brackets.
Each row names the OE its OE-trained runs used (e.g. the 300K random images standing in for 80M Tiny Images).
"""
from __future__ import annotations

import math
from pathlib import Path

import jinja2
import pandas as pd

from .experiments import (Run, column_runs, lacks_oe, parse_benchmark_spec, run_config, spec_for_method,
                          table_for_preset, table_paper_cell)
from .data.sets import SETS
from .io import write_text
from .methods import METHODS
from .reference import EMPHASIS_RULES, load_paper_tables, roman

# Labels of the methods the tables only quote from the paper (not implemented here); an implemented method's label
# is on its class (Method.label).
QUOTED_METHOD_LABELS = {"dn2": "DN2", "panda": "PANDA", "transformly": "Transformly", "patchcore": "PatchCore",
                        "efficientad": "EfficientAD"}


def method_label(method: str) -> str:
    """The column heading of a method: its class's label, a quoted method's, or its name."""
    if method in METHODS:
        return METHODS[method].display_label()
    return QUOTED_METHOD_LABELS.get(method, method)


# What the data sets and OE sets are called in rows and OE notes: each prepared set's label (data/sets/), and these.
DATASET_LABELS = {**{name: entry.label for name, entry in SETS.items()}, "digits": "digits (embedded)",
                  "benchmark": "images of the obtainable class",
                  "sample_photos_digit_like": "crops of scikit-learn's sample photos, rendered like the digits",
                  "sample_photos": "crops of scikit-learn's sample photos (colour)"}
BENCHMARK_LABELS = {"one_vs_rest": "one vs. rest", "leave_one_out": "leave one out"}
COLUMNS = ["table", "row", "dataset", "benchmark", "method", "col", "column", "score", "run", "applicable", "ours_mean",
           "ours_std", "seeds", "classes", "collapsed_runs", "undertrained_runs", "ours_mean_without_collapsed",
           "ours_std_without_collapsed", "oe", "paper_value", "paper_std", "paper_digits", "paper_source", "paper_mark",
           "paper_emphasis", "difference", "from_scratch"]


def _seed_means(rows: pd.DataFrame) -> pd.Series:
    return 100 * rows.groupby("seed")["auroc"].mean()


def _ours(auc: pd.DataFrame, spec: str, dataset: str, method: str, score: str) -> dict:
    """Our cell: every finished run, collapsed ones included (as in the paper's means), and beside it the same
    statistic without the collapsed runs."""
    rows = auc[(auc["benchmark"] == spec) & (auc["dataset"] == dataset) & (auc["method"] == method)
               & (auc["score"] == score)]
    per_seed, per_seed_ok = _seed_means(rows), _seed_means(rows[rows["status"] == "ok"])
    oe = sorted(set(rows["oe"].dropna().astype(str)) - {"none", ""}) if "oe" in rows else []
    return {"ours_mean": per_seed.mean() if len(per_seed) else math.nan,
            "ours_std": per_seed.std(ddof=0) if len(per_seed) > 1 else math.nan,
            "seeds": int(per_seed.size), "classes": int(rows["cls"].nunique()),
            "collapsed_runs": int((rows["status"] != "ok").groupby([rows["seed"], rows["cls"]]).any().sum())
            if len(rows) else 0,
            "undertrained_runs": int(rows.drop_duplicates(["seed", "cls"])["undertrained"].astype(bool).sum())
            if "undertrained" in rows else 0,
            "ours_mean_without_collapsed": per_seed_ok.mean() if len(per_seed_ok) else math.nan,
            "ours_std_without_collapsed": per_seed_ok.std(ddof=0) if len(per_seed_ok) > 1 else math.nan,
            "oe": ",".join(oe) if oe else ("none" if len(rows) else "")}


def planned_oe(preset: str, dataset: str, spec: str, method: str) -> str:
    """The OE a method's runs of this row use, as their resolved settings say (none for a method not implemented)."""
    if method not in METHODS:
        return "none"
    # the OE does not depend on the class or seed: class 0 is valid for every benchmark
    return run_config(preset, Run(spec_for_method(spec, method), dataset, method, 0, 0)).oe


def method_score(method: str, table_score: str) -> str:
    """The score a method's cells show: the table's (or column's) contrastive score, or a baseline's own score."""
    own = METHODS[method].primary_score if method in METHODS else None
    return own or table_score


def build_table(name: str, table: dict, preset: str, auc: pd.DataFrame,
                paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """One tidy row per cell: ours (where run) and the paper's value for the same cell."""
    paper = load_paper_tables() if paper is None else paper
    t = table_for_preset(table, preset)
    cells = []
    for row in t.get("rows", []):
        spec = row.get("benchmark", t.get("benchmark", "one_vs_rest"))
        bench, _ = parse_benchmark_spec(spec)
        label = row.get("label") or DATASET_LABELS.get(row["dataset"], row["dataset"]) + (
            "" if spec == t.get("benchmark") or "benchmark" not in row else f" ({BENCHMARK_LABELS.get(bench, spec)})")
        for col_index, col in enumerate(t.get("columns", [])):
            score = method_score(col["method"], col.get("score", t.get("score", "s_mu")))
            run_spec = spec_for_method(spec, col["method"])
            cell = {"table": name, "row": label, "dataset": row["dataset"], "benchmark": run_spec,
                    "method": col["method"], "col": col_index,
                    "column": col.get("label", method_label(col["method"])), "score": score}
            cell.update(table_paper_cell(paper, name, row, col, bench))
            if pd.isna(cell["from_scratch"]) and col["method"] in METHODS:  # rows the paper has no cell for (digits)
                cell["from_scratch"] = int(METHODS[col["method"]].from_scratch)
            cell["run"] = column_runs(col, cell["paper_source"], preset)
            # an objective over OE images in a row with none (k = 0) is not a method: shown "n/a", never trained
            cell["applicable"] = not (cell["run"]
                                      and lacks_oe(preset, Run(run_spec, row["dataset"], col["method"], 0, 0)))
            cell["run"] = cell["run"] and cell["applicable"]
            if cell["run"]:
                cell.update(_ours(auc, run_spec, row["dataset"], col["method"], score))
            if not cell.get("oe"):
                cell["oe"] = planned_oe(preset, row["dataset"], spec, col["method"])
            cell["difference"] = cell.get("ours_mean", math.nan) - cell["paper_value"]
            cells.append(cell)
    return pd.DataFrame(cells).reindex(columns=COLUMNS)


def _fmt(value, std=math.nan, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    text = f"{value:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if isinstance(std, float) and not math.isnan(std) else "")


def _best(values: pd.Series, among: str, from_scratch: pd.Series) -> list:
    """The cells holding the row's best value (ties as printed all count) among every cell or the from-scratch ones;
    empty cells never count."""
    if among == "from_scratch":
        values = values[from_scratch.astype(float) == 1]
    values = values.dropna()
    return list(values.index[values == values.max()]) if len(values) else []


def emphasis_legend(name: str, bold: str = "bold", underline: str = "underline") -> str:
    """What bold and underline mean in this table, or "" where the paper's caption states no emphasis."""
    rules = EMPHASIS_RULES.get(roman(name), {})
    words = {"bold": bold, "underline": underline}
    parts = [f"{words[mark]} = best {'from-scratch ' if among == 'from_scratch' else ''}value of the row"
             for mark, among in rules.items()]
    if not parts:
        return ""
    printed = "; the paper's underline as printed" if "underline" in rules else ""
    return "; ".join(parts) + f" (the paper's numbers and ours ranked apart, ours among our measured cells{printed})"


def _emphasis(cells: pd.DataFrame) -> dict[tuple[int, str], set]:
    """(cell, "ours" | "paper") -> its marks, by the rule the paper's caption states for this table (EMPHASIS_RULES;
    none where the caption states none). The paper's numbers carry the paper's emphasis: the underline it prints
    (paper_tables.csv) and the bold its rule gives over its own numbers, which the text lost. Ours carry the same
    rule over our measured cells alone, so a cell not yet measured neither wins nor loses a mark."""
    rules = EMPHASIS_RULES.get(roman(cells["table"].iloc[0]), {})
    marks: dict[tuple[int, str], set] = {}
    for _, group in cells.groupby("row", sort=False):
        scratch = group["from_scratch"].fillna(1)
        paper = group["paper_value"].where(group["paper_mark"] != "x")
        ours = group["ours_mean"].where(group["run"].astype(bool)).round(1)  # ties as printed
        for mark, among in rules.items():
            paper_marked = (group.index[group["paper_emphasis"] == mark] if mark == "underline"
                            else _best(paper, among, scratch))
            for which, marked in (("paper", paper_marked), ("ours", _best(ours, among, scratch))):
                for i in marked:
                    marks.setdefault((i, which), set()).add(mark)
    return marks


def layout(cells: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """Column headers and body rows shared by the LaTeX and Markdown renderers."""
    marks = _emphasis(cells)
    columns, measured = [], {}
    for col, group in cells.groupby("col", sort=True):
        # a column is measured if any of its cells is (run: paper_ran measures only where the paper ran the method)
        measured[col] = bool(group["run"].any())
        columns.append({"label": group["column"].iloc[0], "run": measured[col]})
    rows = []
    for row_label, group in cells.groupby("row", sort=False):
        out = []
        for i, c in group.iterrows():
            ours = "--" if measured[c["col"]] else None  # a quoted cell of a measured column: not run here
            if not c["applicable"]:
                ours = "n/a"
            if c["run"]:
                ours = _fmt(c["ours_mean"], c["ours_std"])
                if c.get("collapsed_runs", 0):
                    ours += f"† [{_fmt(c['ours_mean_without_collapsed'])}]"
                if c.get("undertrained_runs", 0) > 0:
                    ours += "§"
            paper = "×" if c["paper_mark"] == "x" else \
                _fmt(c["paper_value"], c["paper_std"], int(c["paper_digits"])) + c["paper_mark"]
            diff = _fmt(c["difference"]) if c["run"] and not math.isnan(c["difference"]) else "--"
            if diff != "--" and c["difference"] > 0:
                diff = "+" + diff
            out.append({"ours": ours, "paper": paper, "diff": diff,
                        "emph": {"ours": marks.get((i, "ours"), set()), "paper": marks.get((i, "paper"), set())}})
        rows.append({"label": row_label, "cells": out})
    return columns, rows


def oe_notes(cells: pd.DataFrame) -> list[str]:
    """One line per row whose OE-trained columns used an OE set: 'CIFAR-10: 300K random images (...)'."""
    notes = []
    for row_label, group in cells.groupby("row", sort=False):
        names = sorted({n for value in group["oe"].dropna().astype(str) for n in value.split(",")} - {"none", ""})
        if names:
            notes.append(f"{row_label}: " + "; ".join(DATASET_LABELS.get(n, n) for n in names))
    return notes


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("±", r"$\pm$"),
                 ("×", r"$\times$"), ("‡", r"$^\ddagger$"), ("†", r"$^\dagger$"), ("§", r"$^\S$"), ("*", r"$^*$")):
        text = text.replace(a, b)
    return text


def _latex_cell(text: str, emph: set) -> str:
    text = _latex_escape(text)
    if "bold" in emph:
        text = r"\textbf{" + text + "}"
    if "underline" in emph:
        text = r"\underline{" + text + "}"
    return text


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("oecl_core", "templates"),
    # LaTeX is full of braces: use delimiters that cannot clash with it
    block_start_string="((*", block_end_string="*))", variable_start_string="(((", variable_end_string=")))",
    comment_start_string="((#", comment_end_string="#))", trim_blocks=True, lstrip_blocks=True, autoescape=False,
    keep_trailing_newline=True,
)
_ENV.filters["latex"] = _latex_escape
_ENV.filters["cell"] = lambda c, which: _latex_cell(c[which], c["emph"][which])


def render_latex(name: str, caption: str, cells: pd.DataFrame, preset: str) -> str:
    columns, rows = layout(cells)
    return _ENV.get_template("table.tex.j2").render(name=name, roman=roman(name), caption=caption,
                                                    emphasis=emphasis_legend(name),
                                                    columns=columns, rows=rows, preset=preset, oe_notes=oe_notes(cells))


def render_markdown(name: str, caption: str, cells: pd.DataFrame, preset: str) -> str:
    columns, rows = layout(cells)
    legend = emphasis_legend(name, "**bold**", "<u>underline</u>")
    head = ["data set"]
    for c in columns:
        head += [f"{c['label']} (ours)", f"{c['label']} (paper)", "Δ"] if c["run"] else [f"{c['label']} (paper)"]
    lines = [f"### Table {roman(name)}: {caption}", "",
             f"preset `{preset}`; ours = mean over seeds of the mean AUROC (%) over classes ± std over seeds; "
             "* / ‡ = the paper quoted this number from another work; × = not reported; † = the mean includes "
             "collapsed runs, as the paper's do, [x] = the mean without them; § = some runs barely left their "
             "initialisation (under-trained); n/a = not applicable (an objective over OE images in a row with no OE "
             "images)" + (f"; {legend}" if legend else "") + ".", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells_md = [r["label"]]
        for c, col in zip(r["cells"], columns):
            shown = dict(c)
            for which in ("ours", "paper"):
                if "bold" in c["emph"][which]:
                    shown[which] = f"**{shown[which]}**"
                if "underline" in c["emph"][which]:
                    shown[which] = f"<u>{shown[which]}</u>"
            cells_md += [shown["ours"], shown["paper"], shown["diff"]] if col["run"] else [shown["paper"]]
        lines.append("| " + " | ".join(cells_md) + " |")
    notes = oe_notes(cells)
    if notes:
        lines += ["", "OE of the OE-trained columns: " + " | ".join(notes) + "."]
    return "\n".join(lines) + "\n"


def write_table(name: str, table: dict, preset: str, auc: pd.DataFrame, out_prefix) -> pd.DataFrame:
    """Writes <out_prefix>.tex, .md and .csv (the tidy cells, with the numbers behind every cell)."""
    cells = build_table(name, table, preset, auc)
    caption = table_for_preset(table, preset).get("caption", name)
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    write_text(out_prefix.with_suffix(".tex"), render_latex(name, caption, cells, preset))
    write_text(out_prefix.with_suffix(".md"), render_markdown(name, caption, cells, preset))
    write_text(out_prefix.with_suffix(".csv"), cells.to_csv(index=False, float_format="%.4f"))
    return cells
