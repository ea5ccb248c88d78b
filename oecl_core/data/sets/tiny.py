"""The OE pools of the 32-px data sets: 80M Tiny Images (the paper's, withdrawn upstream) and the 300K random
images that stand in for it (Hendrycks et al.)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fetch import RemoteFile, file_record
from ..prep import DataSet, download_instructions, require, source_records
from ..prepared import write_prepared

TINY_IMAGE_BYTES = 32 * 32 * 3
TINY80M_BIN = "tiny_images.bin"
TINY80M_IDX = "80mn_cifar_idxs.txt"
TINY300K_FILE = "300K_random_images.npy"
TINY300K_SOURCES = (RemoteFile(TINY300K_FILE, "https://people.eecs.berkeley.edu/~hendrycks/300K_random_images.npy",
                               md5="64ca64357de98351f28454274a112dc3"),)
TINY300K_HOW = download_instructions("300K random images (Hendrycks et al.'s OE substitute for 80M Tiny Images)",
                                     "tiny300k", TINY300K_SOURCES)
TINY80M_HOW = (
    "80M Tiny Images is a manual download: the data set was withdrawn by its authors in 2020 and has no official "
    "source any more. Copies of the original binary survive on archive.org (search archive.org for "
    "'tiny_images.bin' / '80 Million Tiny Images'); use it only if your institution's policy allows.\n"
    "Put into <data root>/raw/tiny80m/ (or give the folder holding them to `data prepare tiny80m --from PATH`):\n"
    f"  {TINY80M_BIN}        the original binary, 79,302,017 images of 3,072 bytes each (about 244 GB; each image "
    "a 32x32x3 array stored column-major, as MATLAB writes it)\n"
    f"  {TINY80M_IDX}   the 1-based indices of the images that are in CIFAR-10/100, one per line (it ships with "
    "Hendrycks et al.'s outlier-exposure code, utils/80mn_cifar_idxs.txt)\n"
    "Both files are read in place (memory-mapped). Where 80M Tiny Images cannot be obtained, use 'tiny300k' "
    "(300K random images) instead and say so when reporting results.")


def prepare_tiny300k(raw_dir, out_dir, *, limit: int | None = None, seed: int | None = None,
                     verify: bool = True) -> dict:
    """300K random images (OE only): one "train" split, label -1. `limit`: keep at most that many images, the
    first ones (seed None) or a seeded random subset (kept in file order). The file is memory-mapped."""
    [path] = require("tiny300k", raw_dir, [TINY300K_FILE], TINY300K_HOW)
    sources = source_records(Path(raw_dir), [path], TINY300K_SOURCES, verify)
    data = np.load(path, mmap_mode="r")
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (32, 32, 3):
        raise ValueError(f"{path}: expected uint8 (N, 32, 32, 3), got {data.dtype} {data.shape}")
    n, how = len(data), "all images"
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
    return write_prepared(out_dir, "tiny300k", {"train": (images, np.full(len(images), -1, dtype=np.int64))}, [],
                          sources=sources,
                          notes=f"300K random images (Hendrycks et al.), OE only, unlabelled (-1); {how} of {n}. "
                                "A substitute for 80M Tiny Images: results can differ, say which OE was used.")


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


def sample_excluding(n: int, excluded: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` distinct indices of range(n) not in `excluded` (sorted unique), uniformly, sorted; memory
    O(count + len(excluded)) however large n is."""
    available = n - len(excluded)
    if count > available:
        raise ValueError(f"cannot draw {count} images: only {available} are not CIFAR images")
    ranks = np.sort(rng.choice(available, size=count, replace=False))
    # The r-th allowed index is r plus the number of excluded e_k with e_k - k <= r (e_k - k allowed ones precede e_k).
    return ranks + np.searchsorted(excluded - np.arange(len(excluded)), ranks, side="right")


def tiny80m_decode(raw: np.ndarray) -> np.ndarray:
    """Raw 3,072-byte records (N, 3072) of tiny_images.bin -> uint8 (N, 3, 32, 32). A record is a MATLAB 32x32x3
    array in column-major order (byte c*1024 + col*32 + row), so it is transposed to CHW."""
    return raw.reshape(-1, 3, 32, 32).transpose(0, 1, 3, 2)


def prepare_tiny80m(raw_dir, out_dir, *, count: int = 300_000, seed: int = 0, chunk: int = 8192,
                    verify: bool = True, hash_bin: bool = False) -> dict:
    """80M Tiny Images (OE only, manual): `count` images drawn uniformly without replacement (seeded) among those
    not listed in 80mn_cifar_idxs.txt; read through a memory map in file order; one "train" split, label -1."""
    bin_path, idx_path = require("tiny80m", raw_dir, [TINY80M_BIN, TINY80M_IDX], TINY80M_HOW)
    size = bin_path.stat().st_size
    if size == 0 or size % TINY_IMAGE_BYTES:
        raise ValueError(f"{bin_path}: {size} bytes is not a whole number of {TINY_IMAGE_BYTES}-byte images; "
                         "the file is truncated or not tiny_images.bin")
    n, count = size // TINY_IMAGE_BYTES, int(count)
    if count < 1:
        raise ValueError(f"tiny80m: count must be positive, got {count}")
    sources = {TINY80M_IDX: file_record(idx_path, check=False),
               TINY80M_BIN: (file_record(bin_path, check=False) if hash_bin else
                             {"bytes": size, "images": n, "sha256": None,
                              "note": "not hashed (about 244 GB); prepare with hash_bin=True to record it"})}
    excluded = _read_cifar_idxs(idx_path, n)
    idx = sample_excluding(n, excluded, count, np.random.default_rng(seed))
    mm = np.memmap(bin_path, dtype=np.uint8, mode="r", shape=(n, TINY_IMAGE_BYTES))
    images = np.empty((count, 3, 32, 32), dtype=np.uint8)
    for start in range(0, count, chunk):
        sel = idx[start:start + chunk]
        images[start:start + len(sel)] = tiny80m_decode(np.asarray(mm[sel]))
    del mm
    return write_prepared(out_dir, "tiny80m", {"train": (images, np.full(count, -1, dtype=np.int64))}, [],
                          sources=sources,
                          notes=f"80M Tiny Images, OE only, unlabelled (-1): {count} of the {n - len(excluded)} images "
                                f"not in {TINY80M_IDX} ({len(excluded)} CIFAR indices excluded, 1-based in the file), "
                                f"drawn uniformly without replacement with numpy default_rng({seed}), "
                                "stored in file order.")


ENTRIES = [
    DataSet("tiny300k", "300K random images, OE standing in for 80M Tiny Images", prepare_tiny300k, TINY300K_SOURCES,
            TINY300K_HOW, label="300K random images (standing in for 80M Tiny Images)",
            split_sizes=((300_000,), (), "the file's 300,000 images (all kept unless limit is given)"),
            download_size=(300_000 * TINY_IMAGE_BYTES + 128, "from its layout: one .npy of 300,000 uint8 images of "
                                                             "32 x 32 x 3 and its 128-byte header")),
    DataSet("tiny80m", "80M Tiny Images minus CIFAR, OE (manual, withdrawn upstream)", prepare_tiny80m, (),
            TINY80M_HOW, label="80M Tiny Images",
            download_size=(79_302_017 * TINY_IMAGE_BYTES, f"{TINY80M_BIN}: 79,302,017 images of 3,072 bytes")),
]
