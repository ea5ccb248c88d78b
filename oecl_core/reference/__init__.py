"""Reference numbers quoted from the OECL paper (Le-Gia & Ahn, "Understanding Normalization in Contrastive
Representation Learning and Out-of-Distribution Detection"), Tables I to IX.

Every number in ``paper_tables.csv`` is quoted from the paper as printed (AUC in %); none of them is measured
here. One row per printed table cell that holds a number or a "×" mark. Columns:

    table         roman numeral of the paper's table (I .. IX)
    dataset       registry name (cifar10, imagenet30, dior, raabin, ham10000, dtd, mvtec, cifar10_unlabeled)
    benchmark     one_vs_rest | leave_one_out | unlabeled | few_shot | labeled (Table VIII, SupCLR on labeled
                  CIFAR-10) | defect_detection (Table VII, MVTec-AD)
    method        lowercase method id (gt_plus_oe = the GT+ column under "Unsupervised OE" in Table I;
                  supclr_oe = Table VIII's "OE + SupCLR", i.e. OECL with SupCLR as the contrastive loss)
    setting       what varies inside a table besides dataset / method:
                    III, IX  the OE data set (80mti, svhn, dtd, cifar100_1sample); empty for CLIP / SimCLR in
                             Table III, which use no OE (one merged cell spanning the three OE lines)
                    IV       "<normal>|<obtainable OOD class>|<k>" with k in k0, k1, k10, full
                    V        score function: s_mu, s_l2_ens, s_l2
                    VI       "<score>|<oe flag>": s_mu or sim_s_mu, and oe / no_oe (the table's OE check column;
                             the no_oe rows are OECL without OE, i.e. they repeat SimCLR's Table I numbers)
                    VIII     the OOD test set: ood_cifar100, ood_svhn
    value, std    the printed number and its printed "±" value (NaN when not printed / the cell is "×")
    source        paper              measured by the paper's authors
                  quoted_reference   marked "*" in the paper: taken from the method's own reference (in Table
                                     II the headers DN2*, PANDA*, Transformly* carry the mark, so all their
                                     cells; in Table VII likewise HSC*, BCE*)
                  quoted_panda       marked "‡" in Table I: taken from [35] (PANDA)
                  quoted_transformly marked "‡" in Table II: taken from [9] (Transformly)
                  quoted_in_text     printed without a mark, but the text attributes it to another work (Table
                                     VII's PatchCore and EfficientAD 99.1: "[3] and [36] score above 99%",
                                     App. D); shown with "*" like the marked quotes
                  not_reported       a "×" cell: the paper has no number (never run, never scheduled here)
    from_scratch  1 / 0 from the "From scratch" check row of Tables I and II, empty elsewhere
    group         column group header of Tables I and II: unsupervised, unsupervised_oe, supervised_oe
    emphasis      "underline" where the text shows <u>...</u>; bold is not visible in the text and is not recorded
                  (tables re-derive it with the caption's rule, EMPHASIS_RULES)
    mark          "x" for a "×" cell (not applicable / not run), else empty
    trials        number of trials stated by the caption (I: 5, II: 2, IV: 5 for the OECL rows only, since the
                  caption says "of OECL over 5 trials", VII: 5), else empty
"""
# How the "From scratch" column was resolved (the text extraction does not keep the check marks aligned):
# - Table II's check row has 5 marks; DSVDD, SimCLR, HSC, OECL and BCE train from scratch, while DN2, PANDA and
#   Transformly are transfer-learning methods, CLIP is pre-trained and BCE-CL fine-tunes CLIP: 5 = 5, consistent.
# - Table I's check row shows 12 marks for 12 method columns, which cannot be right: CLIP (zero-shot, pre-trained)
#   and BCE-CL (fine-tuned CLIP; Sec. IV-E says "OECL is trained from scratch, whereas BCE-CL is fine-tuned over
#   pre-training CLIP") are not from scratch, so they get 0 and the other ten methods 1.
# - Table II's group header in the text spans 5 / 2 / 3 columns, which would put CLIP under "Unsupervised OE" and
#   OECL under "Supervised OE"; by the methods (Sec. IV-D: all are unsupervised except BCE-CL; OECL and HSC are
#   unsupervised OE as in Table I) the groups are DSVDD..CLIP unsupervised, HSC / OECL unsupervised_oe,
#   BCE / BCE-CL supervised_oe.
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where the tables are read: a training job names the runs but never reads them
    import pandas as pd

__all__ = ["CSV_PATH", "load_paper_tables", "paper_value", "paper_cell", "KEY_COLUMNS", "EMPHASIS_RULES",
           "NOT_REPORTED", "numeral", "roman"]

CSV_PATH = Path(__file__).parent / "paper_tables.csv"
KEY_COLUMNS = ("table", "dataset", "benchmark", "method", "setting")
_TEXT_COLUMNS = ("table", "dataset", "benchmark", "method", "setting", "source", "group", "emphasis", "mark")
_MARKS = {"quoted_reference": "*", "quoted_panda": "‡", "quoted_transformly": "‡", "quoted_in_text": "*"}
NOT_REPORTED = "not_reported"  # the source of a "×" cell
# What each table's caption says its emphasis means: mark -> the cells ranked ("from_scratch": the methods of the
# "From scratch" check row; "all": every cell of the row). Tables whose captions state no emphasis have none.
EMPHASIS_RULES = {"I": {"bold": "from_scratch", "underline": "all"}, "II": {"bold": "from_scratch", "underline": "all"},
                  "IV": {"bold": "all"}}
