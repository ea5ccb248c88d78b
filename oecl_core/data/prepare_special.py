"""Preparers for the paper's 224-pixel data sets: DIOR, Raabin-WBC, ImageNet-30, HAM10000 (ISIC 2018 Task 3)
and the ImageNet outlier-exposure pools (ImageNet-22k minus ImageNet-1k; ImageNet-1k minus given classes).

Contract (one entry per registry name, as in prepare_classic):

    SOURCES[name]      the files to download (RemoteFile); empty for manual data sets
    INSTRUCTIONS[name] how to get the files by hand: where from, where to put them, the layout expected
    PREPARERS[name]    prepare(raw_dir, out_dir, **options) -> manifest dict

`raw_dir` holds the files named in SOURCES, archives not extracted, or the already-extracted folders that
INSTRUCTIONS describes (found anywhere up to three folder levels below raw_dir). An archive whose folder
is not there yet is extracted, safely (download.safe_extract / download.extract_rar), into
raw_dir/extracted/<archive name>/; a file `.complete` marks a finished extraction, so it happens once.
Missing input raises ManualDownloadRequired (a FileNotFoundError) naming what is missing, before anything
is written; the output is written by write_prepared, which only shows a complete folder.

Images are stored as uint8 (N, 3, size, size), size 256 by default: the 224-pixel pipeline is
Resize(256) then a 224 crop, and the stored image is the centre 256 x 256 square of the image whose
shorter side was resized to 256 (core.read_image). Decoded images are written to a scratch memory map
next to out_dir (removed afterwards), so a data set larger than memory can be prepared. Unreadable
images are skipped, listed in the manifest's `skipped` and counted in its `notes`.

Options common to every preparer: size (default 256), workers (threads decoding images; default
min(8, CPUs)), verify (default True: hash every input archive, md5 + sha256, into the manifest's
`sources`, and compare with the sha256 recorded at download time in raw_dir/CHECKSUMS.json, if any).
Folders given instead of archives are recorded by their number of files.

OE pools (imagenet22k_minus_1k, imagenet1k_minus_30) have one "train" split with label -1 and no class
names, as the OE pools of prepare_classic.

The ImageNet-1k synset list imagenet1k_synsets.txt (next to this file) is the file
timm/data/_info/imagenet_synsets.txt of the `timm` wheel on PyPI (timm 1.0.31): 1,000 WordNet ids, one
per line, in the usual class-index order (sha256 70002b0f...e183d15).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .core import IMAGE_SUFFIXES, list_images, read_image, square_image
from .download import ChecksumError, ManualDownloadRequired, RemoteFile
from .prepared import write_prepared

__all__ = ["SOURCES", "INSTRUCTIONS", "PREPARERS", "prepare_dior", "prepare_raabin", "prepare_imagenet30",
           "prepare_ham10000", "prepare_imagenet22k_minus_1k", "prepare_imagenet1k_minus_30",
           "dior_select_classes", "dior_count_report", "imagenet1k_wnids", "reservoir_sample"]

DEFAULT_SIZE = 256
SYNSETS_FILE = Path(__file__).with_name("imagenet1k_synsets.txt")
EXTRACTED = "extracted"  # raw_dir/extracted/<archive name>/ holds what this module extracted
_DONE = ".complete"
_SEARCH_DEPTH = 3
_WNID = re.compile(r"^n\d{8}$")

_GDRIVE_VIEW = "https://drive.google.com/file/d/{}/view"
_RAABIN_URL = "https://dl.raabindata.com/WBC/Cropped_double_labeled/{}"
_ISIC_URL = "https://isic-challenge-data.s3.amazonaws.com/2018/{}"

# DIOR: the official Google Drive files (ids as in docs/DATASETS.md). ImageSets.zip (train/val/test
# lists) is optional: without it trainval images are the training set, which is the paper's (see prepare_dior).
DIOR_TRAINVAL, DIOR_TEST, DIOR_ANNOTATIONS, DIOR_IMAGESETS = (
    "JPEGImages-trainval.zip", "JPEGImages-test.zip", "Annotations.zip", "ImageSets.zip")
DIOR_PAPER = {"classes": 19, "smallest": ("baseballfield", 116), "largest": ("windmill", 1890), "average": 649}

RAABIN_CLASSES = ("basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil")

IN30_TRAIN, IN30_TEST = "one_class_train", "one_class_test"

HAM_FILES = {
    "train_images": "ISIC2018_Task3_Training_Input",
    "train_truth": "ISIC2018_Task3_Training_GroundTruth",
    "test_images": "ISIC2018_Task3_Test_Input",
    "test_truth": "ISIC2018_Task3_Test_GroundTruth",
}
HAM_READABLE = {"MEL": "melanoma", "NV": "melanocytic nevi", "BCC": "basal cell carcinoma",
                "AKIEC": "actinic keratosis / intraepithelial carcinoma (Bowen's disease)",
                "BKL": "benign keratosis", "DF": "dermatofibroma", "VASC": "vascular lesion"}

SOURCES: dict[str, list[RemoteFile]] = {
    "dior": [
        RemoteFile(DIOR_TRAINVAL, _GDRIVE_VIEW.format("1ZHbHDM6hYAEGDC_K5eiW0yF_lzVgpuir"),
                   gdrive_id="1ZHbHDM6hYAEGDC_K5eiW0yF_lzVgpuir"),
        RemoteFile(DIOR_TEST, _GDRIVE_VIEW.format("11SXPqcESez9qTn4Z5Q3v35K9hRwO_epr"),
                   gdrive_id="11SXPqcESez9qTn4Z5Q3v35K9hRwO_epr"),
        RemoteFile(DIOR_ANNOTATIONS, _GDRIVE_VIEW.format("1KoQzqR20qvIXDf1qsXCHGxD003IPmXMw"),
                   gdrive_id="1KoQzqR20qvIXDf1qsXCHGxD003IPmXMw"),
    ],
    "raabin": [RemoteFile("Train.rar", _RAABIN_URL.format("Train.rar")),
               RemoteFile("TestA.rar", _RAABIN_URL.format("TestA.rar"))],
    "imagenet30": [
        RemoteFile(IN30_TRAIN + ".tar", _GDRIVE_VIEW.format("1B5c39Fc3haOPzlehzmpTLz6xLtGyKEy4"),
                   gdrive_id="1B5c39Fc3haOPzlehzmpTLz6xLtGyKEy4"),
        RemoteFile(IN30_TEST + ".tar", _GDRIVE_VIEW.format("13xzVuQMEhSnBRZr-YaaO08coLU2dxAUq"),
                   gdrive_id="13xzVuQMEhSnBRZr-YaaO08coLU2dxAUq"),
    ],
    "ham10000": [RemoteFile(f"{HAM_FILES[k]}.zip", _ISIC_URL.format(f"{HAM_FILES[k]}.zip"))
                 for k in ("train_images", "train_truth", "test_images", "test_truth")],
    "imagenet22k_minus_1k": [],  # manual: registration at image-net.org
    "imagenet1k_minus_30": [],  # manual: registration at image-net.org
}


def _download_lines(name: str) -> list[str]:
    lines = []
    for f in SOURCES[name]:
        where = f"Google Drive, open {f.url} in a browser" if f.gdrive_id else f.url
        lines.append(f"  raw_dir/{f.filename}   from {where}")
    return lines


_AUTO = ("They are downloaded automatically by `python -m oecl_core data prepare {name}`; download them by "
         "hand only when that is not possible. No checksum is published: the sha256 seen at the first download "
         "is recorded in raw_dir/CHECKSUMS.json and checked afterwards.")

INSTRUCTIONS: dict[str, str] = {
    "dior": "\n".join([
        "DIOR (Li et al., 2020; aerial object detection, 20 classes, horizontal boxes in VOC XML). Put these files, "
        "unchanged, into raw_dir/ (the folder given to the preparer, e.g. <data root>/raw/dior/):",
        *_download_lines("dior"),
        _AUTO.format(name="dior"),
        "Or put the extracted folders into raw_dir/ instead:",
        "  raw_dir/JPEGImages-trainval/*.jpg   (11,725 images, ids 00001..11725)",
        "  raw_dir/JPEGImages-test/*.jpg       (11,738 images)",
        "  raw_dir/Annotations/*.xml  or  raw_dir/Annotations/Horizontal Bounding Boxes/*.xml   (one VOC XML per "
        "image, train and test; 'Oriented Bounding Boxes' is ignored)",
        "  optional: raw_dir/ImageSets/Main/{train,val,test}.txt (or ImageSets.zip from the same Drive folder), "
        "needed only for train_lists other than ('train', 'val').",
        "The TorchGeo mirror (Images_trainval.zip, Annotations_trainval.zip) has no test annotations and is not "
        "enough for the test split.",
    ]),
    "raabin": "\n".join([
        "Raabin-WBC, cropped double-labelled white blood cells (Kouzehkanan et al.). Put these files, unchanged, "
        "into raw_dir/ (e.g. <data root>/raw/raabin/):",
        *_download_lines("raabin"),
        "(the index page is https://dl.raabindata.com/WBC/Cropped_double_labeled/; use http:// if https fails).",
        _AUTO.format(name="raabin"),
        "RAR archives need an extractor on PATH (bsdtar from libarchive-tools, unar, 7z or unrar). Or extract them "
        "yourself into raw_dir/ so that there is:",
        "  raw_dir/Train/<Class>/*.jpg   and   raw_dir/TestA/<Class>/*.jpg",
        "  with <Class> in Basophil, Eosinophil, Lymphocyte, Monocyte, Neutrophil (any letter case).",
    ]),
    "imagenet30": "\n".join([
        "ImageNet-30 (Hendrycks et al., 2019; 30 classes, 1,300 train / 100 test images each). Put these files, "
        "unchanged, into raw_dir/ (e.g. <data root>/raw/imagenet30/):",
        *_download_lines("imagenet30"),
        "Large Google Drive files answer plain HTTP with a confirmation page: if the automatic download "
        "(`python -m oecl_core data prepare imagenet30`) fails, download them in a browser.",
        "Or extract them yourself into raw_dir/ so that there is:",
        f"  raw_dir/{IN30_TRAIN}/<class>/.../*.JPEG   and   raw_dir/{IN30_TEST}/<class>/.../*.JPEG",
        "Files named ._* (macOS metadata, e.g. airliner/._1.JPEG) are ignored.",
    ]),
    "ham10000": "\n".join([
        "HAM10000 as ISIC 2018 Task 3 (10,015 training images, 1,511 test images, 7 diagnoses). Put these files, "
        "unchanged, into raw_dir/ (e.g. <data root>/raw/ham10000/):",
        *_download_lines("ham10000"),
        _AUTO.format(name="ham10000"),
        "Or extract them yourself into raw_dir/ so that there is:",
        *[f"  raw_dir/{HAM_FILES[k]}/ISIC_*.jpg" for k in ("train_images", "test_images")],
        *[f"  raw_dir/{HAM_FILES[k]}/{HAM_FILES[k]}.csv   (columns image,MEL,NV,BCC,AKIEC,BKL,DF,VASC; one-hot)"
          for k in ("train_truth", "test_truth")],
    ]),
    "imagenet22k_minus_1k": "\n".join([
        "ImageNet-22k minus ImageNet-1k (OE for the 224-pixel data sets): a manual download. Register at "
        "https://image-net.org and download the full ImageNet release (fall11_whole, no longer offered, or its "
        "successor winter21_whole). Extract it as an ImageFolder, one folder per WordNet id:",
        "  raw_dir/<wnid>/*.JPEG   (e.g. raw_dir/n00004475/n00004475_6590.JPEG)",
        "  or raw_dir/<one of imagenet22k, imagenet21k, fall11_whole, winter21_whole>/<wnid>/*.JPEG,",
        "  or pass root=/path/to/the/folder. The winter21 release ships one .tar per wnid: extract each into "
        "its own folder (mkdir n0xxxxxxx && tar -xf n0xxxxxxx.tar -C n0xxxxxxx).",
        "Folders named after the 1,000 ImageNet-1k synsets (oecl_core/data/imagenet1k_synsets.txt) are skipped, "
        "as are those passed in exclude_wnids; `count` images are sampled from the rest.",
    ]),
    "imagenet1k_minus_30": "\n".join([
        "ImageNet-1k training images minus given classes: the OE the public OECL code uses for ImageNet-30 (the "
        "paper states ImageNet-22k minus 1k instead). A manual download: register at https://image-net.org, "
        "download ILSVRC2012_img_train.tar and extract it (and the per-class tars inside) as an ImageFolder:",
        "  raw_dir/<wnid>/*.JPEG   or   raw_dir/train/<wnid>/*.JPEG   (or pass root=/path/to/train)",
        "Pass the folder names to leave out in exclude_wnids (for ImageNet-30: the wnids of its 30 classes).",
    ]),
}


# --------------------------------------------------------------------------------------------- input files


def _missing(name: str, raw_dir: Path, what: Iterable[str]) -> ManualDownloadRequired:
    return ManualDownloadRequired(
        f"{name}: not found in {raw_dir}: {'; '.join(what)}\n{INSTRUCTIONS[name]}")


def _search(raw_dir: Path, names: Iterable[str], want_dir: bool, depth: int = _SEARCH_DEPTH) -> Path | None:
    """The first folder (want_dir) or file whose name is one of `names` (any letter case), breadth first, at
    most `depth` levels below raw_dir (raw_dir itself included for folders). Hidden folders are not entered."""
    wanted = {n.lower() for n in names}
    level = [Path(raw_dir)]
    if want_dir and Path(raw_dir).name.lower() in wanted:
        return Path(raw_dir)
    for _ in range(depth):
        below = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                is_dir = e.is_dir()
                if e.name.lower() in wanted and is_dir == want_dir and not e.name.startswith("."):
                    return Path(e.path)
                if is_dir and not e.name.startswith("."):
                    below.append(Path(e.path))
        level = below
    return None


class _Part:
    """One input of a data set: a folder (or a file) that may also come as an archive."""

    def __init__(self, label: str, names: Sequence[str], archive: str | None, file: bool = False):
        self.label, self.names, self.archive, self.file = label, tuple(names), archive, file

    def describe(self) -> str:
        kind = "file" if self.file else "folder"
        alt = f" or the archive {self.archive}" if self.archive else ""
        return f"{self.label}: the {kind} {self.names[0]}{alt}"

    def present(self, raw_dir: Path) -> bool:
        return (self.archive is not None and (raw_dir / self.archive).is_file()) or \
            _search(raw_dir, self.names, not self.file) is not None

    def resolve(self, raw_dir: Path) -> Path:
        found = _search(raw_dir, self.names, not self.file)
        if found is not None:
            return found
        dest = _extract(raw_dir / self.archive, raw_dir)
        found = _search(dest, self.names, not self.file)
        if found is None and self.file:
            # a renamed file inside the archive: accept it when it is the only one of its type
            suffix = Path(self.names[0]).suffix
            candidates = sorted(p for p in dest.rglob(f"*{suffix}") if not p.name.startswith("."))
            if len(candidates) != 1:
                raise ValueError(f"{raw_dir / self.archive} does not contain {self.names[0]}")
            found = candidates[0]
        return found or dest  # an archive of loose files: its content is the folder itself


def _check_inputs(name: str, raw_dir: Path, parts: Iterable[_Part]) -> None:
    if not raw_dir.is_dir():
        raise _missing(name, raw_dir, [f"the folder {raw_dir} does not exist"])
    missing = [p.describe() for p in parts if not p.present(raw_dir)]
    if missing:
        raise _missing(name, raw_dir, missing)


def _extract(archive: Path, raw_dir: Path) -> Path:
    """Extract `archive` once into raw_dir/extracted/<archive name>/ and return that folder."""
    from . import download

    dest = raw_dir / EXTRACTED / archive.name
    if (dest / _DONE).exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    if archive.name.lower().endswith(".rar"):
        download.extract_rar(archive, dest)
    else:
        download.safe_extract(archive, dest)
    (dest / _DONE).write_text(f"extracted from {archive.name}\n")
    return dest


def _file_record(path: Path, verify: bool) -> dict:
    record: dict = {"bytes": path.stat().st_size}
    if not verify:
        record["sha256"] = None
        record["note"] = "not hashed (verify=False)"
        return record
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            md5.update(block)
            sha.update(block)
    record.update(md5=md5.hexdigest(), sha256=sha.hexdigest())
    known = path.parent / "CHECKSUMS.json"  # written by download.fetch (trust on first use)
    if known.is_file():
        try:
            expected = json.loads(known.read_text()).get(path.name)
        except (OSError, ValueError, AttributeError):
            expected = None
        if expected and expected.lower() != record["sha256"]:
            raise ChecksumError(f"{path}: sha256 {record['sha256']} differs from the {expected} recorded in {known} "
                                "at its download; the file changed: delete it and download it again (or pass "
                                "verify=False)")
        record["verified"] = bool(expected)
    return record


def _sources(raw_dir: Path, parts: Iterable[_Part], resolved: dict[str, Path], verify: bool) -> dict:
    """Hashes of the archives present; for inputs given as folders, their number of files."""
    out = {}
    for part in parts:
        if part.archive and (raw_dir / part.archive).is_file():
            out[part.archive] = _file_record(raw_dir / part.archive, verify)
        elif part.label in resolved:
            path = resolved[part.label]
            rel = _rel(path, raw_dir)
            if path.is_file():
                out[rel] = _file_record(path, verify)
            else:
                out[rel + "/"] = {"files": sum(len(f) for _, _, f in os.walk(path))}
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------- images


def _square(im, size: int, mode: str = "center") -> np.ndarray:
    """A PIL image as uint8 (3, size, size). "center": core.read_image's view (shorter side resized to
    size, centre square); "stretch": the whole image resized to size x size (aspect ratio not kept)."""
    from PIL import Image

    if mode == "center":
        return square_image(im, size)
    if mode != "stretch":
        raise ValueError(f"unknown crop_mode {mode!r}; valid choices: center, stretch")
    return np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8).transpose(2, 0, 1)


class _Scratch:
    """Memory-mapped arrays in a temporary folder next to out_dir, deleted on exit."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.path: Path | None = None

    def __enter__(self):
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.scratch-", dir=self.out_dir.parent))
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)

    def array(self, split: str, n: int, size: int) -> np.ndarray:
        if n == 0:
            return np.empty((0, 3, size, size), dtype=np.uint8)
        return np.lib.format.open_memmap(self.path / f"{split}.npy", mode="w+", dtype=np.uint8,
                                         shape=(n, 3, size, size))


