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
    assert (row["dataset"], row["cls"], row["class_name"], row["method"], row["preset"], row["seed"],
            row["epochs"]) == ("cifar10", "0", "airplane", "simclr", "paper", "0", "2")
    assert row["data_source"] == "cifar10-jpeg" and "epochs=2" in row["overrides"]
    assert row["speed_settings"] == "device=cpu" and "device" not in row["overrides"]  # a speed switch
    for score in ("s_mu", "s_l2_ens", "s_l2", "sim_s_mu"):
        assert 0.0 <= float(row[f"auroc_{score}"]) <= 100.0
    assert row["status"] in ("ok", "collapsed")
    assert row["paper_cell"] == "86.1" and "mean" in row["paper_cell_kind"]
    assert row["device"] == "cpu" and row["git_commit"] and row["date"]
    assert float(row["train_seconds"]) > 0 and float(row["score_seconds"]) >= 0
    # the pipeline's layout (experiments.RUN_FOLDER), the settings changed in the benchmark spec, below runs/<data>/
    run_dir = (tmp_path / "runs" / "cifar10-jpeg" / "one_vs_rest~batch_size=8~epochs=2~log_samples=8~n_aug=2~"
               "oe_batch_size=8~width=0.0625" / "cifar10" / "simclr" / "0" / "seed0")
    assert (run_dir / "metrics.json").exists() and (run_dir / ".lock").exists()  # trained under the run lock
    assert row["run_folder"] == str(run_dir)

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
    assert not (tmp_path / "runs" / "cifar10-jpeg").exists() \
        or not any((tmp_path / "runs" / "cifar10-jpeg").rglob("*.pt"))


def test_a_run_that_cannot_finish_is_stopped_after_its_timing(tree, tmp_path, monkeypatch):
    """A frozen clock leaves 12 s; 1000 epochs at the measured speed need far more, so after its first call (a
    warm-up epoch and a steady one) the run stops, its checkpoint kept for a later call."""
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


# ---------------------------------------------------------------------------------------------------------
# budget decisions against a fake clock: a fake train() / score_run() advance it as a GPU would
# ---------------------------------------------------------------------------------------------------------

class FakeDevice:
    """The process's first train() call pays 10 s of CUDA start-up, every call 2 s fixed (network, data, probes)
    and a first epoch 3 s slower (compile, autotuning); a steady epoch takes 0.6 s, scoring 5 s."""

    def __init__(self, per_epoch=0.6, first_extra=3.0, fixed=2.0, startup=10.0, score=5.0, fail_cls=None):
        self.now, self.calls = 0.0, []
        self.per_epoch, self.first_extra, self.fixed = per_epoch, first_extra, fixed
        self.startup, self.score = startup, score
        self.fail_cls = fail_cls

    def clock(self):
        return self.now

    def train(self, cfg, split, out_dir, stop_after_epoch=None, progress=None):
        from oecl_core.train import TrainResult, _log_text, read_log

        out_dir.mkdir(parents=True, exist_ok=True)
        if cfg.cls == self.fail_cls:
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be ...")
        log = read_log(out_dir / "log.csv")
        done = log[-1]["epoch"] if log else 0
        end = min(cfg.epochs, stop_after_epoch or cfg.epochs)
        self.now += self.fixed + (0.0 if self.calls else self.startup)
        for epoch in range(done, end):
            seconds = self.per_epoch + (self.first_extra if epoch == done else 0.0)
            self.now += seconds
            log.append({"epoch": epoch + 1, "loss": 1.0, "lr": 0.1, "alpha": 0.0, "seconds": seconds,
                        "images_per_s": 19 * 1024 / seconds, "collapsed": 0, "steps": 19})
        (out_dir / "log.csv").write_text(_log_text(log))
        self.calls.append((cfg.cls, done, end))
        return TrainResult(out_dir, None, log, end, end >= cfg.epochs, False, 0.0)

    def score_run(self, cfg, run_dir, split, model=None, train_seconds=None, progress=None):
        import json

        self.now += self.score
        metrics = {"auroc": {s: 0.9 for s in verify_mod.SCORES}, "status": "ok", "settings": cfg.to_dict(),
                   "timings": {"score_seconds": self.score, "train_seconds": train_seconds}}
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        return metrics


@pytest.fixture(scope="module")
def tree10(tmp_path_factory, noise_tree):
    """All ten CIFAR-10 class folders, a few images each."""
    from oecl_core.data.sets.cifar import CLASSES

    return noise_tree(tmp_path_factory.mktemp("cifar10-ten"), {c: 15 * i for i, c in enumerate(CLASSES)},
                      counts=(("train", 3), ("test", 2)))


@pytest.fixture
def fake(monkeypatch):
    device = FakeDevice()
    monkeypatch.setattr("oecl_core.runner.train", device.train)
    monkeypatch.setattr("oecl_core.runner.score_run", device.score_run)
    return device


