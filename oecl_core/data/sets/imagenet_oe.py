"""ImageNet outlier-exposure pools for the 224-px data sets, sampled from an ImageNet folder the user has
(registration at image-net.org): ImageNet-22k minus ImageNet-1k (the paper's, Table VII's included), ImageNet-1k minus
given classes (the public OECL code's for ImageNet-30) and ImageNet-1k (Table VII's caption, a variant).

The ImageNet-1k synset list imagenet1k_synsets.txt (in oecl_core/data/) is the file timm/data/_info/imagenet_synsets.txt
of the `timm` wheel on PyPI (timm 1.0.31): 1,000 WordNet ids, one per line, in class-index order. The ImageNet-30 list
imagenet30_wnids.txt (beside it) pairs each of ImageNet-30's 30 class folders with its wnid; its header says where the
pairs come from (the authors' hendrycks/ss-ood) and how they were checked."""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..core import IMAGE_SUFFIXES, storage_note
from ..prep import (DEFAULT_SIZE, FROM, DataSet, Scratch, check_size, file_job, missing, n_workers, run_jobs,
                    skip_note)
from ..prepared import write_prepared

SYNSETS_FILE = Path(__file__).parent.parent / "imagenet1k_synsets.txt"
IMAGENET30_FILE = Path(__file__).parent.parent / "imagenet30_wnids.txt"
_WNID = re.compile(r"^n\d{8}$")
_LAYOUT = ("Extract it as an ImageFolder, one folder per WordNet id: <data root>/raw/{name}/<wnid>/*.JPEG, or give "
           "that folder, or a folder holding it as {subs}, to `python -m oecl_core data prepare {name} --from PATH` "
           "(read where it is, nothing copied).")
_1K_SUBS = "train/ or ILSVRC2012_img_train/"
INSTRUCTIONS = {
    "imagenet22k_minus_1k": "\n".join([
        "ImageNet-22k minus ImageNet-1k (OE for the 224-pixel data sets): a manual download. Register at "
        "https://image-net.org and download the full ImageNet release (fall11_whole, no longer offered, or its "
        "successor winter21_whole). "
        + _LAYOUT.format(name="imagenet22k_minus_1k",
                         subs="imagenet22k/, imagenet21k/, fall11_whole/ or winter21_whole/"),
        "  winter21 ships one .tar per wnid: extract each into its own folder (mkdir nX && tar -xf nX.tar -C nX).",
        "Folders of the 1,000 ImageNet-1k synsets (oecl_core/data/imagenet1k_synsets.txt) are skipped, as are those "
        "passed in exclude_wnids; `count` images are sampled from the rest."]),
    "imagenet1k_minus_30": "\n".join([
        "ImageNet-1k training images minus ImageNet-30's 30 classes: the OE the public OECL code uses for ImageNet-30 "
        "(the paper states ImageNet-22k minus 1k). A manual download: register at https://image-net.org, download "
        "ILSVRC2012_img_train.tar and extract it (and the per-class tars inside). "
        + _LAYOUT.format(name="imagenet1k_minus_30", subs=_1K_SUBS),
        "The class folders of ImageNet-30's 30 wnids (oecl_core/data/imagenet30_wnids.txt, from the authors' "
        "hendrycks/ss-ood) are left out; --option exclude_wnids=ID,ID,... leaves out those folders instead."]),
    "imagenet1k": "\n".join([
        "ImageNet-1k training images (the OE Table VII's caption names; its text and eoe's runners use ImageNet-22k, "
        "the default): a manual download. "
        "Register at https://image-net.org, download ILSVRC2012_img_train.tar and extract it (and the per-class tars "
        "inside). " + _LAYOUT.format(name="imagenet1k", subs=_1K_SUBS)]),
}


def imagenet1k_wnids() -> list[str]:
    """The 1,000 ImageNet-1k synset ids (timm's imagenet_synsets.txt), in class-index order."""
    wnids = [line.strip() for line in SYNSETS_FILE.read_text().splitlines() if line.strip()]
    if len(wnids) != 1000 or len(set(wnids)) != 1000 or not all(_WNID.match(w) for w in wnids):
        raise ValueError(f"{SYNSETS_FILE} must hold 1,000 distinct WordNet ids (nXXXXXXXX), one per line")
    return wnids


def imagenet30_wnids() -> dict[str, str]:
    """ImageNet-30's class folder name -> WordNet id, for its 30 classes (imagenet30_wnids.txt), in folder order."""
    pairs = {}
    for n, line in enumerate(IMAGENET30_FILE.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2 or not _WNID.match(fields[0]) or fields[1] in pairs:
            raise ValueError(f"{IMAGENET30_FILE}:{n}: expected '<wnid> <class folder name>', each name once; "
                             f"got {line!r}")
        pairs[fields[1]] = fields[0]
    if len(pairs) != 30 or len(set(pairs.values())) != 30:
        raise ValueError(f"{IMAGENET30_FILE} must pair 30 class folders with 30 distinct wnids, has {len(pairs)}")
    outside = sorted(set(pairs.values()) - set(imagenet1k_wnids()))
    if outside:
        raise ValueError(f"{IMAGENET30_FILE}: not ImageNet-1k synsets: {', '.join(outside)}")
    return pairs


def reservoir_sample(items: Iterable, k: int, rng: random.Random) -> list:
    """k items drawn uniformly without replacement from a stream of unknown length (all items if fewer),
    in O(k) memory (Vitter's algorithm R); the order of the result is not meaningful."""
    sample: list = []
    for n, item in enumerate(items):
        if n < k:
            sample.append(item)
        else:
            j = rng.randrange(n + 1)
            if j < k:
                sample[j] = item
    return sample


def _class_dirs(root: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))