def _workers(workers: int | None) -> int:
    return max(1, int(workers)) if workers is not None else max(1, min(8, os.cpu_count() or 1))


def _attempt(load: Callable[[], list[np.ndarray]]):
    try:
        return load()
    except Exception as err:  # a corrupt image must not end a long preparation; it is listed instead
        return err


Job = tuple[str, Callable[[], list[np.ndarray]], list[int]]  # description, loader (one array per label), labels


def _run_jobs(jobs: Sequence[Job], images: np.ndarray, labels: np.ndarray, start: int, workers: int,
              skipped: list[str], chunk: int = 256) -> int:
    """Run the jobs on a thread pool (PIL decodes without the GIL) and write their images, in job order, into
    images[start:], labels[start:]. A failing job is listed in `skipped` as a whole. Returns the next free row."""
    n = start
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    try:
        for first in range(0, len(jobs), chunk):  # bounded: at most `chunk` decoded results wait in memory
            part = jobs[first:first + chunk]
            loaders = [j[1] for j in part]
            results = pool.map(_attempt, loaders) if pool is not None else map(_attempt, loaders)
            for (desc, _, labs), result in zip(part, results):
                if isinstance(result, Exception):
                    skipped.append(f"{desc}: {type(result).__name__}: {result}")
                    continue
                for arr, lab in zip(result, labs):
                    images[n] = arr
                    labels[n] = lab
                    n += 1
    finally:
        if pool is not None:
            pool.shutdown()
    return n


