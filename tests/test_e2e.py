"""End to end on the embedded benchmark: real data, real training, real scores."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oecl_core.config import resolve_config
from oecl_core.runner import run_experiment

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_oecl_on_digits_detects_the_other_digits(tmp_path):
    """The smoke preset's complete OECL run for digit 0 (100 epochs, 32 augmentations): the s_mu AUROC
    measured at development was 0.98; SimCLR without OE scores below 0.5 on this class."""
    cfg = resolve_config("smoke", "digits", "oecl", cls=0, device="cpu")
    metrics = run_experiment(cfg, tmp_path, progress=False)
    assert metrics["status"] == "ok"
    assert metrics["auroc"]["s_mu"] > 0.9
    assert metrics["split"] == {"description": "digits one_vs_rest class 0 (0), OE sample_photos_digit_like",
                                "n_train": 119, "n_oe": 2000, "n_test": 599, "n_test_normal": 59}
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["auroc"] == metrics["auroc"] and saved["settings"]["epochs"] == 100


def test_pipeline_dry_run_plans_one_job_per_run(tmp_path):
    if shutil.which("snakemake") is None and not (Path(sys.executable).parent / "snakemake").exists():
        pytest.skip("snakemake is not installed")
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-d", str(tmp_path), "-s", str(REPO / "Snakefile"),
                          "--configfile", str(REPO / "config.yaml")], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr + out.stdout
    text = out.stdout + out.stderr
    # 3 methods x 10 digit classes x 1 seed, and one aggregation
    assert "train_run        30" in text.replace("\t", " " * 8) or "train_run 30" in " ".join(text.split())
    assert "aggregate" in text


def test_pipeline_rejects_an_unknown_method_before_any_job(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("preset: smoke\nexperiments:\n  x: {dataset: digits, benchmark: one_vs_rest, methods: [csi2], "
                      "classes: all, seeds: [0]}\n")
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-d", str(tmp_path), "-s", str(REPO / "Snakefile"),
                          "--configfile", str(config)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode != 0
    assert "csi2" in out.stderr + out.stdout and "self_oecl" in out.stderr + out.stdout


def test_pipeline_plans_data_preparation_for_real_data_sets(tmp_path):
    config = tmp_path / "cifar.yaml"
    config.write_text("preset: paper\nexperiments:\n  t1: {dataset: cifar10, benchmark: one_vs_rest, methods: [oecl], "
                      "classes: [0, 1], seeds: [0, 1]}\n")
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-d", str(tmp_path), "-s", str(REPO / "Snakefile"),
                          "--configfile", str(config)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr + out.stdout
    counts = " ".join((out.stdout + out.stderr).split())
    assert "prepare_dataset 2" in counts and "train_run 4" in counts  # cifar10 and its OE (tiny300k); 2 classes x 2 seeds
