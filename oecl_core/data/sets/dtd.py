"""DTD (Describable Textures, r1.0.1, 47 classes of 120 images): at 32 px, an OE set and OOD set for CIFAR-10
(Tables III, IX); at 224 px, the one-vs-rest benchmark of Table VII. Both read the same download (raw/dtd/)."""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from ..core import stack_images, storage_note
from ..fetch import RemoteFile, _check_member
from ..prep import (DEFAULT_SIZE, DataSet, decode_image, download_instructions, read_member, require, source_records,
                    tar_files)
from ..prepared import write_prepared

ARCHIVE = "dtd-r1.0.1.tar.gz"
SOURCES = (RemoteFile(ARCHIVE, "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
                      md5="fff73e5086ae6bdbea199a49dfb8a4c1"),)
# The 47 class folders of images/ (sorted, as the preparer orders them), known before preparation for planning.
CLASSES = ("banded", "blotchy", "braided", "bubbly", "bumpy", "chequered", "cobwebbed", "cracked", "crosshatched",
           "crystalline", "dotted", "fibrous", "flecked", "freckled", "frilly", "gauzy", "grid", "grooved",
           "honeycombed", "interlaced", "knitted", "lacelike", "lined", "marbled", "matted", "meshed", "paisley",
           "perforated", "pitted", "pleated", "polka-dotted", "porous", "potholed", "scaly", "smeared", "spiralled",
           "sprinkled", "stained", "stratified", "striped", "studded", "swirly", "veined", "waffled", "woven",
           "wrinkled", "zigzagged")
HOW = download_instructions("DTD (Describable Textures Dataset) r1.0.1", "dtd", SOURCES)
HOW224 = HOW + ("\ndtd224 (DTD at 224 px) reads the same file in raw/dtd/: `python -m oecl_core data prepare dtd224`, "
                "or `python -m oecl_core data prepare dtd224 --from PATH` with the same archive or folder.")


def prepare_dtd(raw_dir, out_dir, *, size: int = 32, fold: int = 1, train_parts=("train", "val"), name: str = "dtd",
                verify: bool = True) -> dict:
    """DTD split `fold` (1..10): train = the lists `train_parts` of the fold (default train + val), test = its test
    list; images stored as core.read_image stores them at `size` (at 32 px centre squares; dtd224 at 256 px keeps
    their aspect ratio). The archive is read in place, front to back."""
    if not 1 <= int(fold) <= 10:
        raise ValueError(f"dtd: fold must be 1..10, got {fold}")
    if int(size) < 1:
        raise ValueError(f"dtd: size must be positive, got {size}")
    train_parts = tuple(train_parts)
    if not train_parts or set(train_parts) - {"train", "val"}:
        raise ValueError(f"dtd: train_parts must be a non-empty subset of ('train', 'val'), got {train_parts}")
    [archive] = require(name, raw_dir, [ARCHIVE], HOW224 if name == "dtd224" else HOW)
    sources = source_records(Path(raw_dir), [archive], SOURCES, verify)
    skipped: list[str] = []
    with tarfile.open(archive, "r:*") as tf:
        files = tar_files(archive, tf)
        label_file = f"labels/train{fold}.txt"
        roots = [n[: -len(label_file)] for n in files if n == label_file or n.endswith("/" + label_file)]
        if len(roots) != 1:
            raise ValueError(f"{archive} is not the DTD archive: expected one member <root>/{label_file}, "
                             f"found {len(roots)}")
        root = roots[0]  # "dtd/" in the official archive
        lists = {}
        for part in ("train", "val", "test"):
            member = files.get(f"{root}labels/{part}{fold}.txt")
            if member is None:
                raise ValueError(f"{archive}: missing {root}labels/{part}{fold}.txt")
            text = read_member(archive, tf, member).decode("utf-8")
            lists[part] = [line.strip().replace("\\", "/") for line in text.splitlines() if line.strip()]
        wanted = {rel for part in (*train_parts, "test") for rel in lists[part]}
        for rel in wanted:
            _check_member(archive, rel)
        bad = sorted(rel for rel in wanted if "/" not in rel)
        if bad:
            raise ValueError(f"{archive}: label-list entries must be 'class/file.jpg', got e.g. {bad[0]!r}")
        class_names = sorted({rel.split("/")[0] for rel in lists["train"] + lists["val"] + lists["test"]})
        decoded: dict[str, np.ndarray] = {}
        members = [(rel, files[f"{root}images/{rel}"]) for rel in wanted if f"{root}images/{rel}" in files]
        for rel, member in sorted(members, key=lambda item: item[1].offset):  # archive order: one pass over a .tar.gz
            try:
                decoded[rel] = decode_image(read_member(archive, tf, member), int(size))
            except Exception as err:  # a corrupt image must not end the preparation; it is listed instead
                skipped.append(f"{root}images/{rel}: {type(err).__name__}: {err}")
    skipped += [f"{root}images/{rel}: listed in labels/ but not in the archive"
                for rel in sorted(wanted - decoded.keys()) if f"{root}images/{rel}" not in files]
    index = {c: i for i, c in enumerate(class_names)}
    splits = {}
    for split, parts in (("train", train_parts), ("test", ("test",))):
        rels = [rel for part in parts for rel in lists[part] if rel in decoded]
        if not rels:
            raise ValueError(f"{archive}: no readable image in the {split} split of fold {fold}")
        splits[split] = (stack_images([decoded[r] for r in rels], int(size)),
                         np.array([index[r.split("/")[0]] for r in rels], dtype=np.int64))
    train_lists = " + ".join(f"{p}{fold}" for p in train_parts)
    return write_prepared(out_dir, name, splits, class_names, sources=sources, skipped=skipped,
                          notes=f"DTD r1.0.1, fold {fold}: train = {train_lists} (in list order), test = test{fold}; "
                                f"{storage_note(int(size))}.")