def _decode(jobs: Sequence[Job], scratch: _Scratch, split: str, size: int, workers: int,
            skipped: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All the jobs' images in a scratch memory map (rows of skipped jobs dropped), and their labels."""
    total = sum(len(j[2]) for j in jobs)
    images = scratch.array(split, total, size)
    labels = np.empty(total, dtype=np.int64)
    n = _run_jobs(jobs, images, labels, 0, workers, skipped)
    return images[:n], labels[:n]


def _file_job(path: Path, label: int, size: int):
    return str(path), (lambda: [read_image(path, size)]), [label]


def _check_size(size) -> int:
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return size


def _skip_note(skipped: list[str]) -> str:
    return f" Skipped {len(skipped)} unreadable file(s) (listed in `skipped`)." if skipped else " No file was skipped."


def _nonempty(name: str, split: str, images: np.ndarray, where) -> None:
    if len(images) == 0:
        raise ValueError(f"{name}: no readable image for the {split} split under {where}")


# --------------------------------------------------------------------------------------------- DIOR


def _dior_class(name: str) -> str:
    """DIOR's XML names vary in case and separators (Expressway-Service-area): lower case, letters and digits."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _parse_voc(path: Path) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(class, (xmin, ymin, xmax, ymax)) of every <object> with a <bndbox> in a VOC XML file."""
    root = ET.parse(path).getroot()
    out = []
    for obj in root.iter("object"):
        name, box = obj.findtext("name"), obj.find("bndbox")
        if not name or box is None:
            continue
        coords = tuple(int(round(float(box.findtext(k)))) for k in ("xmin", "ymin", "xmax", "ymax"))
        out.append((_dior_class(name), coords))
    return out


def dior_select_classes(train_counts: dict[str, int], min_crops: int = 50) -> list[str]:
    """The classes with more than `min_crops` training crops (PANDA's protocol: 19 of DIOR's 20), sorted."""
    return sorted(c for c, n in train_counts.items() if n > min_crops)


def dior_count_report(manifest: dict) -> str:
    """Our training crops per class next to the paper's (Appendix I: 19 classes, smallest baseballfield 116,
    largest windmill 1,890, average 649). `manifest`: a prepared DIOR manifest, or a dict class -> count."""
    counts = manifest["splits"]["train"]["per_class"] if "splits" in manifest else manifest
    counts = {str(k): int(v) for k, v in counts.items()}
    paper = DIOR_PAPER
    lines = [f"DIOR training crops per class (ours; paper: {paper['classes']} classes, "
             f"average {paper['average']})"]
    marks = {paper["smallest"][0]: f"paper {paper['smallest'][1]} (smallest)",
             paper["largest"][0]: f"paper {paper['largest'][1]} (largest)"}
    for c in sorted(counts):
        lines.append(f"  {c:<24} {counts[c]:>6}   {marks.get(c, '')}".rstrip())
    if counts:
        lo, hi = min(counts, key=counts.get), max(counts, key=counts.get)
        mean = sum(counts.values()) / len(counts)
        lines.append(f"  ours : {len(counts)} classes, smallest {lo} {counts[lo]:,}, largest {hi} {counts[hi]:,}, "
                     f"average {mean:,.0f}, total {sum(counts.values()):,}")
    lines.append(f"  paper: {paper['classes']} classes, smallest {paper['smallest'][0]} {paper['smallest'][1]:,}, "
                 f"largest {paper['largest'][0]} {paper['largest'][1]:,}, average {paper['average']:,}")
    return "\n".join(lines)


def _dior_xml_index(folder: Path) -> dict[str, Path]:
    """Image id -> horizontal-box XML. 'Horizontal Bounding Boxes' is preferred; 'Oriented ...' is ignored."""
    horizontal = [d for d in folder.iterdir() if d.is_dir() and d.name.lower().startswith("horizontal")]
    base = horizontal[0] if horizontal else folder
    index = {}
    for p in sorted(base.rglob("*.xml")):
        if p.name.startswith(".") or any("oriented" in part.lower() for part in p.relative_to(base).parts):
            continue
        index.setdefault(p.stem, p)
    return index


def _dior_lists(folder: Path) -> dict[str, list[str]]:
    lists = {}
    for p in sorted(folder.rglob("*.txt")):
        if p.stem in ("train", "val", "test", "trainval") and not p.name.startswith("."):
            lists.setdefault(p.stem, [line.split()[0] for line in p.read_text().splitlines() if line.strip()])
    return lists


def _dior_image_job(path: Path, boxes: list[tuple[int, int, int, int]], labels: list[int], size: int, mode: str):
    def load():
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            out = []
            for x0, y0, x1, y1 in boxes:
                x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
                if x1 <= x0 or y1 <= y0:
                    raise ValueError(f"box {(x0, y0, x1, y1)} lies outside the {w}x{h} image")
                out.append(_square(im.crop((x0, y0, x1, y1)), size, mode))
            return out

    return str(path), load, labels


def prepare_dior(raw_dir, out_dir, *, size: int = DEFAULT_SIZE, min_side: int = 120, min_crops: int = 50,
                 train_lists: Sequence[str] = ("train", "val"), crop_mode: str = "center",
                 workers: int | None = None, verify: bool = True) -> dict:
    """DIOR as PANDA prepares it: every annotated (horizontal) box is cropped; crops wider AND taller than
    `min_side` pixels are kept; classes with more than `min_crops` such training crops are kept (19 of 20).

    Splits: train = the images of the official lists in `train_lists` (default train + val = the
    JPEGImages-trainval folder; ImageSets are needed only for other choices), test = JPEGImages-test, whose
    boxes of the kept classes give the test crops. The paper's training set is trainval: it reports 1,890
    windmill training crops, more than the train list alone holds (about a quarter of DIOR's 5,363 windmills).
    A box is (xmin, ymin, xmax, ymax) in pixels as in the XML (PIL crop box, clipped to the image); its width
    is xmax - xmin. Each crop is stored as core.read_image would store it as an image file (crop_mode
    "center": shorter side to `size`, centre square; the public code reads the crops as an ImageFolder with
    Resize(256) + centre crop), or as a whole ("stretch": resized to size x size, aspect ratio lost).
    The class filter counts annotations, before decoding: an unreadable image lowers the stored counts."""
    name = "dior"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), _check_size(size)
    parts = [_Part("trainval images", ["JPEGImages-trainval"], DIOR_TRAINVAL),
             _Part("test images", ["JPEGImages-test"], DIOR_TEST),
             _Part("annotations", ["Annotations"], DIOR_ANNOTATIONS)]
    sets_part = _Part("image lists", ["ImageSets", "Main"], DIOR_IMAGESETS)
    _check_inputs(name, raw_dir, parts)
    train_lists = tuple(train_lists)
    use_lists = set(train_lists) != {"train", "val"} and set(train_lists) != {"trainval"}
    if use_lists and not sets_part.present(raw_dir):
        raise _missing(name, raw_dir, [f"train_lists={train_lists} needs " + sets_part.describe()])
    if crop_mode not in ("center", "stretch"):
        raise ValueError(f"unknown crop_mode {crop_mode!r}; valid choices: center, stretch")
    all_parts = parts + ([sets_part] if use_lists else [])
    resolved = {p.label: p.resolve(raw_dir) for p in all_parts}
    sources = _sources(raw_dir, all_parts, resolved, verify)

    images = {}
    group: dict[str, str] = {}
    for label, g in (("trainval images", "trainval"), ("test images", "test")):
        for p in list_images(resolved[label]):
            images.setdefault(p.stem, p)
            group.setdefault(p.stem, g)
    if use_lists:
        lists = _dior_lists(resolved["image lists"])
        absent = [s for s in (*train_lists, "test") if s not in lists]
        if absent:
            raise ValueError(f"{name}: no list {', '.join(a + '.txt' for a in absent)} under {resolved['image lists']}")
        ids = {"train": sorted({i for s in train_lists for i in lists[s]}), "test": sorted(set(lists["test"]))}
        how = f"train = the official lists {' + '.join(train_lists)}, test = test.txt"
    else:
        ids = {"train": sorted(i for i, g in group.items() if g == "trainval"),
               "test": sorted(i for i, g in group.items() if g == "test")}
        how = "train = JPEGImages-trainval (the official train + val lists), test = JPEGImages-test"
    xml = _dior_xml_index(resolved["annotations"])
    skipped: list[str] = []
    boxes: dict[str, dict[str, list]] = {}
    no_xml = {}
    for split, split_ids in ids.items():
        boxes[split], no_xml[split] = {}, 0
        for i in split_ids:
            if i not in images:
                skipped.append(f"{split} image {i}: listed but not found under the image folders")
                continue
            if i not in xml:
                no_xml[split] += 1
                continue
            try:
                objects = _parse_voc(xml[i])
            except (ET.ParseError, ValueError, TypeError) as err:
                skipped.append(f"{xml[i]}: unreadable annotation ({type(err).__name__}: {err})")
                continue
            big = [(c, b) for c, b in objects if b[2] - b[0] > min_side and b[3] - b[1] > min_side]
            if big:
                boxes[split][i] = big
    counts: dict[str, int] = {}
    all_classes = set()
    for i, objects in boxes["train"].items():
        for c, _ in objects:
            counts[c] = counts.get(c, 0) + 1
    for split_boxes in boxes.values():
        all_classes.update(c for objs in split_boxes.values() for c, _ in objs)
    if ids["test"] and not any(i in xml for i in ids["test"]):
        raise ValueError(f"{name}: none of the {len(ids['test'])} test images has an annotation under "
                         f"{resolved['annotations']}; the official Annotations.zip annotates train and test (the "
                         "TorchGeo mirror's Annotations_trainval.zip does not)")
    class_names = dior_select_classes(counts, min_crops)
    if not class_names:
        raise ValueError(f"{name}: no class has more than {min_crops} training crops larger than {min_side} px "
                         f"(crops per class: {counts}); are the annotations those of DIOR?")
    index = {c: k for k, c in enumerate(class_names)}
    dropped = sorted(c for c in all_classes | set(counts) if c not in index)
    workers = _workers(workers)
    splits = {}
    with _Scratch(out_dir) as scratch:
        for split in ("train", "test"):
            jobs = []
            for i in sorted(boxes[split]):
                kept = [(c, b) for c, b in boxes[split][i] if c in index]
                if kept:
                    jobs.append(_dior_image_job(images[i], [b for _, b in kept], [index[c] for c, _ in kept],
                                                size, crop_mode))
            imgs, labels = _decode(jobs, scratch, split, size, workers, skipped)
            _nonempty(name, split, imgs, raw_dir)
            splits[split] = (imgs, labels)
        stored = {c: int((splits["train"][1] == k).sum()) for c, k in index.items()}
        notes = (f"DIOR, PANDA's protocol: every horizontal box cropped; crops wider and taller than {min_side} px "
                 f"kept; classes with more than {min_crops} such training crops kept ({len(class_names)} classes; "
                 f"dropped: {', '.join(f'{c} ({counts.get(c, 0)} training crops)' for c in dropped) or 'none'}). "
                 f"{how}. Crops stored {size}x{size} "
                 + ("as core.read_image stores an image (shorter side resized, centre square)"
                    if crop_mode == "center" else "whole, resized to a square (aspect ratio not kept)")
                 + f". Images without annotation: train {no_xml['train']}, test {no_xml['test']}."
                 + _skip_note(skipped) + "\n" + dior_count_report(stored))
        return write_prepared(out_dir, name, splits, class_names, sources=sources, skipped=skipped, notes=notes)


