"""Preparers for the classic 32-pixel data sets: CIFAR-10, CIFAR-100, SVHN, DTD, 300K random images, 80M Tiny Images.

Contract (one entry per registry name):

    SOURCES[name]      the files to download (RemoteFile); empty for manual data sets
    INSTRUCTIONS[name] how to get the files by hand: where from, where to put them, the layout expected
    PREPARERS[name]    prepare(raw_dir, out_dir, **options) -> manifest dict

`raw_dir` holds the files exactly as named in SOURCES (archives not extracted) or, for manual data sets,
what INSTRUCTIONS says. Archives are read in place (tarfile), refusing member names that are absolute or
contain "..". Missing input raises ManualDownloadRequired (a FileNotFoundError) before anything is
written; the output is written by write_prepared, which only shows a complete folder.

Every preparer accepts `verify` (default True): each input file is hashed (md5 and sha256 in one pass,
recorded in the manifest's `sources`) and, where a checksum is published, compared with it
(ChecksumError on mismatch). The 80M Tiny Images binary (~244 GB) is not hashed unless asked
(`hash_bin=True`); its size is recorded.

Splits: "train" and "test"; sets used only as outlier exposure (300K random images, 80M Tiny Images)
have a single "train" split with label -1 (unlabelled) and no class names.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np

from .core import read_image
from .download import ChecksumError, ManualDownloadRequired, RemoteFile, UnsafeArchiveError
from .prepared import write_prepared

__all__ = ["SOURCES", "INSTRUCTIONS", "PREPARERS", "prepare_cifar10", "prepare_cifar100", "prepare_svhn",
           "prepare_dtd", "prepare_tiny300k", "prepare_tiny80m"]

TINY_IMAGE_BYTES = 32 * 32 * 3
TINY80M_BIN = "tiny_images.bin"
TINY80M_IDX = "80mn_cifar_idxs.txt"
TINY300K_FILE = "300K_random_images.npy"
DTD_FILE = "dtd-r1.0.1.tar.gz"

SOURCES: dict[str, list[RemoteFile]] = {
    "cifar10": [RemoteFile("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                           md5="c58f30108f718f92721af3b95e74349a", size=170498071)],
    "cifar100": [RemoteFile("cifar-100-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                            md5="eb9058c3a382ffc7106e4002c42a8d85", size=169001437)],
    "svhn": [
        RemoteFile("train_32x32.mat", "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                   md5="e26dedcc434d2e4c54c9b2d4a06d8373"),
        RemoteFile("test_32x32.mat", "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
                   md5="eb5a983be6a315427106f1b164d9cef3"),
    ],
    "dtd": [RemoteFile(DTD_FILE, "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
                       md5="fff73e5086ae6bdbea199a49dfb8a4c1")],
    "tiny300k": [RemoteFile(TINY300K_FILE, "https://people.eecs.berkeley.edu/~hendrycks/300K_random_images.npy",
                            md5="64ca64357de98351f28454274a112dc3")],
    "tiny80m": [],  # manual: withdrawn upstream
}


def _download_instructions(name: str, what: str) -> str:
    files = SOURCES[name]
    lines = [f"{what}: put these files, unchanged (archives not extracted), into raw_dir/ "
             f"(the folder given to the preparer, e.g. <data root>/raw/{name}/):"]
    for f in files:
        lines.append(f"  raw_dir/{f.filename}   from {f.url}   (md5 {f.md5})")
    lines.append(f"They are downloaded automatically by `python -m oecl_core data prepare {name}`; "
                 "download them by hand only when that is not possible (no network on the machine).")
    return "\n".join(lines)


INSTRUCTIONS: dict[str, str] = {
    "cifar10": _download_instructions("cifar10", "CIFAR-10 (python version)"),
    "cifar100": _download_instructions("cifar100", "CIFAR-100 (python version)"),
    "svhn": _download_instructions("svhn", "SVHN, cropped digits (format 2, .mat files; 'extra' is not used)"),
    "dtd": _download_instructions("dtd", "DTD (Describable Textures Dataset) r1.0.1"),
    "tiny300k": _download_instructions("tiny300k", "300K random images (Hendrycks et al.'s OE substitute for 80M Tiny Images)"),
    "tiny80m": (
        "80M Tiny Images is a manual download: the data set was withdrawn by its authors in 2020 and has no "
        "official source any more. Copies of the original binary survive on archive.org (search archive.org "
        "for 'tiny_images.bin' / '80 Million Tiny Images'); use it only if your institution's policy allows.\n"
        "Put into raw_dir/ (the folder given to the preparer, e.g. <data root>/raw/tiny80m/):\n"
        f"  raw_dir/{TINY80M_BIN}        the original binary, 79,302,017 images of 3,072 bytes each "
        "(about 244 GB; each image a 32x32x3 array stored column-major, as MATLAB writes it)\n"
        f"  raw_dir/{TINY80M_IDX}   the list of 1-based indices of images that are in CIFAR-10/100, one per "
        "line (it ships with Hendrycks et al.'s outlier-exposure code, utils/80mn_cifar_idxs.txt)\n"
        "Both files are read in place (memory-mapped); nothing is extracted. Where 80M Tiny Images cannot be "
        "obtained, use 'tiny300k' (300K random images) instead and say so when reporting results."
    ),
}


# --------------------------------------------------------------------------------------------- helpers


def _require(name: str, raw_dir: Path, filenames: Iterable[str]) -> list[Path]:
    """The input files, or ManualDownloadRequired naming the missing ones and how to get them."""
    raw_dir = Path(raw_dir)
    paths = [raw_dir / f for f in filenames]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ManualDownloadRequired(
            f"{name}: missing input file(s) {', '.join(str(p) for p in missing)}\n{INSTRUCTIONS[name]}")
    return paths


def _file_record(path: Path, remote: RemoteFile | None, verify: bool) -> dict:
    """md5 + sha256 + size of a file (one pass); compared with the published checksum when `verify`."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            md5.update(block)
            sha.update(block)
    record = {"md5": md5.hexdigest(), "sha256": sha.hexdigest(), "bytes": path.stat().st_size, "verified": False}
    if verify and remote is not None:
        for algo in ("md5", "sha256"):
            expected = getattr(remote, algo)
            if expected and record[algo] != expected.lower():
                raise ChecksumError(
                    f"{path}: {algo} {record[algo]} does not match the published {expected}; the file is corrupt "
                    "or a different release: delete it and download it again (or pass verify=False to prepare "
                    "it anyway)")
            if expected:
                record["verified"] = algo
    return record