# The paper numbers its tables in Roman numerals; computed for any number, so that a new tableN needs no entry here.
_NUMERALS = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
             (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))


def numeral(number: int) -> str | None:
    """A table number as the paper prints it: 3 -> "III", 10 -> "X"; None below 1."""
    if number < 1:
        return None
    letters = ""
    for value, symbol in _NUMERALS:
        count, number = divmod(number, value)
        letters += symbol * count
    return letters


def _decimals(text: pd.Series) -> pd.Series:
    """Digits after the point as printed ("50.78" -> 2, "86.1" -> 1); 1 where nothing is printed."""
    return text.str.partition(".")[2].str.len().where(text != "", 1).astype(int)


@lru_cache(maxsize=1)
def _load() -> pd.DataFrame:
    import pandas as pd

    df = pd.read_csv(CSV_PATH, dtype=str, keep_default_na=False, encoding="utf-8")
    for col in ("value", "std"):
        df[f"{col}_digits"] = _decimals(df[col])
        df[col] = pd.to_numeric(df[col].where(df[col] != ""), errors="raise").astype(float)
    for col in ("from_scratch", "trials"):
        df[col] = pd.to_numeric(df[col].where(df[col] != ""), errors="raise").astype("Int64")
    return df


def load_paper_tables() -> pd.DataFrame:
    """All quoted cells of Tables I-IX (a fresh copy): value / std float (NaN if not printed), value_digits /
    std_digits the decimals the paper prints them with, text columns str ("" when empty), from_scratch / trials
    nullable Int64."""
    return _load().copy()


def roman(table_name: str) -> str:
    """A pipeline table name to the paper's numeral: "table3" -> "III" (other names are returned as they are)."""
    digits = table_name.removeprefix("table")
    return (numeral(int(digits)) or table_name) if digits.isdigit() else table_name


def _table_id(table) -> str:
    if isinstance(table, int):
        return numeral(table) or str(table)
    return str(table).strip().upper()


def paper_value(table, dataset: str, method: str, setting: str = "",
                benchmark: str | None = None) -> tuple[float | None, float | None, str]:
    """(value, std, source) of one quoted cell; value / std are None where not printed (std) or the cell is "×".

    `table` is the roman numeral ("I".."IX"; an int 1..9 also works). `benchmark` may be left out when the other
    keys pick one cell. Raises KeyError, listing the valid choices, when no cell (or more than one) matches."""
    df = _load()
    sel = df
    asked = {"table": _table_id(table), "dataset": dataset, "method": method, "setting": setting}
    if benchmark is not None:
        asked["benchmark"] = benchmark
    for col, want in asked.items():
        narrowed = sel[sel[col] == want]
        if narrowed.empty:
            choices = sorted(set(sel[col]))
            raise KeyError(f"no paper cell with {col}={want!r} (after {_describe(asked, col)}); "
                           f"valid choices: {', '.join(repr(c) for c in choices)}")
        sel = narrowed
    if len(sel) > 1:
        choices = sorted(set(sel["benchmark"]))
        raise KeyError(f"{len(sel)} paper cells match {asked}; pass benchmark=, one of "
                       f"{', '.join(repr(c) for c in choices)}")
    row = sel.iloc[0]
    value = None if math.isnan(row["value"]) else float(row["value"])
    std = None if math.isnan(row["std"]) else float(row["std"])
    return value, std, str(row["source"])


def _describe(asked: dict, stop: str) -> str:
    parts = []
    for col, want in asked.items():
        if col == stop:
            break
        parts.append(f"{col}={want!r}")
    return ", ".join(parts) or "no filter"


def paper_cell(paper: pd.DataFrame, table: str, dataset: str, method: str, setting: str, benchmark: str) -> dict:
    """The paper's cell for a table (roman numeral) / data set / method / setting, as the columns paper_value,
    paper_std, paper_digits (decimals as printed), paper_source ("" when the paper has no such cell), paper_mark
    (* / ‡ for quoted cells, x for a "×" cell), paper_emphasis (printed underline) and from_scratch."""
    hits = paper[(paper["table"] == table) & (paper["dataset"] == dataset) & (paper["method"] == method)]
    exact = hits[hits["setting"].fillna("") == setting]
    # a cell the paper merged across rows (e.g. SimCLR, which uses no OE, in Table III) has no setting
    hits = exact if len(exact) else hits[hits["setting"].fillna("") == ""]
    if len(hits) > 1:
        hits = hits[hits["benchmark"] == benchmark]
    if hits.empty:
        return {"paper_value": math.nan, "paper_std": math.nan, "paper_digits": 1, "paper_source": "", "paper_mark": "",
                "paper_emphasis": "", "from_scratch": math.nan}
    h = hits.iloc[0]
    return {"paper_value": h["value"], "paper_std": h["std"],
            "paper_digits": int(max(h["value_digits"], h["std_digits"])),
            "paper_source": h["source"], "paper_mark": "x" if h.get("mark") == "x" else _MARKS.get(h["source"], ""),
            "paper_emphasis": h["emphasis"], "from_scratch": h.get("from_scratch")}
