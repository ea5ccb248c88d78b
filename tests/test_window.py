"""`python -m oecl_core device-window`: the whole command on the CPU (--tiny) against a small fake CIFAR-10 JPEG
tree, a tiny budget, and the refusal where no commit can be known."""
from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest
import torch

from oecl_core import verify as verify_mod
from oecl_core import window as window_mod
from oecl_core.cli import main
from oecl_core.data.sets.cifar import CLASSES


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def jpeg_tree(tmp_path_factory):
    """PATH/{train,test}/<class>/*.jpg for all ten classes: 3 training and 2 test images each, 32 px."""
    from PIL import Image

    root = tmp_path_factory.mktemp("cifar10-jpeg")
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for i, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for k in range(n):
                image = rng.integers(15 * i, 15 * i + 100, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(image).save(folder / f"{k:04d}.jpg", quality=90)
    return root


def _window(out, tree, budget, *extra):
    return main(["device-window", "--out", str(out), "--budget-seconds", str(budget), "--cifar10-jpeg", str(tree),
                 "--tiny", *extra])


def test_tiny_window_writes_every_file_as_it_goes(jpeg_tree, tmp_path, capsys):
    out = tmp_path / "out"
    t0 = time.monotonic()
    assert _window(out, jpeg_tree, 40) == 0
    assert time.monotonic() - t0 < 40 + 20  # the budget holds (a cell started near its end may run over a little)
    printed = capsys.readouterr().out
    assert "device.json" in printed and "ledger.csv" in printed and "cell(s) fit the budget" in printed

    device = json.loads((out / "device.json").read_text())
    assert device["torch"] == torch.__version__ and device["commit"] and device["commit"] != "unknown"
    assert device["cpu_count"] >= 1 and device["host"] and isinstance(device["gpus"], list)
    syncs = json.loads((out / "syncs.json").read_text())["simclr"]
    assert syncs["device"] == "cpu" and len(syncs["per_step"]) == window_mod.SYNC_STEPS and "host" in syncs["how"]
    assert "32" in json.loads((out / "bench.json").read_text())["sizes"]
    assert "views/s" in (out / "bench.txt").read_text()

    summary = json.loads((out / "summary.json").read_text())
    assert [s["stage"] for s in summary["stages"]] == ["device.json", "syncs.json", "bench.json", "verify"]
    assert all(s["state"] == "done" for s in summary["stages"]), summary["stages"]
    fit = summary["verify"]["fit"]
    assert fit >= 1 and summary["verify"]["cells"] == 10 and summary["seconds_used"] <= 40 + 20
    assert f"{fit} of 10 cell(s) fit the budget" in (out / "summary.txt").read_text()
    with open(out / "ledger.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == fit and rows[0]["cls"] == "0" and rows[0]["data_source"] == "cifar10-jpeg"
    assert "epochs=2" in rows[0]["overrides"] and 0 <= float(rows[0]["auroc_s_mu"]) <= 100
    [run] = (out / "runs" / "cifar10-jpeg").glob("*/cifar10/simclr/0/seed0")
    assert {p.name for p in run.iterdir()} >= {"config.json", "log.csv", "metrics.json", "verify.json"}
    assert not (run / "checkpoint.pt").exists()  # finished: no checkpoint needed
    assert set(summary["files"]) >= {"device.json", "syncs.json", "bench.json", "ledger.csv", "summary.json"}
    assert not (out / "errors.log").exists()


def test_a_budget_of_seconds_still_writes_device_facts_and_a_summary(jpeg_tree, tmp_path):
    out = tmp_path / "out"
    assert _window(out, jpeg_tree, 3) == 0
    assert (out / "device.json").exists() and (out / "summary.txt").exists()
    summary = json.loads((out / "summary.json").read_text())
    states = {s["stage"]: s["state"] for s in summary["stages"]}
    assert states == {"device.json": "done", "syncs.json": "skipped", "bench.json": "skipped", "verify": "done"}
    assert summary["verify"]["fit"] == 0 and summary["verify"]["skipped"] == 10
    assert "0 of 10 cell(s) fit" in (out / "summary.txt").read_text()


def test_no_commit_is_refused_before_any_work(jpeg_tree, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OECL_GIT_COMMIT", raising=False)
    monkeypatch.setattr(window_mod, "git_commit", lambda: verify_mod.git_commit(tmp_path))  # no checkout there
    out = tmp_path / "out"
    assert _window(out, jpeg_tree, 30) == 2
    assert "set OECL_GIT_COMMIT" in capsys.readouterr().err.replace("Set", "set")
    assert not (out / "device.json").exists()
    assert "OECL_GIT_COMMIT" in json.loads((out / "summary.json").read_text())["refused"]
    monkeypatch.setenv("OECL_GIT_COMMIT", "0123abc")
    assert window_mod.require_commit() == "0123abc"


def test_bench_arguments_bound_the_bench_and_time_the_graphed_step(tmp_path):
    args = window_mod.bench_arguments(tmp_path, 30, False)
    assert args[args.index("--budget-seconds") + 1] == "30" and "compile" not in args
    assert args[args.index("--switches") + 1:] == ["cuda_graphs", "bf16"]
    assert window_mod.bench_arguments(tmp_path, 30, True)[-1] == "--switches"  # a dry run times the default only
