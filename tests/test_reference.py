"""Spot checks of the numbers quoted from the OECL paper (oecl_core/reference/paper_tables.csv)."""
import math
from pathlib import Path

import pandas as pd
import pytest

from oecl_core.reference import CSV_PATH, KEY_COLUMNS, load_paper_tables, paper_value

# Cells transcribed per table (numbers and "×" marks); an accidental added / dropped row fails here.
ROWS_PER_TABLE = {"I": 48, "II": 40, "III": 8, "IV": 48, "V": 24, "VI": 16, "VII": 10, "VIII": 6, "IX": 6}
X_MARKS_PER_TABLE = {"II": 8, "IV": 6, "VII": 2}
TABLE_ORDER = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX"]
PAPER_TXT = Path("/work/shared/paper/oecl-paper.txt")


@pytest.fixture(scope="module")
def df():
    return load_paper_tables()


def test_spot_values():
    assert paper_value("I", "cifar10", "oecl") == (97.8, 0.1, "paper")
    assert paper_value("I", "cifar10", "gt_plus") == (90.1, None, "quoted_reference")
    assert paper_value("I", "dior", "gt_plus") == (73.3, None, "quoted_panda")
    assert paper_value("I", "dior", "csi") == (78.5, None, "quoted_panda")
    assert paper_value("I", "dior", "gt_plus_oe") == (79.3, None, "paper")
    assert paper_value("I", "raabin", "self_oecl") == (62.1, 5.4, "paper")
    assert paper_value("II", "cifar10", "dsvdd") == (50.7, None, "quoted_transformly")
    assert paper_value("II", "dior", "panda") == (86.9, None, "quoted_reference")
    assert paper_value("II", "imagenet30", "oecl", benchmark="leave_one_out") == (98.8, 0.1, "paper")
    assert paper_value("IV", "raabin", "oecl", "neutrophil|lymphocyte|k1") == (76.9, None, "paper")
    assert paper_value("IV", "ham10000", "bce_cl", "melanocytic_nevi|benign_keratosis|k1")[0] == 50.78
    assert paper_value("V", "cifar10", "oecl", "s_l2", benchmark="one_vs_rest") == (96.4, None, "paper")
    assert paper_value("V", "cifar10", "oecl", "s_l2", benchmark="leave_one_out") == (93.8, None, "paper")
    assert paper_value("VI", "dior", "oecl", "sim_s_mu|oe") == (91.2, None, "paper")
    assert paper_value("III", "cifar10_unlabeled", "bce_cl", "svhn") == (62.8, None, "paper")
    assert paper_value("III", "cifar10_unlabeled", "clip") == (90.8, None, "paper")
    assert paper_value("VII", "mvtec", "hsc") == (70.1, None, "quoted_reference")
    assert paper_value("VIII", "cifar10", "supclr_oe", "ood_cifar100") == (95.2, None, "paper")
    assert paper_value("IX", "cifar10", "oecl", "svhn") == (92.2, None, "paper")
    assert paper_value("IX", "cifar10", "hsc", "cifar100_1sample") == (50.5, None, "paper")
    assert paper_value(1, "cifar10", "bce_cl") == (99.6, None, "quoted_reference")


def test_x_marks(df):
    assert paper_value("II", "imagenet30", "dn2") == (None, None, "not_reported")
    row = df[(df.table == "II") & (df.dataset == "imagenet30") & (df.method == "dn2")].iloc[0]
    assert row["mark"] == "x" and math.isnan(row["value"])
    marked = df[df["mark"] == "x"]
    assert marked["value"].isna().all() and marked["std"].isna().all()
    assert df.loc[df["mark"] == "", "value"].notna().all()
    assert marked.groupby("table").size().to_dict() == X_MARKS_PER_TABLE


def test_row_counts_and_order(df):
    assert df.groupby("table").size().to_dict() == ROWS_PER_TABLE
    assert len(df) == sum(ROWS_PER_TABLE.values()) == 206
    order = [TABLE_ORDER.index(t) for t in df["table"]]
    assert order == sorted(order)


