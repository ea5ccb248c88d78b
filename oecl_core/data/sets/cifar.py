"""CIFAR-10 (the paper's 32-px data set) and CIFAR-100 (OOD and OE for CIFAR-10), from the python archives."""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ..fetch import RemoteFile
from ..prep import DataSet, download_instructions, read_member, require, source_records, tar_files
from ..prepared import write_prepared

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PIXELS = 32 * 32 * 3
CIFAR10_SOURCES = (RemoteFile("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                              md5="c58f30108f718f92721af3b95e74349a"),)
CIFAR100_SOURCES = (RemoteFile("cifar-100-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                               md5="eb9058c3a382ffc7106e4002c42a8d85"),)
CIFAR10_HOW = download_instructions("CIFAR-10 (python version)", "cifar10", CIFAR10_SOURCES)
CIFAR100_HOW = download_instructions("CIFAR-100 (python version)", "cifar100", CIFAR100_SOURCES)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches (dicts of lists, bytes and numpy arrays) and nothing that runs code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol 2 stores bytes when written by Python 3 (harmless: str -> bytes)
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} (not a numpy array part)")
        module = module.replace("numpy.core.", "numpy._core.") if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _unpickle(data: bytes, where: str) -> dict:
    # latin1: the CIFAR pickles were written by Python 2 (str keys); bytes keys (b"data") are decoded.
    obj = _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _batches(archive: Path, folder: str, batch_names: dict[str, list[str]], meta_name: str):
    """The members folder/<batch> of a CIFAR python archive: (split -> list of dicts, meta dict)."""
    out: dict[str, list[dict]] = {split: [] for split in batch_names}
    with tarfile.open(archive, "r:*") as tf:
        files = tar_files(archive, tf)
        wanted = [f"{folder}/{b}" for names in batch_names.values() for b in names] + [f"{folder}/{meta_name}"]
        absent = [w for w in wanted if w not in files]
        if absent:
            raise ValueError(f"{archive} is not the expected archive: it lacks {', '.join(absent)}")
        meta = _unpickle(read_member(archive, tf, files[f"{folder}/{meta_name}"]), f"{archive}:{meta_name}")
        for split, names in batch_names.items():
            for b in names:
                out[split].append(_unpickle(read_member(archive, tf, files[f"{folder}/{b}"]), f"{archive}:{b}"))
    return out, meta


def _images(batch: dict, label_key: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS or len(data) != len(labels):
        raise ValueError(f"{where}: expected data uint8 (N, 3072) and N labels, got {data.dtype} {data.shape}, "
                         f"{len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels  # each row: 1,024 red values (row-major), then green, then blue


def prepare_cifar10(raw_dir, out_dir, *, verify: bool = True) -> dict:
    """CIFAR-10: 50,000 training and 10,000 test images, 32 px, 10 classes (batches.meta order)."""
    [archive] = require("cifar10", raw_dir, [f.filename for f in CIFAR10_SOURCES], CIFAR10_HOW)
    sources = source_records(Path(raw_dir), [archive], CIFAR10_SOURCES, verify)
    batches, meta = _batches(archive, "cifar-10-batches-py",
                             {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                             "batches.meta")
    splits = {}
    for split, items in batches.items():
        parts = [_images(b, "labels", f"{archive}:{split}") for b in items]
        splits[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return write_prepared(out_dir, "cifar10", splits, [_text(n) for n in meta["label_names"]], sources=sources,
                          notes="CIFAR-10 python version; train = data_batch_1..5 in order, test = test_batch.")


def prepare_cifar100(raw_dir, out_dir, *, verify: bool = True) -> dict:
    """CIFAR-100: 50,000 / 10,000 images, 32 px, the 100 fine labels (the 20 super-classes go in the notes)."""
    [archive] = require("cifar100", raw_dir, [f.filename for f in CIFAR100_SOURCES], CIFAR100_HOW)
    sources = source_records(Path(raw_dir), [archive], CIFAR100_SOURCES, verify)
    batches, meta = _batches(archive, "cifar-100-python", {"train": ["train"], "test": ["test"]}, "meta")
    class_names = [_text(n) for n in meta["fine_label_names"]]
    coarse_names = [_text(n) for n in meta.get("coarse_label_names", [])]
    splits, fine_to_coarse = {}, {}
    for split, [batch] in batches.items():
        images, labels = _images(batch, "fine_labels", f"{archive}:{split}")
        if "coarse_labels" in batch:
            for f, c in zip(labels.tolist(), np.asarray(batch["coarse_labels"]).tolist()):
                fine_to_coarse.setdefault(int(f), int(c))
        splits[split] = (images, labels)
    notes = "CIFAR-100 python version; labels are the 100 fine labels."
    if fine_to_coarse:
        mapping = [fine_to_coarse.get(i, -1) for i in range(len(class_names))]
        notes += (f" Super-class (coarse label) of fine label i: fine_to_coarse={mapping}; "
                  f"coarse_label_names={coarse_names}.")
    return write_prepared(out_dir, "cifar100", splits, class_names, sources=sources, notes=notes)


ENTRIES = [
    # alpha 1 for CIFAR-10 (App. I); 80M Tiny Images is the paper's OE, the 300K random images stand in by default
    DataSet("cifar10", "CIFAR-10, 50,000 / 10,000 images, 10 classes", prepare_cifar10, CIFAR10_SOURCES, CIFAR10_HOW,
            label="CIFAR-10", image_size=32, stem="cifar", alpha=1.0, default_oe="tiny300k", class_names=CLASSES,
            split_sizes=((5000,) * 10, (1000,) * 10, "CIFAR-10's split"),
            download_size=(170_498_071, "cifar-10-python.tar.gz as the CIFAR server sends it (Content-Length)")),
    DataSet("cifar100", "CIFAR-100 (OOD / OE for CIFAR-10)", prepare_cifar100, CIFAR100_SOURCES, CIFAR100_HOW,
            label="CIFAR-100", image_size=32, stem="cifar", alpha=1.0, default_oe="tiny300k",
            split_sizes=((500,) * 100, (100,) * 100, "CIFAR-100's split (100 fine classes)"),
            download_size=(169_001_437, "cifar-100-python.tar.gz as the CIFAR server sends it (Content-Length)")),
]