def test_a_paper_scale_cell_that_fits_is_no_longer_refused(tree, tmp_path, fake):
    """500 epochs at 0.6 s: about 300 s of training, and 480 s of budget. The old rule (one epoch, then a timing
    chunk sized from it, its wall over its epochs) saw 5.6 s per epoch and stopped the run; the steady speed and a
    fixed part per call see that it fits, and it finishes inside the budget."""
    [outcome] = verify("cifar10", ["simclr"], [0], [0], 8, tree, tmp_path / "ledger.csv", tmp_path / "runs",
                       {"epochs": 500}, clock=fake.clock)
    assert outcome.state == "added", outcome.detail
    assert fake.now <= 480
    assert fake.calls[0] == (0, 0, 2) and fake.calls[-1][2] == 500 and len(fake.calls) <= 5
    assert len(_rows(tmp_path / "ledger.csv")[1]) == 1


def test_a_paper_scale_cell_that_cannot_fit_is_still_refused(tree, tmp_path, fake):
    """240 s of budget: after the first call the 498 epochs left (about 300 s) cannot fit, so the run stops there."""
    [outcome] = verify("cifar10", ["simclr"], [0], [0], 4, tree, tmp_path / "ledger.csv", tmp_path / "runs",
                       {"epochs": 500}, clock=fake.clock)
    assert outcome.state == "stopped" and "needs about" in outcome.detail and "epoch 2 of 500" in outcome.detail
    assert fake.calls == [(0, 0, 2)] and fake.now < 30


def test_cells_are_cut_to_fit_and_written_to_the_output_folder(tree10, tmp_path, fake):
    """Every class (none given) at 100 epochs, 200 s: two cells fit; the third, whose cost is known by then, is
    not started; each finished run's files are in --out, with no checkpoint (a finished run needs none)."""
    out = tmp_path / "out"
    outcomes = verify("cifar10", ["simclr"], None, [0], 200 / 60, tree10, tmp_path / "ledger.csv", tmp_path / "runs",
                      {"epochs": 100}, clock=fake.clock, out=out)
    assert [o.state for o in outcomes] == ["added", "added"] + ["skipped"] * 8
    assert {cls for cls, *_ in fake.calls} == {0, 1} and fake.now <= 200
    assert "needs about" in outcomes[2].detail
    assert verify_mod.fit_line(outcomes).startswith("2 of 10 cell(s) fit the budget")
    assert len(_rows(out / "ledger.csv")[1]) == 2 and len(_rows(tmp_path / "ledger.csv")[1]) == 2
    for cls in (0, 1):
        [run] = (out / "runs" / "cifar10-jpeg").glob(f"*/cifar10/simclr/{cls}/seed0")
        assert (run / "log.csv").exists() and (run / "metrics.json").exists()
        assert not (run / "checkpoint.pt").exists() and not (run / "checkpoint_not_copied.json").exists()


def test_a_failure_is_one_line_in_the_outcome_and_a_traceback_in_errors_log(tree10, tmp_path, monkeypatch):
    device = FakeDevice(fail_cls=0)
    monkeypatch.setattr("oecl_core.runner.train", device.train)
    monkeypatch.setattr("oecl_core.runner.score_run", device.score_run)
    out = tmp_path / "out"
    first, second = verify("cifar10", ["simclr"], [0, 1], [0], 5, tree10, tmp_path / "ledger.csv", tmp_path / "runs",
                           {"epochs": 4}, clock=device.clock, out=out)
    assert first.state == "failed"
    assert first.detail == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert second.state == "added"  # the next run is still tried
    log = (out / "errors.log").read_text()
    assert "Traceback (most recent call last)" in log and "CUDA kernel errors" in log and "class 0" in log


def test_speed_switches_are_allowed_for_the_committed_ledger(tree, tmp_path, monkeypatch):
    committed = tmp_path / "results" / "verified" / "ledger.csv"
    verify_mod.write_ledger(committed, [])
    monkeypatch.setattr("oecl_core.ledger.COMMITTED_LEDGER", committed)
    with pytest.raises(ValueError, match="refused"):
        verify("cifar10", ["simclr"], [0], [0], 1, tree, committed, None, {"epochs": 2, "compile": True})
    # the speed switches pass; the tiny tree then fails the committed ledger's demand for all of CIFAR-10
    [outcome] = verify("cifar10", ["simclr"], [0], [0], 1, tree, committed, None,
                       {"compile": True, "device": "cpu", "checkpoint_every": 5, "score_batch_views": 64})
    assert outcome.state == "failed" and "all of CIFAR-10" in outcome.detail
    assert verify_mod.split_settings({"compile": True, "epochs": 3, "cuda_graphs": False}) == \
        ({"epochs": 3}, {"compile": True, "cuda_graphs": False})


def test_an_old_ledger_without_speed_settings_still_reads(tmp_path):
    old = [c for c in COLUMNS if c != "speed_settings"]
    path = tmp_path / "old.csv"
    path.write_text(",".join(old) + "\n" + ",".join("0" if c == "cls" else "x" for c in old) + "\n")
    [row] = verify_mod.read_ledger(path)
    assert "speed_settings" not in row and row["cls"] == "0"
    assert verify_mod.append_row(path, {**row, "git_commit": "y", "speed_settings": "compile=True"})
    header, rows = _rows(path)
    assert header == COLUMNS and [r["speed_settings"] for r in rows] == ["", "compile=True"]
    assert len([line for line in ledger_markdown(path).splitlines() if line.startswith("| x | 0 x |")]) == 2


