"""Jobs that start fast (issue 17): what a training job leaves unimported, and the embedded data read without
scikit-learn giving what scikit-learn gives. No timings here: tools/startup_bench.py measures them."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from oecl_core.data import embedded
from oecl_core.data.core import resize_uint8

REPO = Path(__file__).resolve().parents[1]
# Modules a training job does not need, each of which costs it a noticeable part of a second or more to import:
# scikit-learn (oecl_core.metrics computes the AUROC), pandas (tables, reports), torch._dynamo (torch.compile; torch's
# optimisers import it on first use, oecl_core.optim's do not), and the report and figure libraries.
HEAVY = ("sklearn", "pandas", "scipy", "matplotlib", "jinja2", "torchvision", "torch._dynamo")


def _loaded_after(code: str, tmp_path) -> list[str]:
    """The HEAVY modules loaded once `code` has run in a fresh interpreter."""
    check = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_command_line_imports_no_heavy_module(tmp_path):
    assert _loaded_after("from oecl_core.cli import build_parser\nbuild_parser().parse_args(['list'])", tmp_path) == []


def test_a_training_job_imports_no_heavy_module(tmp_path):
    # the whole train command of the smoke preset (data, network, optimiser steps, checkpoint), kept small
    args = ["train", "--preset", "smoke", "--dataset", "digits", "--method", "oecl", "--cls", "0", "--epochs", "1",
            "--train-size", "32", "--batch-size", "16", "--oe-batch-size", "16", "--log-samples", "8",
            "--out", str(tmp_path / "run")]
    loaded = _loaded_after(f"from oecl_core.cli import main\nassert main({args!r}) == 0", tmp_path)
    assert (tmp_path / "run" / "checkpoint.pt").exists()
    assert loaded == [], f"a training job imported {', '.join(loaded)}: import it where it is used"


def test_a_scored_run_job_imports_no_heavy_module(tmp_path):
    # scoring needs neither scikit-learn (oecl_core.metrics computes the AUROC), nor torchvision, whose import pulls
    # in torch._dynamo, nor torch._dynamo itself (resources.max_forward_views forwards a real view, not meta
    # tensors, which would import it): metrics.json records both versions all the same
    import sklearn
    import torchvision

    args = ["run", "--preset", "smoke", "--dataset", "digits", "--method", "oecl", "--cls", "0", "--epochs", "1",
            "--train-size", "32", "--batch-size", "16", "--oe-batch-size", "16", "--log-samples", "8", "--n-aug", "2",
            "--out", str(tmp_path / "run")]
    loaded = _loaded_after(f"from oecl_core.cli import main\nassert main({args!r}) == 0", tmp_path)
    assert loaded == [], f"a scored run imported {', '.join(loaded)}: import it where it is used"
    versions = json.loads((tmp_path / "run" / "metrics.json").read_text())["versions"]
    assert versions["torchvision"] == torchvision.__version__
    assert versions["scikit-learn"] == sklearn.__version__


def test_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, target = embedded._digit_arrays()
    assert images.dtype == bunch.images.dtype and np.array_equal(images, bunch.images)
    assert target.dtype == bunch.target.dtype and np.array_equal(target, bunch.target)


def test_sample_photos_are_scikit_learns():
    from sklearn.datasets import load_sample_images

    theirs, ours = load_sample_images().images, embedded._sample_photos()
    assert len(ours) == len(theirs) == 2
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_without_the_bundled_files_scikit_learns_loaders_are_used(monkeypatch):
    digits, photos = embedded.load_digits(16), embedded.load_sample_photo_crops(16, count=50)
    monkeypatch.setattr(embedded, "_sklearn_path", lambda *parts: None)
    again = embedded.load_digits(16)
    assert all(torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) for a, b in zip(digits, again))
    assert torch.equal(embedded.load_sample_photo_crops(16, count=50), photos)


def _crops_one_by_one(size, count, seed, digit_like):
    """The OE crops as first written: one crop, one resize at a time."""
    photos = [torch.from_numpy(np.array(p)).permute(2, 0, 1).contiguous() for p in embedded._sample_photos()]
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[1:]
        side = int(rng.integers(min(h, w) // 16, min(h, w) // 2 + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = photo[None, :, top:top + side, left:left + side]
        if digit_like:
            gray = (crop.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            small = resize_uint8(gray.round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous(), 8).float()
            lo, hi = small.amin(), small.amax()
            small = ((small - lo) / (hi - lo).clamp(min=1) * 16).round() * (255 / 16)
            crop = small.round().to(torch.uint8)
        crops.append(resize_uint8(crop, size)[0])
    return torch.stack(crops)


@pytest.mark.parametrize("size, seed, digit_like", [(16, 0, False), (16, 3, True), (32, 1, False), (32, 0, True)])
def test_photo_crops_resized_by_side_are_the_crops_resized_one_by_one(size, seed, digit_like):
    batched = embedded.load_sample_photo_crops(size, count=400, seed=seed, digit_like=digit_like)
    assert batched.dtype == torch.uint8 and batched.shape == (400, 3, size, size)
    assert torch.equal(batched, _crops_one_by_one(size, 400, seed, digit_like))
