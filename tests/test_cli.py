"""End-to-end tests of the command line (`python -m oecl_core ...`), run in-process through cli.main.

Every training call uses the smoke preset with a tiny budget (2 epochs, 1/16-width ResNet, 16 px, 2 views),
so the whole file runs in seconds on a CPU.
"""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from oecl_core.cli import main
from oecl_core.config import PRESETS
from oecl_core.scores import SCORE_NAMES
from oecl_core.train import LOG_FIELDS

REPO = Path(__file__).resolve().parents[1]

# A tiny budget on top of the smoke preset.
TINY = ["--preset", "smoke", "--epochs", "2", "--width", "0.0625", "--n-aug", "2", "--batch-size", "16",
        "--oe-batch-size", "16", "--image-size", "16", "--log-samples", "32", "--device", "cpu"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield


def _digits_args(command: str, out: Path, *extra: str) -> list[str]:
    return [command, "--dataset", "digits", "--benchmark", "one_vs_rest", "--cls", "1", "--method", "oecl",
            *TINY, "--out", str(out), *extra]


def _read_log(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


def _checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)


# ---------------------------------------------------------------------------------------------------------
# 1. bad input: exit code 2, "error: ..." naming the valid choices, and nothing written
# ---------------------------------------------------------------------------------------------------------

BAD_INPUTS = [
    # (extra args replacing the defaults, words the error must contain)
    (["--method", "bogus"], ["unknown method", "'bogus'", "oecl", "self_oecl", "simclr"]),
    (["--dataset", "bogus"], ["unknown data set", "'bogus'", "digits", "folder:ROOT"]),
    (["--preset", "bogus"], ["unknown preset", "'bogus'", *PRESETS]),
    (["--oe", "bogus"], ["unknown OE source", "'bogus'", "none", "sample_photos", "folder:DIR"]),
    (["--cls", "10"], ["class index 10", "out of range", "0=0", "1=1", "9=9"]),
    (["--cls", "-1"], ["class index -1", "out of range", "0=0", "9=9"]),
]


@pytest.mark.parametrize("command", ["run", "train"])
@pytest.mark.parametrize("bad, words", BAD_INPUTS, ids=[" ".join(b) for b, _ in BAD_INPUTS])
def test_bad_input_exits_2_listing_the_valid_choices(tmp_path, capsys, command, bad, words):
    out = tmp_path / "run"
    args = [command, "--dataset", "digits", "--cls", "1", "--method", "oecl", *TINY, "--out", str(out)]
    # the later occurrence of a flag wins in argparse: the bad value overrides the good default above
    rc = main(args + bad)
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.startswith("error: ")
    for word in words:
        assert word in captured.err, (word, captured.err)
    assert "Traceback" not in captured.err
    assert not (out / "checkpoint.pt").exists()
    assert not (out / "config.json").exists()
    assert not (out / "log.csv").exists()
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize("bad, words", [
    (["--epochs", "0"], ["invalid run settings", "epochs must be >= 1"]),
    (["--batch-size", "1"], ["batch_size must be >= 2"]),
    (["--lr-schedule", "weekly"], ["lr_schedule must be 'step', 'epoch' or 'multistep'"]),
    (["--crop-scale-min", "0"], ["crop_scale_min must be in (0, 1]"]),
    (["--n-aug", "-1"], ["n_aug must be >= 0"]),
    (["--oe", "none"], ["method oecl needs an OE source"]),
])
def test_invalid_settings_exit_2_before_any_work(tmp_path, capsys, bad, words):
    out = tmp_path / "run"
    rc = main(_digits_args("run", out) + bad)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ")
    for word in words:
        assert word in err, (word, err)
    assert not out.exists()


def test_unknown_benchmark_and_missing_command_are_errors(tmp_path, capsys):
    assert main(_digits_args("run", tmp_path / "run") + ["--benchmark", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark" in err and "one_vs_rest" in err and "leave_one_out" in err
    assert main(_digits_args("run", tmp_path / "run") + ["--benchmark", "one_vs_rest~colour=red"]) == 2
    assert "colour=red" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["run", "--dataset", "digits"])  # --out is required
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_score_without_a_trained_run_exits_2(tmp_path, capsys):
    rc = main(["score", "--run", str(tmp_path / "nothing_here")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "config.json" in err


# ---------------------------------------------------------------------------------------------------------
# 2. run: all four files, sensible contents, and a re-run that scores again without retraining
# ---------------------------------------------------------------------------------------------------------

def test_run_writes_config_log_checkpoint_and_metrics_and_rerun_does_not_retrain(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(_digits_args("run", out))
    stdout = capsys.readouterr().out
    assert rc == 0
    printed = json.loads(stdout)
    assert set(printed) == {"auroc", "status"}

    # config.json: the preset, the data set's defaults and the overrides, resolved
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "digits" and config["benchmark"] == "one_vs_rest" and config["cls"] == 1
    assert config["method"] == "oecl" and config["preset"] == "smoke"
    assert config["epochs"] == 2 and config["width"] == 0.0625 and config["n_aug"] == 2
    assert config["batch_size"] == 16 and config["oe_batch_size"] == 16 and config["image_size"] == 16
    assert config["oe"] == "sample_photos_digit_like"  # the digits' default OE source
    assert config["alpha"] == pytest.approx(0.1)  # the digits' OE weight
    assert config["optimizer"] == "sgd"  # from the smoke preset

    # log.csv: one row per epoch with the documented columns
    header, rows = _read_log(out / "log.csv")
    assert header == LOG_FIELDS
    assert header[:7] == ["epoch", "loss", "lr", "alpha", "norm_id", "norm_oe", "norm_ood"]
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r in rows:
        for k in ("loss", "lr", "norm_id", "norm_oe", "norm_ood", "seconds", "images_per_s"):
            assert math.isfinite(float(r[k])), (k, r)
        assert float(r["alpha"]) in (0.0, pytest.approx(0.1))
        assert float(r["norm_id"]) > 0
    assert float(rows[-1]["alpha"]) == pytest.approx(0.1)  # OE is on by the last epoch
    assert float(rows[1]["lr"]) < float(rows[0]["lr"]) <= 0.1  # cosine decay from the base rate

    # checkpoint.pt: the final epoch, the same settings and log
    state = _checkpoint(out)
    assert state["epoch"] == 2
    assert state["config"] == config
    assert [r["epoch"] for r in state["log"]] == [1, 2]

    # metrics.json
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["auroc"]) == set(SCORE_NAMES)
    for name, value in metrics["auroc"].items():
        assert 0.0 <= value <= 1.0, (name, value)
    assert metrics["status"] in ("ok", "collapsed")
    assert metrics["collapsed"] == (metrics["status"] == "collapsed")
    assert metrics["auroc"] == pytest.approx(printed["auroc"]) and metrics["status"] == printed["status"]
    assert metrics["settings"] == config
    split = metrics["split"]
    assert 0 < split["n_test_normal"] < split["n_test"]
    assert split["n_train"] > 0 and split["n_oe"] > 0
    assert set(metrics["final_norms"]) == {"norm_id", "norm_oe", "norm_ood"}

    # The same command again: no training, same log and checkpoint, metrics written again.
    log_text = (out / "log.csv").read_text()
    ckpt_bytes = (out / "checkpoint.pt").read_bytes()
    (out / "metrics.json").unlink()
    rc = main(_digits_args("run", out))
    capsys.readouterr()
    assert rc == 0
    assert (out / "log.csv").read_text() == log_text
    assert (out / "checkpoint.pt").read_bytes() == ckpt_bytes
    assert _checkpoint(out)["epoch"] == 2
    again = json.loads((out / "metrics.json").read_text())
    assert again["auroc"] == pytest.approx(metrics["auroc"])
    assert again["status"] == metrics["status"]


# ---------------------------------------------------------------------------------------------------------
# 3. train: stop, resume (exactly), score, and refuse a resume with other settings
# ---------------------------------------------------------------------------------------------------------

def test_train_stop_resume_score_and_settings_mismatch(tmp_path, capsys):
    out = tmp_path / "run"
    args = _digits_args("train", out)

    assert main(args + ["--stop-after-epoch", "1"]) == 0
    assert "stopped after epoch 1" in capsys.readouterr().out
    _, rows = _read_log(out / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [1]
    assert _checkpoint(out)["epoch"] == 1
    assert not (out / "metrics.json").exists()

    # Scoring a half-trained run is refused.
    assert main(["score", "--run", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "epoch 1 of 2" in err
    assert not (out / "metrics.json").exists()

    # The same command without the flag resumes and finishes.
    assert main(args) == 0
    assert "finished" in capsys.readouterr().out
    _, resumed = _read_log(out / "log.csv")
    assert [int(r["epoch"]) for r in resumed] == [1, 2]
    assert resumed[0] == rows[0]  # the first epoch's row is kept, not retrained
    assert _checkpoint(out)["epoch"] == 2

    # An uninterrupted run of the same settings: the resumed run continued exactly as if never stopped.
    ref = tmp_path / "ref"
    assert main(_digits_args("train", ref)) == 0
    capsys.readouterr()
    _, straight = _read_log(ref / "log.csv")
    for a, b in zip(resumed, straight):
        for k in ("loss", "lr", "alpha", "norm_id", "norm_oe", "norm_ood"):
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-4, abs=1e-6), (k, a, b)
    m_resumed, m_straight = _checkpoint(out)["model"], _checkpoint(ref)["model"]
    for k in m_straight:
        assert torch.allclose(m_resumed[k].float(), m_straight[k].float(), rtol=1e-4, atol=1e-5), k

    # score --run writes metrics.json
    assert main(["score", "--run", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["auroc"]) == set(SCORE_NAMES)
    assert all(0.0 <= v <= 1.0 for v in metrics["auroc"].values())
    assert printed["auroc"] == pytest.approx(metrics["auroc"]) and printed["status"] == metrics["status"]

    # Another learning rate on the same folder: refused, naming the setting; the run is left as it was.
    log_text = (out / "log.csv").read_text()
    assert main(args + ["--lr", "0.05"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "lr: 0.1 -> 0.05" in err
    assert (out / "log.csv").read_text() == log_text
    assert _checkpoint(out)["epoch"] == 2
    assert _checkpoint(out)["config"]["lr"] == 0.1

    # Settings that do not change the result (device, checkpoint_every) may change on resumption.
    assert main(args + ["--checkpoint-every", "1"]) == 0
    assert "finished" in capsys.readouterr().out


def test_refused_resume_leaves_config_json_and_score_intact(tmp_path, capsys):
    out = tmp_path / "run"
    args = _digits_args("train", out)
    assert main(args) == 0
    config_before = (out / "config.json").read_text()

    assert main(args + ["--width", "0.125"]) == 2
    assert "width: 0.0625 -> 0.125" in capsys.readouterr().err
    assert (out / "config.json").read_text() == config_before
    assert main(["score", "--run", str(out)]) == 0


# ---------------------------------------------------------------------------------------------------------
# 4. fit / predict on a user's own image folders
# ---------------------------------------------------------------------------------------------------------

def _disk(w: int, h: int, rng) -> "Image.Image":  # noqa: F821 (imported inside)
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (w, h), (0, 0, 0))
    r = min(w, h) * rng.uniform(0.25, 0.45)
    cx, cy = w / 2 + rng.uniform(-2, 2), h / 2 + rng.uniform(-2, 2)
    ImageDraw.Draw(im).ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 255, 255))
    return im


def _noise(w: int, h: int, rng) -> "Image.Image":  # noqa: F821 (imported inside)
    from PIL import Image

    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))


SIZES = [(20, 30), (32, 32), (40, 24), (17, 17), (64, 48), (24, 40)]


def _write_images(folder: Path, make, n: int, seed: int, prefix: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        ext = ".png" if i % 2 == 0 else ".jpg"
        path = folder / f"{prefix}{i:02d}{ext}"
        im = make(w, h, rng)
        if i % 4 == 3:
            im = im.convert("L")  # grayscale files are read as RGB too
        im.save(path)
        paths.append(path)
    return paths


def _fit_args(normal: Path, oe: Path, model: Path, *extra: str) -> list[str]:
    return ["fit", "--normal", str(normal), "--oe", str(oe), "--out", str(model), "--preset", "smoke",
            "--epochs", "2", "--width", "0.0625", "--n-aug", "2", "--batch-size", "8", "--oe-batch-size", "8",
            "--image-size", "16", "--log-samples", "16", "--device", "cpu", *extra]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, _one_torch_thread):
    """A model fitted once on 24 white disks (normal) and 24 noise images (OE)."""
    root = tmp_path_factory.mktemp("fit")
    normal = root / "normal"
    oe = root / "oe"
    _write_images(normal, _disk, 24, seed=0, prefix="disk")
    _write_images(oe, _noise, 24, seed=1, prefix="noise")
    model = root / "model.pt"
    rc = main(_fit_args(normal, oe, model))
    assert rc == 0
    return root, model


def test_fit_writes_a_model_file_and_its_run_folder(fitted, capsys):
    root, model = fitted
    assert model.is_file()
    state = torch.load(model, map_location="cpu", weights_only=False)
    assert set(state) >= {"config", "model", "collapsed"}
    cfg = state["config"]
    assert cfg["method"] == "oecl"
    assert cfg["dataset"] == "folder:" + str(root / "normal")
    assert cfg["oe"] == "folder:" + str(root / "oe")
    assert cfg["image_size"] == 16 and cfg["epochs"] == 2 and cfg["width"] == 0.0625
    assert isinstance(state["collapsed"], bool)
    work = root / "model.pt.run"
    _, rows = _read_log(work / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r["norm_oe"])) for r in rows)  # the OE folder was used

    # Fitting again with the same command does not retrain: the work folder's checkpoint is reused.
    ckpt = (work / "checkpoint.pt").read_bytes()
    assert main(_fit_args(root / "normal", root / "oe", model)) == 0
    assert "24 normal, 24 OE images" in capsys.readouterr().out
    assert (work / "checkpoint.pt").read_bytes() == ckpt


def _read_scores(text: str) -> list[list[str]]:
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == ["path", "score"]
    return rows[1:]


def test_predict_writes_one_finite_score_per_image(fitted, tmp_path, capsys):
    _, model = fitted
    test = tmp_path / "test"
    disks = _write_images(test, _disk, 3, seed=5, prefix="disk")
    noise = _write_images(test / "sub", _noise, 3, seed=6, prefix="noise")  # sub-folders are searched too
    (test / "notes.txt").write_text("not an image")  # ignored: not an image suffix
    images = {str(p) for p in disks + noise}

    out_csv = tmp_path / "scores.csv"
    rc = main(["predict", "--model", str(model), str(test), "--out", str(out_csv), "--device", "cpu"])
    assert rc == 0
    assert "wrote 6 scores" in capsys.readouterr().out
    rows = _read_scores(out_csv.read_text())
    assert len(rows) == 6
    assert {r[0] for r in rows} == images
    scores = {r[0]: float(r[1]) for r in rows}
    assert all(math.isfinite(s) for s in scores.values())

    # To standard output: the same CSV.
    rc = main(["predict", "--model", str(model), str(test), "--device", "cpu"])
    stdout = capsys.readouterr().out
    assert rc == 0
    rows_stdout = _read_scores(stdout)
    assert {r[0] for r in rows_stdout} == images
    for path, s in rows_stdout:
        assert float(s) == pytest.approx(scores[path], rel=1e-5)

    # Single files, another score function.
    rc = main(["predict", "--model", str(model), str(disks[0]), str(noise[0]), "--score", "s_l2", "--device", "cpu"])
    rows = _read_scores(capsys.readouterr().out)
    assert rc == 0
    assert [r[0] for r in rows] == [str(disks[0]), str(noise[0])]
    assert all(math.isfinite(float(r[1])) for r in rows)


def test_predict_bad_input_exits_2(fitted, tmp_path, capsys):
    _, model = fitted
    missing = tmp_path / "does_not_exist"
    rc = main(["predict", "--model", str(model), str(missing)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and str(missing) in err and "neither an image file nor a folder" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    rc = main(["predict", "--model", str(model), str(empty)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "no images" in err

    img = _write_images(tmp_path / "one", _disk, 1, seed=0, prefix="x")[0]
    rc = main(["predict", "--model", str(model), str(img), "--n-aug", "0"])  # s_mu needs views
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "--n-aug > 0" in err

    rc = main(["predict", "--model", str(tmp_path / "no_model.pt"), str(img)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "no_model.pt" in err


def test_predict_csv_quotes_paths_with_commas(fitted, tmp_path, capsys):
    _, model = fitted
    folder = tmp_path / "a,b"
    img = _write_images(folder, _disk, 1, seed=0, prefix="x")[0]
    rc = main(["predict", "--model", str(model), str(img), "--device", "cpu"])
    assert rc == 0
    rows = _read_scores(capsys.readouterr().out)
    assert rows[0][0] == str(img) and len(rows[0]) == 2


def test_predict_on_an_unreadable_image_exits_2(fitted, tmp_path, capsys):
    _, model = fitted
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    rc = main(["predict", "--model", str(model), str(bad)])
    assert rc == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_fit_with_an_empty_or_missing_folder_exits_2(tmp_path, capsys):
    oe = tmp_path / "oe"
    _write_images(oe, _noise, 4, seed=1, prefix="noise")
    empty = tmp_path / "normal"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    model = tmp_path / "model.pt"

    rc = main(_fit_args(empty, oe, model))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "no images found" in err and str(empty) in err
    assert not model.exists()
    assert not (tmp_path / "model.pt.run" / "checkpoint.pt").exists()

    rc = main(_fit_args(tmp_path / "missing", oe, model))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "does not exist" in err
    assert not model.exists()

    rc = main(_fit_args(oe, empty, model))  # empty OE folder
    err = capsys.readouterr().err
    assert rc == 2
    assert "no images found" in err
    assert not model.exists()


def test_fit_stop_after_epoch_writes_no_model_until_finished(tmp_path, capsys):
    normal, oe = tmp_path / "normal", tmp_path / "oe"
    _write_images(normal, _disk, 8, seed=0, prefix="disk")
    _write_images(oe, _noise, 8, seed=1, prefix="noise")
    model = tmp_path / "model.pt"
    assert main(_fit_args(normal, oe, model, "--stop-after-epoch", "1")) == 0
    assert "stopped after epoch 1" in capsys.readouterr().err
    assert not model.exists()
    _, rows = _read_log(tmp_path / "model.pt.run" / "log.csv")
    assert len(rows) == 1
    assert main(_fit_args(normal, oe, model)) == 0
    assert model.exists()
    _, rows = _read_log(tmp_path / "model.pt.run" / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]


# ---------------------------------------------------------------------------------------------------------
# 5. list, in-process and through the module entry point
# ---------------------------------------------------------------------------------------------------------

LISTED = ["digits", "folder:ROOT", "oecl", "self_oecl", "simclr", "paper", "official", "smoke",
          "sample_photos", "folder:DIR", "one_vs_rest", "leave_one_out"]


def test_list_prints_data_sets_methods_and_presets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split(":", 1)[0].strip(): line.split(":", 1)[1] for line in out.splitlines()}
    assert "digits" in lines["data sets"]
    from oecl_core.methods import METHODS

    listed = [m.strip() for m in lines["methods"].split(",")]
    assert listed == list(METHODS)  # every registered method, in the registry's order
    assert listed[:3] == ["simclr", "oecl", "self_oecl"]  # the paper's methods first, then the baselines
    assert [p.strip() for p in lines["presets"].split(",")] == ["paper", "official", "smoke"]
    assert "sample_photos" in lines["OE"] and "none" in lines["OE"]
    for word in LISTED:
        assert word in out


def _config_yaml_oe_sets() -> set[str]:
    """Every OE a run of config.yaml's tables and figures resolves to under every preset (its benchmark spec's oe=,
    else its data set's default as the preset sets it), and every default OE the registries name."""
    from oecl_core.config import DATASET_OE, PRESETS
    from oecl_core.data import DATASETS
    from oecl_core.experiments import run_config
    from oecl_core.plan import load_pipeline_config, target_groups

    config = load_pipeline_config(REPO / "config.yaml")
    used = {run_config(preset, run).oe for preset in PRESETS
            for runs in target_groups(config, "all", preset).values() for run in runs}
    used |= {spec.default_oe for spec in DATASETS.values()} | set(DATASET_OE.values())
    return {name for name in used if not name.startswith("folder:")}


def _option_help(command: str, dest: str) -> str:
    import argparse

    from oecl_core.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return next(a.help for a in sub.choices[command]._actions if a.dest == dest)


def test_list_and_the_oe_help_name_every_oe_set_config_yaml_uses(capsys):
    import re

    used = _config_yaml_oe_sets()
    # the sets the tables need beyond the built-in sources: the test would pass vacuously without them
    assert {"tiny300k", "imagenet22k_minus_1k", "imagenet1k_minus_30", "svhn", "dtd", "cifar100", "benchmark"} <= used
    assert main(["list"]) == 0
    oe_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("OE:"))
    texts = {"list": oe_line, **{f"{c} --oe": _option_help(c, "oe") for c in ("run", "train", "sweep")}}
    for where, text in texts.items():
        named = set(re.findall(r"[\w:]+", text))
        assert not used - named, f"{where} omits {sorted(used - named)}: {text}"


def test_sweep_says_which_methods_it_runs():
    import argparse

    from oecl_core.cli import SWEEP_METHODS, build_parser
    from oecl_core.methods import METHODS

    assert set(SWEEP_METHODS) < set(METHODS)  # some methods, not every one
    parser = build_parser()
    assert parser.parse_args(["sweep", "--out", "r"]).methods == list(SWEEP_METHODS)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summary = next(a.help for a in sub._choices_actions if a.dest == "sweep")
    assert ", ".join(SWEEP_METHODS) in summary and "not every method" in summary
    assert ", ".join(SWEEP_METHODS) in _option_help("sweep", "methods")


def test_module_entry_point_runs_list(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "oecl_core", "list"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for word in LISTED:
        assert word in proc.stdout

    proc = subprocess.run([sys.executable, "-m", "oecl_core", "run", "--method", "bogus", "--out", str(tmp_path / "r")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: unknown method 'bogus'" in proc.stderr


def test_run_and_predict_with_a_baseline_use_its_network_and_own_score(tmp_path, capsys):
    out = tmp_path / "hsc"
    args = [a if a != "oecl" else "hsc" for a in _digits_args("run", out)]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["auroc"]) == {"exp_neg_d"} and metrics["settings"]["optimizer"] == "adam"
    capsys.readouterr()
    images = _write_images(tmp_path / "imgs", _disk, 2, seed=1, prefix="disk")
    assert main(["predict", "--model", str(out / "checkpoint.pt"), *map(str, images), "--device", "cpu"]) == 0
    rows = _read_scores(capsys.readouterr().out)
    assert len(rows) == 2 and all(0 < float(s) <= 1 for _, s in rows)  # exp(-d(z)) lies in (0, 1]


# ---------------------------------------------------------------------------------------------------------
# Overrides generated from RunConfig's fields; the sweep's run folders
# ---------------------------------------------------------------------------------------------------------

# Each subcommand's own required arguments.
REQUIRED = {"run": ["--out", "r"], "train": ["--out", "r"], "sweep": ["--out", "r"],
            "fit": ["--normal", "n", "--oe", "o", "--out", "m.pt"]}


def _sample(name: str):
    """Command-line words for a setting and the value they must give, by the field's type."""
    from typing import get_origin

    from oecl_core.config import SETTING_TYPES

    kind, flag = SETTING_TYPES[name], "--" + name.replace("_", "-")
    if kind is bool:
        return [flag], True
    if get_origin(kind) is tuple:
        return [flag, "30", "40"], (30, 40)
    text = {int: "7", float: "0.25", str: "abc"}[kind]
    return [flag, text], kind(text)


@pytest.mark.parametrize("command", list(REQUIRED))
def test_every_run_setting_is_a_typed_command_line_override(command):
    """Every RunConfig field but those naming the run (and --oe, declared per subcommand) is an override of the
    preset, parsed to the field's type; a new field gets its option without touching the CLI."""
    from dataclasses import fields

    from oecl_core.cli import build_parser
    from oecl_core.cli_settings import overrides_of
    from oecl_core.config import IDENTITY_FIELDS, RunConfig

    parser = build_parser()
    settings = [f.name for f in fields(RunConfig) if f.name not in IDENTITY_FIELDS + ("oe",)]
    assert set(overrides_of(parser.parse_args([command, *REQUIRED[command]]))) == set(settings)
    assert all(v is None for v in overrides_of(parser.parse_args([command, *REQUIRED[command]])).values())
    for name in settings:
        words, value = _sample(name)
        got = overrides_of(parser.parse_args([command, *REQUIRED[command], *words]))
        assert got[name] == value and type(got[name]) is type(value), name
        assert all(v is None for k, v in got.items() if k != name)
    if command in ("run", "train"):  # with the run's own arguments, every setting but the spec's label
        given = vars(parser.parse_args([command, *REQUIRED[command]]))
        assert {f.name for f in fields(RunConfig)} - {"label"} <= set(given)


def test_overrides_reach_the_run_config_and_old_spellings_still_work():
    from oecl_core.cli import _config, build_parser

    args = build_parser().parse_args(["run", "--out", "r", "--preset", "smoke", "--benchmark", "one_vs_rest~epochs=9",
                                      "--lr-schedule", "multistep", "--lr-milestones", "3", "5", "--s-mu-clean-view",
                                      "--fixed-oe", "--epochs", "6"])
    cfg = _config(args)
    assert (cfg.lr_milestones, cfg.s_mu_clean_view, cfg.oe_resample, cfg.epochs) == ((3, 5), True, False, 6)
    assert cfg.label == "one_vs_rest~epochs=9"
    args = build_parser().parse_args(["run", "--out", "r", "--preset", "smoke", "--no-oe-resample"])
    assert _config(args).oe_resample is False
    args = build_parser().parse_args(["run", "--out", "r", "--preset", "smoke", "--fixed-oe", "--resample-oe"])
    assert _config(args).oe_resample is True


def test_sweep_writes_each_run_in_the_pipelines_run_folder(tmp_path, capsys):
    from oecl_core.experiments import Run

    out = tmp_path / "sweep"
    assert main(["sweep", "--dataset", "digits", "--methods", "simclr", "--classes", "2", "--seeds", "1",
                 *TINY, "--out", str(out)]) == 0
    folder = out / Run("one_vs_rest", "digits", "simclr", 2, 1).relative_folder
    assert folder == out / "one_vs_rest/digits/simclr/2/seed1"
    assert json.loads((folder / "metrics.json").read_text())["settings"]["cls"] == 2
    assert (out / "auc.csv").is_file() and "simclr" in capsys.readouterr().out