def test_mirror_copies_a_small_checkpoint_and_explains_a_large_one(tmp_path):
    from oecl_core.outdir import CHECKPOINT_LIMIT_BYTES, NOT_RESUMABLE, mirror_run

    run, dest = tmp_path / "run", tmp_path / "dest"
    run.mkdir()
    (run / "log.csv").write_text("epoch\n1\n")
    (run / "checkpoint.pt").write_bytes(b"x" * 1000)
    mirror_run(run, dest, False, 1, 10)
    assert (dest / "checkpoint.pt").read_bytes() == b"x" * 1000 and (dest / "log.csv").exists()
    with open(run / "checkpoint.pt", "wb") as fh:  # sparse: over the limit without writing 60 MiB
        fh.truncate(CHECKPOINT_LIMIT_BYTES + 1)
    mirror_run(run, dest, False, 2, 10)
    assert not (dest / "checkpoint.pt").exists()
    note = (dest / NOT_RESUMABLE).read_text()
    assert "not copied" in note and "MiB" in note and '"resumable_from_this_folder": false' in note
    mirror_run(run, dest, True, 10, 10)  # finished: no checkpoint, no note
    assert not (dest / "checkpoint.pt").exists() and not (dest / NOT_RESUMABLE).exists()


def test_merge_appends_a_window_ledger_once_and_keeps_the_committed_rule(tmp_path, monkeypatch, capsys):
    src, dst = tmp_path / "window" / "ledger.csv", tmp_path / "ledger.csv"
    row = {c: "x" for c in COLUMNS} | {"cls": "0", "overrides": "", "git_commit": "abc"}
    verify_mod.write_ledger(src, [row, {**row, "cls": "1"}])
    assert main(["verify", "--merge", str(src), "--ledger", str(dst)]) == 0
    assert main(["verify", "--merge", str(src), "--ledger", str(dst)]) == 0
    assert "0 row(s)" in capsys.readouterr().out.splitlines()[-1]
    assert [r["cls"] for r in _rows(dst)[1]] == ["0", "1"]
    monkeypatch.setattr("oecl_core.ledger.COMMITTED_LEDGER", dst)
    verify_mod.write_ledger(src, [{**row, "cls": "2", "overrides": "epochs=2"}])
    with pytest.raises(ValueError, match="paper's full settings"):
        verify_mod.merge_ledger(src, dst)


def test_a_trained_run_without_metrics_is_only_scored_whatever_the_budget(tree, tmp_path, fake, monkeypatch):
    """A run trained to its last epoch but not scored (e.g. scoring failed) is scored through run_experiment even
    with less budget left than a first timing needs; the call trains nothing, so no chunk is recorded."""
    from oecl_core.train import _log_text

    settings = {"epochs": 4}
    run_dir = verify_mod.run_folder(tmp_path / "runs", "cifar10-jpeg", verify_mod.resolve_config(
        "paper", "cifar10", "simclr", cls=0, seed=0, **settings), settings)
    run_dir.mkdir(parents=True)
    (run_dir / "log.csv").write_text(_log_text([{"epoch": e, "loss": 1.0, "lr": 0.1, "alpha": 0.0, "seconds": 0.5,
                                                 "images_per_s": 100.0, "collapsed": 0, "steps": 19}
                                                for e in range(1, 5)]))
    monkeypatch.setattr(verify_mod, "_checkpoint_epoch", lambda run_dir, cfg: cfg.epochs)
    [outcome] = verify("cifar10", ["simclr"], [0], [0], 0.05, tree, tmp_path / "ledger.csv", tmp_path / "runs",
                       settings, clock=fake.clock)
    assert outcome.state == "added" and fake.calls == [(0, 4, 4)]
    assert not (run_dir / verify_mod.SIDECAR).exists() and (run_dir / "metrics.json").exists()


def test_a_run_folder_of_the_old_layout_is_moved_and_resumed(tree, tmp_path, fake):
    """runs/<source>/<dataset>-<method>-cls<c>-seed<s>-<hash> (before RUN_FOLDER) moves to the new folder, so its
    training so far (here: its sidecar's seconds) carries on."""
    settings = {"epochs": 4}
    old = tmp_path / "runs" / "cifar10-jpeg" / "cifar10-simclr-cls0-seed0-cc4ab76f"
    old.mkdir(parents=True)
    (old / verify_mod.SIDECAR).write_text('{"train_seconds": 100.0, "git_commits": ["old"], "chunks": []}')
    [outcome] = verify("cifar10", ["simclr"], [0], [0], 5, tree, tmp_path / "ledger.csv", tmp_path / "runs",
                       settings, clock=fake.clock)
    assert outcome.state == "added" and not old.exists()
    assert float(outcome.row["train_seconds"]) > 100 and outcome.row["git_commit"].startswith("old+")
    assert outcome.row["run_folder"].endswith("one_vs_rest~epochs=4/cifar10/simclr/0/seed0")