def _walk_images(folder: str) -> Iterator[str]:
    """Image files under `folder`, in sorted order, skipping ._* files; no list of the whole tree is built."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith("._") and os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES:
                yield os.path.join(dirpath, f)


def _as_names(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[,\s]+", value) if v]
    return [str(v) for v in value]


def _oe_root(name: str, raw_dir: Path, root, subfolders: Sequence[str]) -> Path:
    """The folder of class folders: option `root`, else the first of <base>/<subfolder>/ and <base>/ that holds
    folders named by wnid, <base> being the folder given with --from (raw_dir/from/, read first) and raw_dir."""
    if root is not None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise missing(name, root, [f"the folder {root} (option root) does not exist"], INSTRUCTIONS[name])
        return root
    if not raw_dir.is_dir():
        raise missing(name, raw_dir, [f"the folder {raw_dir} does not exist"], INSTRUCTIONS[name])
    given = raw_dir / FROM
    bases = [given, raw_dir] if given.is_dir() else [raw_dir]
    for base in bases:
        for folder in [base / sub for sub in subfolders] + [base]:
            if folder.is_dir() and any(_WNID.match(d) for d in _class_dirs(folder)):
                return folder.resolve() if base == given else folder  # the manifest names the user's own folder
    where = [f"raw_dir/<wnid>/*.JPEG, or under {', '.join('raw_dir/' + s for s in subfolders)}"]
    if given.is_dir():
        where.append(f"nor in the folder given with --from ({given.resolve()}) or those folders inside it")
    raise missing(name, raw_dir, [f"class folders named by WordNet id ({'; '.join(where)})"], INSTRUCTIONS[name])


def _prepare_oe(name: str, root: Path, excluded: set[str], count: int, seed: int, size: int, workers,
                out_dir: Path, what: str) -> dict:
    count = int(count)
    if count < 1:
        raise ValueError(f"{name}: count must be positive, got {count}")
    classes = _class_dirs(root)
    used = [c for c in classes if c not in excluded]
    if not used:
        raise ValueError(f"{name}: every class folder of {root} is excluded ({len(classes)} folders)")
    rng = random.Random(seed)
    spare = max(16, count // 100)  # replacements for unreadable images, drawn with the sample
    stream = (p for c in used for p in _walk_images(os.path.join(root, c)))
    total = [0]

    def counted(it):
        for x in it:
            total[0] += 1
            yield x

    pool = reservoir_sample(counted(stream), count + spare, rng)
    rng.shuffle(pool)
    available = total[0]
    if not pool:
        raise ValueError(f"{name}: no image files under the {len(used)} class folders of {root} left after exclusion")
    skipped: list[str] = []
    workers = n_workers(workers)
    with Scratch(out_dir) as scratch:
        target = min(count, len(pool))
        images = scratch.array("train", target, size)
        labels = np.full(target, -1, dtype=np.int64)
        n, nxt = 0, 0
        while n < target and nxt < len(pool):  # unreadable images are replaced by the next ones of the pool
            batch = sorted(pool[nxt:nxt + (target - n)])  # read in path order: kinder to disks
            nxt += len(batch)
            n = run_jobs([file_job(Path(p), -1, size) for p in batch], images, labels, n, workers, skipped)
        images, labels = images[:n], labels[:n]
        if n == 0:
            raise ValueError(f"{name}: none of the sampled images under {root} could be read")
        excluded_found = sorted(set(classes) & excluded)
        notes = (f"{what}; OE only, unlabelled (-1). {len(classes)} class folders under {root}, "
                 f"{len(excluded_found)} excluded, {len(used)} used, holding {available:,} image files; "
                 f"{n:,} images drawn uniformly without replacement (reservoir sampling, Python random.Random({seed})"
                 f"; {count:,} asked"
                 + ("" if available >= count else f", but only {available:,} available") + "), stored in path order "
                 f"within each read batch; {storage_note(size)}." + skip_note(skipped))
        sources = {str(root) + "/": {"class_folders": len(classes), "class_folders_used": len(used),
                                     "image_files_in_used_folders": available}}
        return write_prepared(out_dir, name, {"train": (images, labels)}, [], sources=sources, skipped=skipped,
                              notes=notes)


def prepare_imagenet22k_minus_1k(raw_dir, out_dir, *, count: int = 50_000, seed: int = 0,
                                 exclude_wnids: Sequence[str] | str = (), root=None, size: int = DEFAULT_SIZE,
                                 workers: int | None = None) -> dict:
    """ImageNet-22k minus ImageNet-1k (the paper's OE for the 224-pixel data sets): `count` images drawn uniformly
    (seeded) from the class folders that are neither ImageNet-1k synsets nor in `exclude_wnids`."""
    name = "imagenet22k_minus_1k"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), check_size(size)
    root = _oe_root(name, raw_dir, root, ("imagenet22k", "imagenet21k", "fall11_whole", "winter21_whole"))
    # all 1,000 ImageNet-1k synsets, as the paper says; eoe's ImageNet22K (exclude_imagenet1k) drops only the 30
    # ImageNet-30 synsets despite its name (docs/fidelity.md, "ImageNet OE pools")
    onek = set(imagenet1k_wnids())
    extra = set(_as_names(exclude_wnids))
    present_1k = len(onek & set(_class_dirs(root)))
    what = (f"ImageNet-22k minus ImageNet-1k: the {present_1k} ImageNet-1k synset folders present (of 1,000, list "
            f"from timm's imagenet_synsets.txt) and {len(extra)} extra exclude_wnids removed")
    return _prepare_oe(name, root, onek | extra, count, seed, size, workers, out_dir, what)


def prepare_imagenet1k_minus_30(raw_dir, out_dir, *, exclude_wnids: Sequence[str] | str | None = None,
                                count: int = 50_000, seed: int = 0, root=None, size: int = DEFAULT_SIZE,
                                workers: int | None = None) -> dict:
    """ImageNet-1k training images minus the class folders of ImageNet-30's 30 wnids (imagenet30_wnids.txt), or
    minus those named in `exclude_wnids` when given: the OE of the public OECL code for ImageNet-30 (the paper states
    ImageNet-22k minus 1k). `count` images drawn uniformly (seeded); the public code uses the whole remainder
    (about 1.2M images)."""
    name = "imagenet1k_minus_30"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), check_size(size)
    in30 = set(imagenet30_wnids().values())
    excluded = in30 if exclude_wnids is None else set(_as_names(exclude_wnids))
    if not excluded:
        raise ValueError(f"{name}: exclude_wnids is empty; leave it out to exclude ImageNet-30's 30 classes, or "
                         "prepare imagenet1k for every class")
    root = _oe_root(name, raw_dir, root, ("train", "ILSVRC2012_img_train"))
    absent = sorted(excluded - set(_class_dirs(root)))
    which = ("ImageNet-30's 30 classes, wnids from oecl_core/data/imagenet30_wnids.txt (hendrycks/ss-ood)"
             if excluded == in30 else "exclude_wnids")
    what = (f"ImageNet-1k train minus {len(excluded)} class folders ({which}"
            + (f"; not present under the root: {', '.join(absent)}" if absent else "") + ")")
    return _prepare_oe(name, root, excluded, count, seed, size, workers, out_dir, what)


def prepare_imagenet1k(raw_dir, out_dir, *, count: int = 50_000, seed: int = 0, root=None, size: int = DEFAULT_SIZE,
                       workers: int | None = None) -> dict:
    """ImageNet-1k training images, every class: `count` images drawn uniformly (seeded)."""
    name = "imagenet1k"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), check_size(size)
    root = _oe_root(name, raw_dir, root, ("train", "ILSVRC2012_img_train"))
    return _prepare_oe(name, root, set(), count, seed, size, workers, out_dir, "ImageNet-1k train, every class folder")


# ILSVRC2012_img_train.tar, 147,897,477,120 bytes (138 GB on image-net.org's download page)
_ILSVRC_TRAIN = (147_897_477_120, "ILSVRC2012_img_train.tar (image-net.org: 138 GB)")

ENTRIES = [
    DataSet("imagenet22k_minus_1k", "ImageNet-22k minus ImageNet-1k, OE for the 224-px data sets (manual)",
            prepare_imagenet22k_minus_1k, (), INSTRUCTIONS["imagenet22k_minus_1k"],
            label="ImageNet-22k minus ImageNet-1k", package_inputs=(str(SYNSETS_FILE),),
            download_size=(1_310_000_000_000, "about 1.31 TB: fall11_whole.tar (Alibaba-MIIL/ImageNet21K, "
                                              "dataset_preprocessing/processing_instructions.md)")),
    # the pipeline names the list as the job's input and passes its 30 wnids (the preparer's default) on the command
    # line, so that a dry run shows what is left out
    DataSet("imagenet1k_minus_30", "ImageNet-1k minus the ImageNet-30 classes, the public code's OE (manual)",
            prepare_imagenet1k_minus_30, (), INSTRUCTIONS["imagenet1k_minus_30"],
            label="ImageNet-1k minus the 30 classes",
            pipeline_options=(("exclude_wnids", ",".join(imagenet30_wnids().values())),),
            package_inputs=(str(IMAGENET30_FILE),), download_size=_ILSVRC_TRAIN),
    DataSet("imagenet1k", "ImageNet-1k training images, the OE Table VII's caption names (manual)",
            prepare_imagenet1k, (), INSTRUCTIONS["imagenet1k"], label="ImageNet-1k", download_size=_ILSVRC_TRAIN),
]