def test_values_in_range_and_keys_unique(df):
    assert df["value"].dropna().between(0, 100).all()
    assert df["std"].dropna().between(0, 100).all()
    assert not df.duplicated(list(KEY_COLUMNS)).any()


def test_column_vocabularies(df):
    assert set(df["source"]) == {"paper", "quoted_reference", "quoted_panda", "quoted_transformly", "quoted_in_text",
                                 "not_reported"}
    assert (df["source"] == "not_reported").equals(df["mark"] == "x")
    assert set(df["mark"]) == {"", "x"}
    assert set(df["emphasis"]) <= {"", "bold", "underline"}
    assert set(df.loc[df.table.isin(["I", "II"]), "group"]) == {"unsupervised", "unsupervised_oe", "supervised_oe"}
    assert (df.loc[~df.table.isin(["I", "II"]), "group"] == "").all()
    assert df.loc[~df.table.isin(["I", "II"]), "from_scratch"].isna().all()
    # pre-trained / transfer-learning methods are the only ones not from scratch
    not_scratch = set(df.loc[df["from_scratch"] == 0, "method"])
    assert not_scratch == {"clip", "bce_cl", "dn2", "panda", "transformly"}
    assert set(df.loc[df.table == "I", "trials"]) == {5} and set(df.loc[df.table == "II", "trials"]) == {2}
    # underlined cells: BCE-CL on CIFAR-10 / ImageNet-30 / DIOR (Table I) and CIFAR-10 / ImageNet-30 (Table II)
    under = df[df["emphasis"] == "underline"]
    assert sorted(zip(under.table, under.dataset)) == [("I", "cifar10"), ("I", "dior"), ("I", "imagenet30"),
                                                       ("II", "cifar10"), ("II", "imagenet30")]
    assert set(under["method"]) == {"bce_cl"}


def test_missing_cell_raises_with_choices():
    with pytest.raises(KeyError, match="valid choices.*'oecl'"):
        paper_value("I", "cifar10", "no_such_method")
    with pytest.raises(KeyError, match="one_vs_rest"):
        paper_value("V", "cifar10", "oecl", "s_mu")  # two benchmarks match
    with pytest.raises(KeyError):
        paper_value("X", "cifar10", "oecl")


def test_csv_is_utf8_and_tidy():
    text = CSV_PATH.read_text(encoding="utf-8")
    header = text.splitlines()[0].split(",")
    assert header == ["table", "dataset", "benchmark", "method", "setting", "value", "std", "source",
                      "from_scratch", "group", "emphasis", "mark", "trials"]
    raw = pd.read_csv(CSV_PATH, dtype=str, keep_default_na=False)
    assert (raw["value"].str.fullmatch(r"\d{1,3}\.\d{1,2}") | (raw["value"] == "")).all()


@pytest.mark.skipif(not PAPER_TXT.is_file(), reason="paper text not available")
def test_every_value_is_printed_in_its_table(df):
    """Each quoted number appears in the text of its table (caption to the next blank-line gap)."""
    lines = PAPER_TXT.read_text(encoding="utf-8").splitlines()
    for table in TABLE_ORDER:
        start = next(i for i, line in enumerate(lines) if line.startswith(f"TABLE {table}:"))
        body, seen_rows = [], False
        for line in lines[start + 1:]:
            if line.strip():
                body.append(line)
                seen_rows = True
            elif seen_rows and len(body) > 1:
                break
        cells = {c.strip() for line in body for c in line.split("\t")}
        numbers = set()
        for c in cells:
            c = c.replace("<u>", "").replace("</u>", "").rstrip("*‡")
            numbers.update(p.strip() for p in c.split("±"))
        raw = pd.read_csv(CSV_PATH, dtype=str, keep_default_na=False)
        sub = raw[raw.table == table]
        missing = {v for v in set(sub["value"]) | set(sub["std"]) if v and v not in numbers}
        assert not missing, (table, missing)