# --------------------------------------------------------------------------------------------- Raabin-WBC


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
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), _check_size(size)
    parts = [_Part("training images", ["Train"], "Train.rar"),
             _Part("test images", ["TestA", "Test-A", "Test_A", "Test A"], "TestA.rar")]
    _check_inputs(name, raw_dir, parts)
    resolved = {p.label: p.resolve(raw_dir) for p in parts}
    sources = _sources(raw_dir, parts, resolved, verify)
    skipped: list[str] = []
    splits, found = {}, {}
    with _Scratch(out_dir) as scratch:
        for split, label in (("train", "training images"), ("test", "test images")):
            folders = _class_folders(resolved[label], RAABIN_CLASSES, name)
            jobs = [_file_job(p, k, size) for k, c in enumerate(RAABIN_CLASSES) for p in list_images(folders[c])]
            found[split] = len(jobs)
            splits[split] = _decode(jobs, scratch, split, size, _workers(workers), skipped)
            _nonempty(name, split, splits[split][0], resolved[label])
        notes = (f"Raabin-WBC cropped double-labelled: train = Train ({found['train']} files), test = TestA "
                 f"({found['test']} files); classes = the lower-cased class folders; images {size}x{size} "
                 "(shorter side resized, centre square)." + _skip_note(skipped))
        return write_prepared(out_dir, name, splits, list(RAABIN_CLASSES), sources=sources, skipped=skipped,
                              notes=notes)


