"""`python -m oecl_core verify` and its ledger, on a tiny synthetic CIFAR-10-style image tree (tmp_path).

The runs change the paper preset to a CPU-sized budget (2 epochs, 1/16-width ResNet-18, 2 views), which the
command allows only for a ledger other than the committed one.
"""
from __future__ import annotations

import csv
import tarfile

import pytest
import torch

from oecl_core import verify as verify_mod
from oecl_core.cli import main
from oecl_core.verify import COLUMNS, COMMITTED_LEDGER, ledger_markdown, read_cifar10_jpeg, verify

TINY = ["epochs=2", "width=0.0625", "n_aug=2", "batch_size=8", "oe_batch_size=8", "log_samples=8", "device=cpu"]
TINY_SETTINGS = {"epochs": 2, "width": 0.0625, "n_aug": 2, "batch_size": 8, "oe_batch_size": 8, "log_samples": 8,
                 "device": "cpu"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def tree(tmp_path_factory, noise_tree):
    """PATH/{train,test}/{airplane,automobile}/*.png at 32 px: bright noise vs. dark noise."""
    return noise_tree(tmp_path_factory.mktemp("cifar10-tiny"), {"airplane": 150, "automobile": 0})


def _args(tree, ledger, *extra):
    args = ["verify", "--cifar10-jpeg", str(tree), "--methods", "simclr", "--classes", "0", "--seeds", "0",
            "--ledger", str(ledger), "--budget-minutes", "5", *extra]
    for item in TINY:
        args += ["--set", item]
    return args


def _rows(ledger):
    with open(ledger, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


def test_tiny_verify_writes_one_real_row_and_never_a_duplicate(tree, tmp_path, capsys):
    ledger = tmp_path / "ledger.csv"
    assert main(_args(tree, ledger)) == 0
    out = capsys.readouterr().out
    assert "added" in out
    header, rows = _rows(ledger)
    assert header == COLUMNS
    assert len(rows) == 1
    row = rows[0]
    assert (row["dataset"], row["cls"], row["class_name"], row["method"], row["preset"], row["seed"], row["epochs"]) == \
           ("cifar10", "0", "airplane", "simclr", "paper", "0", "2")
    assert row["data_source"] == "cifar10-jpeg" and "epochs=2" in row["overrides"]
    for score in ("s_mu", "s_l2_ens", "s_l2", "sim_s_mu"):
        assert 0.0 <= float(row[f"auroc_{score}"]) <= 100.0
    assert row["status"] in ("ok", "collapsed")
    assert row["paper_cell"] == "86.1" and "mean" in row["paper_cell_kind"]
    assert row["device"] == "cpu" and row["git_commit"] and row["date"]
    assert float(row["train_seconds"]) > 0 and float(row["score_seconds"]) >= 0
    run_dir = tmp_path / "runs" / "cifar10-jpeg"
    assert [p.name for p in run_dir.iterdir()] and (next(run_dir.iterdir()) / "metrics.json").exists()

    # a second call finds the row and trains nothing
    assert main(_args(tree, ledger)) == 0
    assert "in ledger" in capsys.readouterr().out
    assert len(_rows(ledger)[1]) == 1

    table = ledger_markdown(ledger)
    assert "| cifar10 | 0 airplane | simclr |" in table and "86.1" in table


def test_overrides_are_refused_for_the_committed_ledger(tree, capsys):
    before = COMMITTED_LEDGER.read_text()
    assert main(_args(tree, COMMITTED_LEDGER)) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "refused" in err and "--ledger" in err
    assert COMMITTED_LEDGER.read_text() == before


def test_committed_ledger_is_a_header_without_rows():
    header, rows = _rows(COMMITTED_LEDGER)
    assert header == COLUMNS and rows == []
    assert "empty" in ledger_markdown(COMMITTED_LEDGER)


def test_a_budget_too_small_skips_the_run(tree, tmp_path, capsys):
    ledger = tmp_path / "ledger.csv"
    args = _args(tree, ledger)
    args[args.index("--budget-minutes") + 1] = "0.05"  # 3 s: less than a first timing needs
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "budget" in out
    assert _rows(ledger)[1] == []
    assert not (tmp_path / "runs" / "cifar10-jpeg").exists() or not any((tmp_path / "runs" / "cifar10-jpeg").rglob("*.pt"))


def test_a_run_that_cannot_finish_is_stopped_after_its_timing(tree, tmp_path, monkeypatch):
    """A frozen clock leaves 12 s; 1000 epochs at the measured speed need far more, so after the warm-up epoch
    and a one-epoch timing chunk the run stops, its checkpoint kept for a later call."""
    monkeypatch.setattr(verify_mod, "TIMING_CHUNK_SECONDS", 1e-6)
    ledger = tmp_path / "ledger.csv"
    [outcome] = verify("cifar10", ["simclr"], [0], [0], 0.2, tree, ledger, tmp_path / "runs",
                       {**TINY_SETTINGS, "epochs": 1000}, clock=lambda: 0.0)
    assert outcome.state == "stopped"
    assert "epoch 2 of 1000" in outcome.detail and "s left" in outcome.detail
    assert _rows(ledger)[1] == []
    assert len(list((tmp_path / "runs").rglob("checkpoint.pt"))) == 1


def test_data_selection_settings_are_refused(tree, tmp_path):
    with pytest.raises(ValueError, match="train_size"):
        verify("cifar10", ["simclr"], [0], [0], 1, tree, tmp_path / "l.csv", None, {"train_size": 4})


def test_jpeg_archive_and_folder_give_the_same_images(tree, tmp_path):
    archive = tmp_path / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tree, arcname="cifar10-jpeg")
    from_folder = read_cifar10_jpeg(tree, complete=False)
    from_archive = read_cifar10_jpeg(archive, complete=False)
    for a, b in zip(from_folder, from_archive):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert sorted(set(from_folder[0].labels.tolist())) == [0, 1]
    with pytest.raises(ValueError, match="all of CIFAR-10"):
        read_cifar10_jpeg(tree, complete=True)
