"""Raabin-WBC (Kouzehkanan et al.): cropped double-labelled white blood cells, 5 classes; test set Test-A."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..core import list_images, storage_note
from ..fetch import RemoteFile
from ..prep import (DEFAULT_SIZE, DataSet, Part, Scratch, check_size, decode, download_instructions, file_job, nonempty,
                    part_records, resolve_parts, skip_note)
from ..prepared import write_prepared

RAABIN_CLASSES = ("basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil")
_URL = "https://dl.raabindata.com/WBC/Cropped_double_labeled/{}"
SOURCES = (RemoteFile("Train.rar", _URL.format("Train.rar")), RemoteFile("TestA.rar", _URL.format("TestA.rar")))
HOW = download_instructions("Raabin-WBC, cropped double-labelled white blood cells", "raabin", SOURCES, [
    "(the index page is https://dl.raabindata.com/WBC/Cropped_double_labeled/; use http:// if https fails).",
    "RAR archives need an extractor installed (unrar, unar, bsdtar from libarchive-tools, or 7z). Or extract them "
    "yourself so that there is Train/<Class>/*.jpg and TestA/<Class>/*.jpg, with <Class> in Basophil, Eosinophil, "
    "Lymphocyte, Monocyte, Neutrophil (any letter case)."])


def _class_folders(root: Path, expected: Sequence[str], name: str) -> dict[str, Path]:
    """Lower-cased class name -> its folder, for the `expected` classes; error if one is missing."""
    found = {d.name.lower(): d for d in sorted(root.iterdir()) if d.is_dir()}
    missing = [c for c in expected if c not in found]
    if missing:
        raise ValueError(f"{name}: {root} lacks the class folder(s) {', '.join(missing)} "
                         f"(found: {', '.join(sorted(found)) or 'none'})")
    return {c: found[c] for c in expected}


def prepare_raabin(raw_dir, out_dir, *, size: int = DEFAULT_SIZE, workers: int | None = None,
                   verify: bool = True) -> dict:
    """Raabin-WBC, cropped double-labelled cells: 5 classes (lower-cased folder names, alphabetical);
    train = Train, test = TestA (Test-B is not used)."""
    name = "raabin"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), check_size(size)
    parts = [Part("training images", ["Train"], "Train.rar"),
             Part("test images", ["TestA", "Test-A", "Test_A", "Test A"], "TestA.rar")]
    resolved = resolve_parts(name, raw_dir, parts, HOW)
    sources = part_records(raw_dir, parts, resolved, SOURCES, verify)
    skipped: list[str] = []
    splits, found = {}, {}
    with Scratch(out_dir) as scratch:
        for split, label in (("train", "training images"), ("test", "test images")):
            folders = _class_folders(resolved[label], RAABIN_CLASSES, name)
            jobs = [file_job(p, k, size) for k, c in enumerate(RAABIN_CLASSES) for p in list_images(folders[c])]
            found[split] = len(jobs)
            splits[split] = decode(jobs, scratch, split, size, workers, skipped)
            nonempty(name, split, splits[split][0], resolved[label])
        notes = (f"Raabin-WBC cropped double-labelled: train = Train ({found['train']} files), test = TestA "
                 f"({found['test']} files); classes = the lower-cased class folders; {storage_note(size)}."
                 + skip_note(skipped))
        return write_prepared(out_dir, name, splits, list(RAABIN_CLASSES), sources=sources, skipped=skipped,
                              notes=notes)


ENTRIES = [DataSet("raabin", "Raabin-WBC white blood cells, train / Test-A, 5 classes", prepare_raabin, SOURCES, HOW,
                   label="Raabin-WBC", image_size=224, stored_size=DEFAULT_SIZE, stem="imagenet", alpha=0.1,
                   crop_scale_min=0.5, default_oe="imagenet22k_minus_1k", class_names=RAABIN_CLASSES,
                   # as the data set's publication reports them (10,175 / 4,339), recalled, not read from files here
                   split_sizes=((212, 744, 2427, 561, 6231), (89, 322, 1034, 234, 2660),
                                "approximate: Raabin-WBC's published Train / Test-A counts per class"))]
