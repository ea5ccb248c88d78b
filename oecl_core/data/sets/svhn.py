"""SVHN cropped digits (OOD and far OE for CIFAR-10), from the format-2 .mat files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fetch import RemoteFile
from ..prep import DataSet, download_instructions, require, source_records
from ..prepared import write_prepared

SOURCES = (RemoteFile("train_32x32.mat", "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                      md5="e26dedcc434d2e4c54c9b2d4a06d8373"),
           RemoteFile("test_32x32.mat", "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
                      md5="eb5a983be6a315427106f1b164d9cef3"))
HOW = download_instructions("SVHN, cropped digits (format 2, .mat files; 'extra' is not used)", "svhn", SOURCES)


def _split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    mat = loadmat(str(path))
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{path}: expected MATLAB variables X and y, "
                         f"found {sorted(k for k in mat if not k.startswith('__'))}")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise ValueError(f"{path}: expected X of shape (32, 32, 3, N) and N labels, got {x.shape} and {len(y)}")
    if y.min(initial=1) < 1 or y.max(initial=10) > 10:
        raise ValueError(f"{path}: labels must be 1..10 (10 = digit 0), found {y.min()}..{y.max()}")
    if x.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 pixels, got {x.dtype}")
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), np.where(y == 10, 0, y)  # (H, W, C, N) -> (N, C, H, W)


def prepare_svhn(raw_dir, out_dir, *, verify: bool = True) -> dict:
    """SVHN cropped digits: 73,257 training and 26,032 test images, 32 px; label = the digit (10 -> 0)."""
    paths = require("svhn", raw_dir, [f.filename for f in SOURCES], HOW)
    sources = source_records(Path(raw_dir), paths, SOURCES, verify)
    splits = {"train": _split(paths[0]), "test": _split(paths[1])}
    return write_prepared(out_dir, "svhn", splits, [str(d) for d in range(10)], sources=sources,
                          notes="SVHN format 2 (train_32x32.mat, test_32x32.mat; extra not used); "
                                "the label 10 of the source (digit 0) is stored as 0.")


ENTRIES = [DataSet("svhn", "SVHN cropped digits (OOD / far OE)", prepare_svhn, SOURCES, HOW, label="SVHN",
                   image_size=32, stem="cifar", alpha=1.0, default_oe="tiny300k",
                   class_names=tuple(str(d) for d in range(10)),
                   split_sizes=((7326,) * 10, (2603,) * 10,
                                "approximate: SVHN's 73,257 / 26,032 images spread evenly over the digits"),
                   download_size=(182_040_794 + 64_275_384, "train_32x32.mat 182,040,794 + test_32x32.mat 64,275,384 "
                                                           "bytes as the SVHN server sends them"))]
