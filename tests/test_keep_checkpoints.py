"""keep_checkpoints: false (config.yaml; `run --no-keep-checkpoint`): a scored run's checkpoint is removed and recorded,
the rest of the run folder stays, a later call neither trains nor scores it, the tables and figures still build, and
the setting is no part of a run's identity (changing it reruns no job). The default keeps every checkpoint."""
import hashlib
import json

import pytest

from oecl_core.cli import main
from oecl_core.experiments import Run, run_config
from oecl_core.runner import run_experiment, split_for
from oecl_core.train import CHECKPOINT, CHECKPOINT_REMOVED, CheckpointRemoved, ResumeMismatch, train

from test_pipeline import repo_config, snakemake

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SPEC = "one_vs_rest~epochs=3~n_aug=2~width=0.0625"


def tiny_cfg(**changes):
    return run_config("smoke", Run(SPEC, "digits", "oecl", 0, 0), **changes)


def test_the_default_keeps_the_checkpoint(tmp_path):
    metrics = run_experiment(tiny_cfg(), tmp_path)
    assert metrics["status"] in ("ok", "collapsed")
    assert (tmp_path / CHECKPOINT).is_file() and not (tmp_path / CHECKPOINT_REMOVED).exists()


def test_keep_less_removes_the_checkpoint_records_it_and_keeps_the_rest(tmp_path):
    cfg = tiny_cfg()
    train(cfg, split_for(cfg), tmp_path)  # trained, not yet scored
    ckpt = (tmp_path / CHECKPOINT).read_bytes()
    metrics = run_experiment(cfg, tmp_path, keep_checkpoint=False)  # scores from the checkpoint, then removes it
    assert not (tmp_path / CHECKPOINT).exists()
    for name in ("log.csv", "config.json", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0
    record = json.loads((tmp_path / CHECKPOINT_REMOVED).read_text())
    assert record["bytes"] == len(ckpt) and record["sha256"] == hashlib.sha256(ckpt).hexdigest()
    assert record["epoch"] == cfg.epochs and record["settings"] == cfg.to_dict()
    assert record["metrics"] == metrics == json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / CHECKPOINT_REMOVED).stat().st_size < 10_000  # a small record


def test_a_rerun_of_a_run_without_its_checkpoint_does_nothing(tmp_path, capsys):
    cfg = tiny_cfg()
    metrics = run_experiment(cfg, tmp_path, keep_checkpoint=False)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.iterdir() if p.name != ".lock"}
    # the command line, with or without the flag: nothing trained, nothing scored, nothing written
    for flag in ([], ["--no-keep-checkpoint"]):
        assert main(["run", "--preset", "smoke", "--dataset", "digits", "--benchmark", SPEC, "--method", "oecl",
                     "--cls", "0", "--out", str(tmp_path)] + flag) == 0
        assert "nothing to train or score" in capsys.readouterr().err
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.iterdir() if p.name != ".lock"}
    assert after == before and not (tmp_path / CHECKPOINT).exists()
    # Snakemake deletes a job's output before running it again: metrics.json comes back from the record, untrained
    (tmp_path / "metrics.json").unlink()
    assert run_experiment(cfg, tmp_path) == metrics
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert (tmp_path / "log.csv").read_bytes() == before["log.csv"][1] and not (tmp_path / CHECKPOINT).exists()


def test_a_run_without_its_checkpoint_refuses_other_settings_more_training_and_rescoring(tmp_path, capsys):
    cfg = tiny_cfg()
    run_experiment(cfg, tmp_path, keep_checkpoint=False)
    with pytest.raises(ResumeMismatch, match="epochs: 3 -> 4"):
        run_experiment(tiny_cfg(epochs=4), tmp_path)
    with pytest.raises(CheckpointRemoved, match="Delete the run folder"):
        train(cfg, split_for(cfg), tmp_path)
    assert main(["score", "--run", str(tmp_path)]) == 2
    assert CHECKPOINT_REMOVED in capsys.readouterr().err


def test_pipeline_keep_less_builds_the_tables_and_figures_and_the_setting_reruns_nothing(tmp_path):
    tiny = {"rows": [{"dataset": "digits", "classes": [0, 1], "benchmark": SPEC}],
            "columns": [{"method": "oecl", "run": True}, {"method": "hsc"}], "seeds": [0]}
    figure = {"kind": "norms", "dataset": "digits", "method": "oecl", "cls": 0, "benchmark": SPEC}
    config = repo_config(preset="smoke", tables={"table1": tiny}, figures={"fig1": figure}, keep_checkpoints=False)
    out = snakemake(tmp_path, "table1", "fig1", config=config)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = tmp_path / f"results/smoke/runs/{SPEC}/digits/oecl"
    for cls in (0, 1):
        folder = runs / str(cls) / "seed0"
        assert not (folder / CHECKPOINT).exists() and (folder / CHECKPOINT_REMOVED).is_file()
        assert (folder / "metrics.json").is_file() and (folder / "log.csv").is_file()
    assert "OECL" in (tmp_path / "results/smoke/tables/table1.md").read_text()
    assert (tmp_path / "results/smoke/figures/fig1.png").stat().st_size > 0
    for keep in (False, True):  # a rerun, and the setting changed back: no job either way
        again = snakemake(tmp_path, "table1", "fig1", config=dict(config, keep_checkpoints=keep))
        assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:]
