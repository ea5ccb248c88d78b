"""The tables' rules: the paper's emphasis on the paper's numbers, ours over our measured cells, the paper's printed
precision, quoted marks, and the cells that are never run (× and objectives without OE)."""
from pathlib import Path

import pandas as pd
import pytest
import yaml

from oecl_core.experiments import table_runs
from oecl_core.reference import EMPHASIS_RULES, load_paper_tables
from oecl_core.tables import build_table, layout

REPO = Path(__file__).resolve().parents[1]

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
AUC = pd.read_csv(REPO / "tests/data/auc_table1.csv")


def shown(name, auc=AUC, preset="paper", table=None):
    """{(row, column label): cell} of a table as layout() renders it."""
    cells = build_table(name, table or CONFIG["tables"][name], preset, auc)
    columns, rows = layout(cells)
    return {(r["label"], col["label"]): c for r in rows for c, col in zip(r["cells"], columns)}


def test_paper_numbers_carry_the_papers_emphasis_whatever_is_measured():
    """Table I with ours for 3 columns: the paper's DIOR row bolds OECL's 91.1 (best from scratch, though OECL is a
    measured column with no result there) and underlines BCE-CL's 97.7 as printed; CSI's 78.5‡ gets nothing."""
    t = shown("table1")
    assert t[("DIOR", "OECL")]["emph"]["paper"] == {"bold"}
    assert t[("DIOR", "BCE-CL")]["emph"]["paper"] == {"underline"}
    assert t[("DIOR", "CSI")]["emph"]["paper"] == set()
    # the same marks with nothing measured at all
    empty = shown("table1", AUC.iloc[0:0])
    assert {k: c["emph"]["paper"] for k, c in empty.items()} == {k: c["emph"]["paper"] for k, c in t.items()}


def test_ties_as_printed_are_all_emphasised():
    """ImageNet-30 in Table I: OECL's 97.7 ± 0.3 and BCE's 97.7* tie as printed, so the rule bolds both."""
    t = shown("table1")
    assert t[("ImageNet-30", "OECL")]["emph"]["paper"] == t[("ImageNet-30", "BCE")]["emph"]["paper"] == {"bold"}


def test_our_numbers_are_ranked_among_our_measured_cells_only():
    """CIFAR-10 of the fixed AUCs: ours are SimCLR 86.3, self-OECL 94.3, OECL 98.8, so OECL's is both the best
    from-scratch and the best overall of ours (the paper's quoted BCE-CL 99.6* does not take ours' underline)."""
    t = shown("table1")
    assert t[("CIFAR-10", "OECL")]["emph"]["ours"] == {"bold", "underline"}
    assert t[("CIFAR-10", "SimCLR")]["emph"]["ours"] == set()
    assert t[("CIFAR-10", "BCE-CL")]["emph"]["paper"] == {"underline"}


def test_an_empty_cell_is_never_emphasised():
    for key, cell in shown("table1").items():
        for which in ("ours", "paper"):
            if cell[which] in (None, "--", "×", "n/a"):
                assert not cell["emph"][which], key


def test_tables_whose_caption_states_no_emphasis_have_none():
    assert set(EMPHASIS_RULES) == {"I", "II", "IV"}
    cells = shown("table7", AUC.iloc[0:0])
    assert all(not c["emph"]["ours"] and not c["emph"]["paper"] for c in cells.values())


def test_printed_underlines_agree_with_the_captions_rule():
    """Every underline the text shows is a best-overall value of its row (the rule we re-derive the bold with)."""
    df = load_paper_tables()
    for _, cell in df[df["emphasis"] == "underline"].iterrows():
        row = df[(df["table"] == cell["table"]) & (df["dataset"] == cell["dataset"])]
        assert cell["value"] == row["value"].max(), (cell["table"], cell["dataset"])


def test_paper_numbers_print_at_the_papers_precision():
    """Table IV's BCE-CL 50.78 keeps its two decimals; 62.8 keeps one."""
    t = shown("table4", AUC.iloc[0:0])
    assert t[("Nevi / Benign keratosis, k=1", "BCE-CL")]["paper"] == "50.78"
    assert t[("Neutrophils / Lymphocytes, k=0", "BCE-CL")]["paper"] == "62.8"


def test_table7_quotes_patchcore_and_efficientad():
    """App. D attributes MVTec-AD's 99.1 to [3] and [36]: marked quoted, never as the paper's own run."""
    t = shown("table7", AUC.iloc[0:0])
    assert t[("MVTec-AD", "PatchCore")]["paper"] == t[("MVTec-AD", "EfficientAD")]["paper"] == "99.1*"
    assert t[("DTD", "PatchCore")]["paper"] == "×"


def test_cells_the_paper_never_ran_are_never_scheduled():
    """× has its own source: Table II plans no DSVDD run (its two numbers are ‡, the rest ×), Table IV no HSC or BCE
    run at k = 0 (its OE pool is empty), while OECL's k = 0 runs stay (SimCLR, the paper's k = 0 row)."""
    df = load_paper_tables()
    assert set(df.loc[df["mark"] == "x", "source"]) == {"not_reported"}
    table2 = table_runs("table2", CONFIG["tables"]["table2"], "paper")
    assert not [r for r in table2 if r.method == "dsvdd"]
    table4 = table_runs("table4", CONFIG["tables"]["table4"], "paper")
    assert not [r for r in table4 if r.method in ("hsc", "bce") and "shots=0" in r.benchmark]
    assert [r for r in table4 if r.method == "oecl" and "shots=0" in r.benchmark]
    assert [r for r in table4 if r.method == "hsc" and "shots=1" in r.benchmark]


def test_objectives_over_oe_are_not_applicable_without_oe_images():
    """The smoke Table IV's digits have no paper cell, so run: paper_ran would train HSC and BCE at k = 0: they
    are skipped and shown n/a; asked for with run: true, the plan stops with the reason before any job."""
    smoke = table_runs("table4", CONFIG["tables"]["table4"], "smoke")
    assert not [r for r in smoke if r.method in ("hsc", "bce") and "shots=0" in r.benchmark]
    t = shown("table4", AUC.iloc[0:0], preset="smoke")
    assert t[("largest / next largest digit, k=0", "HSC")]["ours"] == "n/a"
    table = {"rows": [{"dataset": "digits", "benchmark": "few_shot~shots=0", "classes": [-1]}],
             "columns": [{"method": "hsc", "run": True}]}
    with pytest.raises(ValueError, match=r"tables\.t\.rows\[0\].*hsc is an objective over OE images"):
        table_runs("t", table, "smoke")