def prepare_dtd224(raw_dir, out_dir, *, size: int = DEFAULT_SIZE, fold: int = 1, verify: bool = True) -> dict:
    """DTD one vs. rest at 224 px (Table VII) as eoe runs it (torchvision's DTD, split 'train' of fold 1 for
    training, 40 images per class; 'test' for testing): stored at 256 for the 224 crop."""
    return prepare_dtd(raw_dir, out_dir, size=size, fold=fold, train_parts=("train",), name="dtd224", verify=verify)


ENTRIES = [
    DataSet("dtd", "Describable Textures at 32 px, 47 classes (OE / OOD for CIFAR-10)", prepare_dtd, SOURCES, HOW,
            label="DTD", image_size=32, stem="cifar", alpha=1.0, default_oe="tiny300k", class_names=CLASSES,
            split_sizes=((80,) * 47, (40,) * 47, "DTD's fold 1: train + val, test (40 images per class each)"),
            download_size=(625_239_812, "dtd-r1.0.1.tar.gz as the VGG server sends it (Content-Length)")),
    # Table VII: OE ImageNet-22k minus 1k, as the paper's text (App. D) and the eoe DTD runner whose HSC / BCE numbers
    # the table quotes (oe_dataset='imagenet21k'); the caption's ImageNet-1k is the variant
    # `one_vs_rest~oe=imagenet1k` (docs/fidelity.md, "Table VII's OE"). The paper gives no alpha for DTD; 0.1 is its
    # value for the other small 224-px sets.
    DataSet("dtd224", "Describable Textures at 224 px, one vs. rest, 40 training images per class (Table VII)",
            prepare_dtd224, SOURCES, HOW224, label="DTD", image_size=224, stored_size=DEFAULT_SIZE, stem="imagenet",
            alpha=0.1, default_oe="imagenet22k_minus_1k", class_names=CLASSES, raw_name="dtd",
            split_sizes=((40,) * 47, (40,) * 47, "DTD's fold 1: train, test (40 images per class each)"),
            download_size=(625_239_812, "dtd-r1.0.1.tar.gz, shared with dtd (raw/dtd/)")),
]