# --------------------------------------------------------------------------------------------- ImageNet-30


def _metadata_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("._*") if p.is_file())


def prepare_imagenet30(raw_dir, out_dir, *, size: int = DEFAULT_SIZE, workers: int | None = None,
                       verify: bool = True) -> dict:
    """ImageNet-30: 30 classes (the class folders of one_class_train, alphabetical), train = one_class_train,
    test = one_class_test (1,300 / 100 images per class); ._* files (airliner/._1.JPEG) are not images."""
    name = "imagenet30"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), _check_size(size)
    parts = [_Part("training images", [IN30_TRAIN], IN30_TRAIN + ".tar"),
             _Part("test images", [IN30_TEST], IN30_TEST + ".tar")]
    _check_inputs(name, raw_dir, parts)
    resolved = {p.label: p.resolve(raw_dir) for p in parts}
    train_root, test_root = resolved["training images"], resolved["test images"]
    class_names = sorted(d.name for d in train_root.iterdir() if d.is_dir() and not d.name.startswith("."))
    test_classes = sorted(d.name for d in test_root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_names:
        raise ValueError(f"{name}: {train_root} has no class folders")
    if class_names != test_classes:
        raise ValueError(f"{name}: {train_root} and {test_root} have different class folders: "
                         f"only in train {sorted(set(class_names) - set(test_classes))}, "
                         f"only in test {sorted(set(test_classes) - set(class_names))}")
    sources = _sources(raw_dir, parts, resolved, verify)
    skipped = [f"{p}: macOS metadata file (._*), not an image" for r in (train_root, test_root)
               for p in _metadata_files(r)]
    ignored = len(skipped)
    splits, per_class = {}, {}
    with _Scratch(out_dir) as scratch:
        for split, root in (("train", train_root), ("test", test_root)):
            jobs, per_class[split] = [], {}
            for k, c in enumerate(class_names):
                files = list_images(root / c)
                per_class[split][c] = len(files)
                jobs += [_file_job(p, k, size) for p in files]
            splits[split] = _decode(jobs, scratch, split, size, _workers(workers), skipped)
            _nonempty(name, split, splits[split][0], root)
        odd = {s: {c: n for c, n in per_class[s].items() if n != want}
               for s, want in (("train", 1300), ("test", 100))}
        notes = (f"ImageNet-30 (Hendrycks et al.): {len(class_names)} classes (paper: 30), train = {IN30_TRAIN}, "
                 f"test = {IN30_TEST}; images {size}x{size} (shorter side resized, centre square). "
                 f"Expected 1,300 train / 100 test files per class; classes that differ: train {odd['train'] or 'none'}, "
                 f"test {odd['test'] or 'none'}. {ignored} macOS metadata file(s) (._*) ignored and listed in `skipped`."
                 + _skip_note(skipped[ignored:]))
        return write_prepared(out_dir, name, splits, class_names, sources=sources, skipped=skipped, notes=notes)


# --------------------------------------------------------------------------------------------- HAM10000


def _ham_truth(path: Path) -> tuple[list[str], dict[str, int]]:
    """(class columns, image id -> class index) from an ISIC 2018 Task 3 ground-truth CSV (one-hot rows)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or len(rows[0]) < 3 or rows[0][0].strip().lower() != "image":
        raise ValueError(f"{path}: expected a header image,MEL,NV,BCC,AKIEC,BKL,DF,VASC")
    columns = [c.strip() for c in rows[0][1:]]
    labels = {}
    for lineno, row in enumerate(rows[1:], 2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns) + 1:
            raise ValueError(f"{path}:{lineno}: expected {len(columns) + 1} values, got {len(row)}")
        try:
            values = [float(v) for v in row[1:]]
        except ValueError:
            raise ValueError(f"{path}:{lineno}: non-numeric label in {row}") from None
        hot = [k for k, v in enumerate(values) if v == 1.0]
        if len(hot) != 1 or any(v not in (0.0, 1.0) for v in values):
            raise ValueError(f"{path}:{lineno}: image {row[0]} is not labelled one-hot: {row[1:]}")
        image = row[0].strip()
        if image in labels:
            raise ValueError(f"{path}:{lineno}: image {image} listed twice")
        labels[image] = hot[0]
    return columns, labels


def prepare_ham10000(raw_dir, out_dir, *, size: int = DEFAULT_SIZE, workers: int | None = None,
                     verify: bool = True) -> dict:
    """HAM10000 as ISIC 2018 Task 3: train = Training_Input (10,015 images), test = Test_Input (1,511 images, the
    paper's evaluation set); labels from the one-hot ground-truth CSVs, matched by image id; classes are the CSV
    columns (MEL, NV, BCC, AKIEC, BKL, DF, VASC). An image without a ground-truth row, or a row without its
    image, is an error naming it."""
    name = "ham10000"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), _check_size(size)
    parts = [_Part("training images", [HAM_FILES["train_images"]], HAM_FILES["train_images"] + ".zip"),
             _Part("training ground truth", [HAM_FILES["train_truth"] + ".csv"], HAM_FILES["train_truth"] + ".zip",
                   file=True),
             _Part("test images", [HAM_FILES["test_images"]], HAM_FILES["test_images"] + ".zip"),
             _Part("test ground truth", [HAM_FILES["test_truth"] + ".csv"], HAM_FILES["test_truth"] + ".zip",
                   file=True)]
    _check_inputs(name, raw_dir, parts)
    resolved = {p.label: p.resolve(raw_dir) for p in parts}
    plan, class_names = {}, None
    for split, kind in (("train", "training"), ("test", "test")):
        columns, truth = _ham_truth(resolved[f"{kind} ground truth"])
        if class_names is None:
            class_names = columns
        elif columns != class_names:
            raise ValueError(f"{name}: the training and test ground truths have different columns: "
                             f"{class_names} vs {columns}")
        folder = resolved[f"{kind} images"]
        files = [p for p in list_images(folder) if p.suffix.lower() in (".jpg", ".jpeg")]
        ids = {p.stem: p for p in files}
        no_truth = sorted(set(ids) - set(truth))
        if no_truth:
            raise ValueError(f"{name}: no ground truth in {resolved[f'{kind} ground truth']} for "
                             f"{len(no_truth)} image(s) of {folder}: {', '.join(no_truth[:10])}"
                             + (" ..." if len(no_truth) > 10 else ""))
        no_image = sorted(set(truth) - set(ids))
        if no_image:
            raise ValueError(f"{name}: {len(no_image)} image(s) of {resolved[f'{kind} ground truth']} not found in "
                             f"{folder}: {', '.join(no_image[:10])}" + (" ..." if len(no_image) > 10 else ""))
        plan[split] = [(ids[i], truth[i]) for i in sorted(ids)]
    sources = _sources(raw_dir, parts, resolved, verify)
    skipped: list[str] = []
    splits = {}
    with _Scratch(out_dir) as scratch:
        for split, items in plan.items():
            jobs = [_file_job(p, k, size) for p, k in items]
            splits[split] = _decode(jobs, scratch, split, size, _workers(workers), skipped)
            _nonempty(name, split, splits[split][0], raw_dir)
        readable = ", ".join(f"{c} = {HAM_READABLE.get(c, '?')}" for c in class_names)
        notes = (f"HAM10000 / ISIC 2018 Task 3: train = Training_Input ({len(plan['train'])} images; paper: 10,015), "
                 f"test = Test_Input ({len(plan['test'])} images; paper: 1,511); labels = the one-hot ground-truth "
                 f"columns ({readable}); images {size}x{size} (shorter side resized, centre square). Few-shot "
                 "protocol: normal = NV (melanocytic nevi), obtainable OOD = MEL or BKL." + _skip_note(skipped))
        return write_prepared(out_dir, name, splits, class_names, sources=sources, skipped=skipped, notes=notes)


# --------------------------------------------------------------------------------------------- ImageNet OE pools


def imagenet1k_wnids() -> list[str]:
    """The 1,000 ImageNet-1k synset ids (timm's imagenet_synsets.txt), in class-index order."""
    wnids = [line.strip() for line in SYNSETS_FILE.read_text().splitlines() if line.strip()]
    if len(wnids) != 1000 or len(set(wnids)) != 1000 or not all(_WNID.match(w) for w in wnids):
        raise ValueError(f"{SYNSETS_FILE} must hold 1,000 distinct WordNet ids (nXXXXXXXX), one per line")
    return wnids


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
    if root is not None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise _missing(name, root, [f"the folder {root} (option root) does not exist"])
        return root
    if not raw_dir.is_dir():
        raise _missing(name, raw_dir, [f"the folder {raw_dir} does not exist"])
    for sub in subfolders:
        if (raw_dir / sub).is_dir() and any(_WNID.match(d) for d in _class_dirs(raw_dir / sub)):
            return raw_dir / sub
    if any(_WNID.match(d) for d in _class_dirs(raw_dir)):
        return raw_dir
    raise _missing(name, raw_dir, [f"class folders named by WordNet id (raw_dir/<wnid>/*.JPEG, or under "
                                   f"{', '.join('raw_dir/' + s for s in subfolders)})"])


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
    workers = _workers(workers)
    with _Scratch(out_dir) as scratch:
        target = min(count, len(pool))
        images = scratch.array("train", target, size)
        labels = np.full(target, -1, dtype=np.int64)
        n, nxt = 0, 0
        while n < target and nxt < len(pool):  # unreadable images are replaced by the next ones of the pool
            batch = sorted(pool[nxt:nxt + (target - n)])  # read in path order: kinder to disks
            nxt += len(batch)
            n = _run_jobs([_file_job(Path(p), -1, size) for p in batch], images, labels, n, workers, skipped)
        images, labels = images[:n], labels[:n]
        if n == 0:
            raise ValueError(f"{name}: none of the sampled images under {root} could be read")
        excluded_found = sorted(set(classes) & excluded)
        notes = (f"{what}; OE only, unlabelled (-1). {len(classes)} class folders under {root}, "
                 f"{len(excluded_found)} excluded, {len(used)} used, holding {available:,} image files; "
                 f"{n:,} images drawn uniformly without replacement (reservoir sampling, Python random.Random({seed})"
                 f"; {count:,} asked"
                 + ("" if available >= count else f", but only {available:,} available") + "), stored in path order "
                 f"within each read batch; {size}x{size} (shorter side resized, centre square)." + _skip_note(skipped))
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
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), _check_size(size)
    root = _oe_root(name, raw_dir, root, ("imagenet22k", "imagenet21k", "fall11_whole", "winter21_whole"))
    onek = set(imagenet1k_wnids())
    extra = set(_as_names(exclude_wnids))
    present_1k = len(onek & set(_class_dirs(root)))
    what = (f"ImageNet-22k minus ImageNet-1k: the {present_1k} ImageNet-1k synset folders present (of 1,000, list "
            f"from timm's imagenet_synsets.txt) and {len(extra)} extra exclude_wnids removed")
    return _prepare_oe(name, root, onek | extra, count, seed, size, workers, out_dir, what)


def prepare_imagenet1k_minus_30(raw_dir, out_dir, *, exclude_wnids: Sequence[str] | str = (), count: int = 50_000,
                                seed: int = 0, root=None, size: int = DEFAULT_SIZE,
                                workers: int | None = None) -> dict:
    """ImageNet-1k training images minus the class folders named in `exclude_wnids` (for ImageNet-30: its 30
    classes' wnids): the OE of the public OECL code for ImageNet-30 (the paper states ImageNet-22k minus 1k).
    `count` images drawn uniformly (seeded); the public code uses the whole remainder (about 1.2M images)."""
    name = "imagenet1k_minus_30"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), _check_size(size)
    extra = set(_as_names(exclude_wnids))
    if not extra:
        raise ValueError(f"{name}: pass exclude_wnids, the class folder names to leave out (for ImageNet-30, the "
                         "wnids of its 30 classes)")
    root = _oe_root(name, raw_dir, root, ("train", "ILSVRC2012_img_train"))
    absent = sorted(extra - set(_class_dirs(root)))
    what = (f"ImageNet-1k train minus {len(extra)} class folders (exclude_wnids"
            + (f"; not present under the root: {', '.join(absent)}" if absent else "") + ")")
    return _prepare_oe(name, root, extra, count, seed, size, workers, out_dir, what)


PREPARERS: dict[str, Callable[..., dict]] = {
    "dior": prepare_dior,
    "raabin": prepare_raabin,
    "imagenet30": prepare_imagenet30,
    "ham10000": prepare_ham10000,
    "imagenet22k_minus_1k": prepare_imagenet22k_minus_1k,
    "imagenet1k_minus_30": prepare_imagenet1k_minus_30,
}
