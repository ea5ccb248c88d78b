"""runner.run_experiment's hooks for callers with their own data and chunks (verify, the pilot), on fakes."""
from __future__ import annotations

from types import SimpleNamespace

from oecl_core import runner
from oecl_core.config import resolve_config


def _fakes(monkeypatch, events):
    def train(cfg, split, out_dir, stop_after_epoch=None, progress=None):
        events.append(("train", split, stop_after_epoch, (out_dir / ".lock").exists()))
        end = min(cfg.epochs, stop_after_epoch or cfg.epochs)
        return SimpleNamespace(model="model", epochs_done=end, finished=end >= cfg.epochs, train_seconds=1.5)

    def score_run(cfg, out_dir, split, model, train_seconds, progress):
        events.append(("score", split, model, train_seconds))
        return {"auroc": {}}

    monkeypatch.setattr(runner, "train", train)
    monkeypatch.setattr(runner, "score_run", score_run)
    monkeypatch.setattr(runner, "split_for", lambda cfg: events.append(("split_for",)) or "pipeline split")


def test_a_given_split_and_an_after_train_hook(tmp_path, monkeypatch, capsys):
    events = []
    _fakes(monkeypatch, events)
    cfg = resolve_config("smoke", "digits", "simclr", epochs=4)
    hook = lambda result: events.append(("after_train", result.epochs_done)) or 42.0
    assert runner.run_experiment(cfg, tmp_path, stop_after_epoch=2, split="own split", after_train=hook) is None
    assert "stopped after" not in capsys.readouterr().err  # the caller goes on in chunks and says so itself
    metrics = runner.run_experiment(cfg, tmp_path, split="own split", after_train=hook)
    assert metrics == {"auroc": {}}
    assert events == [("train", "own split", 2, True), ("after_train", 2),
                      ("train", "own split", None, True), ("after_train", 4), ("score", "own split", "model", 42.0)]


def test_without_hooks_the_pipeline_split_and_the_call_s_own_seconds(tmp_path, monkeypatch, capsys):
    events = []
    _fakes(monkeypatch, events)
    cfg = resolve_config("smoke", "digits", "simclr", epochs=4)
    assert runner.run_experiment(cfg, tmp_path, stop_after_epoch=2) is None
    assert "stopped after epoch 2 of 4" in capsys.readouterr().err
    runner.run_experiment(cfg, tmp_path)
    assert events[0] == ("split_for",) and events[-1] == ("score", "pipeline split", "model", 1.5)