def _sources(name: str, paths: list[Path], verify: bool) -> dict:
    remotes = {r.filename: r for r in SOURCES[name]}
    return {p.name: _file_record(p, remotes.get(p.name), verify) for p in paths}


def _check_member_name(archive: Path, name: str) -> None:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and len(parts[0]) == 2 and parts[0][1] == ":"):
        raise UnsafeArchiveError(f"{archive}: refusing member {name!r} (absolute path or '..')")


def _tar_files(archive: Path, tf: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Regular-file members by normalised name, after checking every member's name."""
    files = {}
    for m in tf.getmembers():
        _check_member_name(archive, m.name)
        if m.isfile():
            files[m.name[2:] if m.name.startswith("./") else m.name] = m
    return files


def _read_member(archive: Path, tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tf.extractfile(member)
    if f is None:
        raise ValueError(f"{archive}: member {member.name} cannot be read")
    with f:
        return f.read()


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
    # latin1: the CIFAR pickles were written by Python 2 (str keys); bytes keys (b"data") are kept as bytes.
    obj = _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------------------------- CIFAR


def _cifar_batches(archive: Path, folder: str, batch_names: dict[str, list[str]], meta_name: str):
    """Reads the members `folder/<batch>` of a CIFAR python archive: (split -> list of dicts, meta dict)."""
    out: dict[str, list[dict]] = {split: [] for split in batch_names}
    with tarfile.open(archive, "r:*") as tf:
        files = _tar_files(archive, tf)
        wanted = [f"{folder}/{b}" for names in batch_names.values() for b in names] + [f"{folder}/{meta_name}"]
        missing = [w for w in wanted if w not in files]
        if missing:
            raise ValueError(f"{archive} is not the expected archive: it lacks {', '.join(missing)}")
        meta = _unpickle(_read_member(archive, tf, files[f"{folder}/{meta_name}"]), f"{archive}:{meta_name}")
        for split, names in batch_names.items():
            for b in names:
                out[split].append(_unpickle(_read_member(archive, tf, files[f"{folder}/{b}"]), f"{archive}:{b}"))
    return out, meta


def _cifar_images(batch: dict, label_key: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != TINY_IMAGE_BYTES or len(data) != len(labels):
        raise ValueError(f"{where}: expected data uint8 (N, 3072) and N labels, got {data.dtype} {data.shape}, "
                         f"{len(labels)} labels")
    # Each row: the 1,024 red values (row-major), then green, then blue.
    return data.reshape(-1, 3, 32, 32), labels


def prepare_cifar10(raw_dir, out_dir, *, verify: bool = True) -> dict:
    """CIFAR-10: 50,000 training and 10,000 test images, 32 px, 10 classes (batches.meta order)."""
    [archive] = _require("cifar10", raw_dir, [f.filename for f in SOURCES["cifar10"]])
    sources = _sources("cifar10", [archive], verify)
    batches, meta = _cifar_batches(archive, "cifar-10-batches-py",
                                   {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                                   "batches.meta")
    class_names = [_text(n) for n in meta["label_names"]]
    splits = {}
    for split, items in batches.items():
        parts = [_cifar_images(b, "labels", f"{archive}:{split}") for b in items]
        splits[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return write_prepared(out_dir, "cifar10", splits, class_names, sources=sources,
                          notes="CIFAR-10 python version; train = data_batch_1..5 in order, test = test_batch.")


def prepare_cifar100(raw_dir, out_dir, *, verify: bool = True) -> dict:
    """CIFAR-100: 50,000 / 10,000 images, 32 px, the 100 fine labels (the 20 super-classes go in the notes)."""
    [archive] = _require("cifar100", raw_dir, [f.filename for f in SOURCES["cifar100"]])
    sources = _sources("cifar100", [archive], verify)
    batches, meta = _cifar_batches(archive, "cifar-100-python", {"train": ["train"], "test": ["test"]}, "meta")
    class_names = [_text(n) for n in meta["fine_label_names"]]
    coarse_names = [_text(n) for n in meta.get("coarse_label_names", [])]
    splits, fine_to_coarse = {}, {}
    for split, [batch] in batches.items():
        images, labels = _cifar_images(batch, "fine_labels", f"{archive}:{split}")
        if "coarse_labels" in batch:
            for f, c in zip(labels.tolist(), np.asarray(batch["coarse_labels"]).tolist()):
                fine_to_coarse.setdefault(int(f), int(c))
        splits[split] = (images, labels)
    notes = "CIFAR-100 python version; labels are the 100 fine labels."
    if fine_to_coarse:
        mapping = [fine_to_coarse.get(i, -1) for i in range(len(class_names))]
        notes += (f" Super-class (coarse label) of fine label i: fine_to_coarse={mapping};"
                  f" coarse_label_names={coarse_names}.")
    return write_prepared(out_dir, "cifar100", splits, class_names, sources=sources, notes=notes)


# --------------------------------------------------------------------------------------------- SVHN


def _svhn_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    mat = loadmat(str(path))
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{path}: expected MATLAB variables X and y, found {sorted(k for k in mat if not k.startswith('__'))}")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise ValueError(f"{path}: expected X of shape (32, 32, 3, N) and N labels, got {x.shape} and {len(y)}")
    if y.min(initial=1) < 1 or y.max(initial=10) > 10:
        raise ValueError(f"{path}: labels must be 1..10 (10 = digit 0), found {y.min()}..{y.max()}")
    if x.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 pixels, got {x.dtype}")
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))  # (H, W, C, N) -> (N, C, H, W)
    return images, np.where(y == 10, 0, y)


def prepare_svhn(raw_dir, out_dir, *, verify: bool = True) -> dict:
    """SVHN cropped digits: 73,257 training and 26,032 test images, 32 px; label = the digit (10 -> 0)."""
    paths = _require("svhn", raw_dir, [f.filename for f in SOURCES["svhn"]])
    sources = _sources("svhn", paths, verify)
    splits = {"train": _svhn_split(paths[0]), "test": _svhn_split(paths[1])}
    return write_prepared(out_dir, "svhn", splits, [str(d) for d in range(10)], sources=sources,
                          notes="SVHN format 2 (train_32x32.mat, test_32x32.mat; extra not used); "
                                "the label 10 of the source (digit 0) is stored as 0.")


# --------------------------------------------------------------------------------------------- DTD


def _decode_image(data: bytes, size: int) -> np.ndarray:
    """core.read_image on bytes: shorter side to `size`, centre square, uint8 (3, size, size)."""
    return read_image(io.BytesIO(data), size)


def prepare_dtd(raw_dir, out_dir, *, size: int = 32, fold: int = 1, verify: bool = True) -> dict:
    """DTD: 47 texture classes, 120 images each; split `fold` (1..10): train = train<fold> + val<fold>,
    test = test<fold>. Images resized to size x size (shorter side, centre square; 32: OE for CIFAR)."""
    if not 1 <= int(fold) <= 10:
        raise ValueError(f"dtd: fold must be 1..10, got {fold}")
    if int(size) < 1:
        raise ValueError(f"dtd: size must be positive, got {size}")
    [archive] = _require("dtd", raw_dir, [DTD_FILE])
    sources = _sources("dtd", [archive], verify)
    skipped: list[str] = []
    with tarfile.open(archive, "r:*") as tf:
        files = _tar_files(archive, tf)
        label_file = f"labels/train{fold}.txt"
        roots = [n[: -len(label_file)] for n in files if n == label_file or n.endswith("/" + label_file)]
        if len(roots) != 1:
            raise ValueError(f"{archive} is not the DTD archive: expected one member <root>/{label_file}, found {len(roots)}")
        root = roots[0]  # "dtd/" in the official archive
        lists = {}
        for part in ("train", "val", "test"):
            member = files.get(f"{root}labels/{part}{fold}.txt")
            if member is None:
                raise ValueError(f"{archive}: missing {root}labels/{part}{fold}.txt")
            text = _read_member(archive, tf, member).decode("utf-8")
            lists[part] = [line.strip().replace("\\", "/") for line in text.splitlines() if line.strip()]
        wanted = {rel for entries in lists.values() for rel in entries}
        for rel in wanted:
            _check_member_name(archive, rel)
        class_names = sorted({rel.split("/")[0] for rel in wanted if "/" in rel})
        bad = sorted(rel for rel in wanted if "/" not in rel)
        if bad:
            raise ValueError(f"{archive}: label-list entries must be 'class/file.jpg', got e.g. {bad[0]!r}")
        decoded: dict[str, np.ndarray] = {}
        # Tar order: a .tar.gz is read front to back once.
        for rel, member in sorted(((rel, files[f"{root}images/{rel}"]) for rel in wanted if f"{root}images/{rel}" in files),
                                  key=lambda item: item[1].offset):
            try:
                decoded[rel] = _decode_image(_read_member(archive, tf, member), int(size))
            except Exception as err:  # a corrupt image must not end the preparation; it is listed instead
                skipped.append(f"{root}images/{rel}: {type(err).__name__}: {err}")
    for rel in sorted(wanted - decoded.keys()):
        if f"{root}images/{rel}" not in files:
            skipped.append(f"{root}images/{rel}: listed in labels/ but not in the archive")
    index = {c: i for i, c in enumerate(class_names)}
    splits = {}
    for split, parts in (("train", ("train", "val")), ("test", ("test",))):
        rels = [rel for part in parts for rel in lists[part] if rel in decoded]
        if not rels:
            raise ValueError(f"{archive}: no readable image in the {split} split of fold {fold}")
        splits[split] = (np.stack([decoded[r] for r in rels]),
                         np.array([index[r.split("/")[0]] for r in rels], dtype=np.int64))
    return write_prepared(out_dir, "dtd", splits, class_names, sources=sources, skipped=skipped,
                          notes=f"DTD r1.0.1, fold {fold}: train = train{fold} + val{fold} (in list order), "
                                f"test = test{fold}; images {size}x{size} (shorter side resized, centre square).")


# --------------------------------------------------------------------------------------------- 300K random images


def prepare_tiny300k(raw_dir, out_dir, *, limit: int | None = None, seed: int | None = None, verify: bool = True) -> dict:
    """300K random images (OE only): one "train" split, label -1. `limit`: keep at most that many images,
    the first ones (seed None) or a seeded random subset (kept in file order). The file is memory-mapped."""
    [path] = _require("tiny300k", raw_dir, [TINY300K_FILE])
    sources = _sources("tiny300k", [path], verify)
    data = np.load(path, mmap_mode="r")
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (32, 32, 3):
        raise ValueError(f"{path}: expected uint8 (N, 32, 32, 3), got {data.dtype} {data.shape}")
    n = len(data)
    how = "all images"
    if limit is not None and int(limit) < n:
        limit = int(limit)
        if limit < 1:
            raise ValueError(f"tiny300k: limit must be positive, got {limit}")
        if seed is None:
            data, how = data[:limit], f"the first {limit} images"
        else:
            idx = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
            data, how = data[idx], f"{limit} images drawn uniformly without replacement (seed {seed}), in file order"
    images = data.transpose(0, 3, 1, 2)  # NHWC -> NCHW; a view: write_prepared streams it to disk
    labels = np.full(len(images), -1, dtype=np.int64)
    return write_prepared(out_dir, "tiny300k", {"train": (images, labels)}, [], sources=sources,
                          notes=f"300K random images (Hendrycks et al.), OE only, unlabelled (-1); {how} of {n}. "
                                "A substitute for 80M Tiny Images: results can differ, say which OE was used.")


# --------------------------------------------------------------------------------------------- 80M Tiny Images


def _read_cifar_idxs(path: Path, n_images: int) -> np.ndarray:
    """The 0-based indices listed (1-based) in 80mn_cifar_idxs.txt, sorted and unique."""
    values = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            values.append(int(line))
        except ValueError:
            raise ValueError(f"{path}:{lineno}: expected an integer index, got {line!r}") from None
    idx = np.unique(np.asarray(values, dtype=np.int64)) - 1
    if len(idx) and (idx[0] < 0 or idx[-1] >= n_images):
        raise ValueError(f"{path}: indices must be 1..{n_images} (1-based, {TINY80M_BIN} holds {n_images} images); "
                         f"found {idx[0] + 1}..{idx[-1] + 1}: the two files do not belong together")
    return idx


def _sample_excluding(n: int, excluded: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` distinct indices of range(n) not in `excluded` (sorted unique), uniformly, sorted; memory O(count +
    len(excluded)) however large n is."""
    available = n - len(excluded)
    if count > available:
        raise ValueError(f"cannot draw {count} images: only {available} are not CIFAR images")
    ranks = np.sort(rng.choice(available, size=count, replace=False))
    # The r-th allowed index is r plus the number of excluded indices e_k with e_k - k <= r
    # (e_k - k = how many allowed indices come before e_k).
    shifted = excluded - np.arange(len(excluded))
    return ranks + np.searchsorted(shifted, ranks, side="right")


def tiny80m_decode(raw: np.ndarray) -> np.ndarray:
    """Raw 3,072-byte records (N, 3072) of tiny_images.bin -> uint8 (N, 3, 32, 32).

    A record is a MATLAB 32x32x3 array in column-major order: byte c*1024 + col*32 + row. Per image that is
    np.frombuffer(rec, uint8).reshape(32, 32, 3, order="F") (HWC), transposed to CHW."""
    return raw.reshape(-1, 3, 32, 32).transpose(0, 1, 3, 2)


def prepare_tiny80m(raw_dir, out_dir, *, count: int = 300_000, seed: int = 0, chunk: int = 8192,
                    verify: bool = True, hash_bin: bool = False) -> dict:
    """80M Tiny Images (OE only, manual): `count` images drawn uniformly without replacement (seeded) among those
    not listed in 80mn_cifar_idxs.txt; read through a memory map in file order; one "train" split, label -1."""
    bin_path, idx_path = _require("tiny80m", raw_dir, [TINY80M_BIN, TINY80M_IDX])
    size = bin_path.stat().st_size
    if size == 0 or size % TINY_IMAGE_BYTES:
        raise ValueError(f"{bin_path}: {size} bytes is not a whole number of {TINY_IMAGE_BYTES}-byte images; "
                         "the file is truncated or not tiny_images.bin")
    n = size // TINY_IMAGE_BYTES
    count = int(count)
    if count < 1:
        raise ValueError(f"tiny80m: count must be positive, got {count}")
    sources = {TINY80M_IDX: _file_record(idx_path, None, verify),
               TINY80M_BIN: (_file_record(bin_path, None, verify) if hash_bin else
                             {"bytes": size, "images": n, "sha256": None,
                              "note": "not hashed (about 244 GB); prepare with hash_bin=True to record it"})}
    excluded = _read_cifar_idxs(idx_path, n)
    idx = _sample_excluding(n, excluded, count, np.random.default_rng(seed))
    mm = np.memmap(bin_path, dtype=np.uint8, mode="r", shape=(n, TINY_IMAGE_BYTES))
    images = np.empty((count, 3, 32, 32), dtype=np.uint8)
    for start in range(0, count, chunk):
        sel = idx[start:start + chunk]
        images[start:start + len(sel)] = tiny80m_decode(np.asarray(mm[sel]))
    del mm
    labels = np.full(count, -1, dtype=np.int64)
    return write_prepared(out_dir, "tiny80m", {"train": (images, labels)}, [], sources=sources,
                          notes=f"80M Tiny Images, OE only, unlabelled (-1): {count} of the {n - len(excluded)} images "
                                f"not in {TINY80M_IDX} ({len(excluded)} CIFAR indices excluded, 1-based in the file), "
                                f"drawn uniformly without replacement with numpy default_rng({seed}), stored in file order.")


PREPARERS: dict[str, Callable[..., dict]] = {
    "cifar10": prepare_cifar10,
    "cifar100": prepare_cifar100,
    "svhn": prepare_svhn,
    "dtd": prepare_dtd,
    "tiny300k": prepare_tiny300k,
    "tiny80m": prepare_tiny80m,
}
