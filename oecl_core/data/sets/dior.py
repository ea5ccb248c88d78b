"""DIOR (Li et al., 2020): aerial object crops, PANDA's protocol (boxes over 120 px, classes with more than 50
training crops: 19 classes). From the official Google Drive files or the extracted folders."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core import list_images, storage_note, stored_image
from ..fetch import RemoteFile
from ..prep import (DEFAULT_SIZE, DataSet, Part, Scratch, check_size, decode, download_instructions, missing, n_workers,
                    nonempty, part_records, resolve_parts, skip_note)
from ..prepared import write_prepared

TRAINVAL, TEST, ANNOTATIONS, IMAGESETS = ("JPEGImages-trainval.zip", "JPEGImages-test.zip", "Annotations.zip",
                                          "ImageSets.zip")
DIOR_PAPER = {"classes": 19, "smallest": ("baseballfield", 116), "largest": ("windmill", 1890), "average": 649}
# Class numbers follow the authors' code, so that class k is the same class in both: it reads the crops as a
# torchvision ImageFolder whose folders carry DIOR's XML names (real_OECL, OECL/src/data/datasets.py, class DIOR), and
# ImageFolder numbers folders in Python's case-sensitive sorted order, which puts the capitalised
# Expressway-Service-area and Expressway-toll-station before every lower-case name. Our names are the XML names in
# lower case without separators (_dior_class); these two map back to their folder names for the ordering.
AUTHORS_FOLDER_NAMES = {"expresswayservicearea": "Expressway-Service-area",
                        "expresswaytollstation": "Expressway-toll-station"}


def dior_class_order(name: str) -> str:
    """Sort key giving the authors' ImageFolder order of our class names."""
    return AUTHORS_FOLDER_NAMES.get(name, name)


# DIOR's 20 classes minus the one the size filter removes (vehicle: its boxes are rarely over 120 px), in the
# authors' order; the prepared manifest, which applies the filter to the real annotations, is what runs use.
CLASSES = ("expresswayservicearea", "expresswaytollstation", "airplane", "airport", "baseballfield", "basketballcourt",
           "bridge", "chimney", "dam", "golffield", "groundtrackfield", "harbor", "overpass", "ship", "stadium",
           "storagetank", "tenniscourt", "trainstation", "windmill")
# ImageSets.zip (train/val/test lists) is optional: without it the trainval images are the training set, the paper's.
SOURCES = (RemoteFile(TRAINVAL, gdrive_id="1ZHbHDM6hYAEGDC_K5eiW0yF_lzVgpuir"),
           RemoteFile(TEST, gdrive_id="11SXPqcESez9qTn4Z5Q3v35K9hRwO_epr"),
           RemoteFile(ANNOTATIONS, gdrive_id="1KoQzqR20qvIXDf1qsXCHGxD003IPmXMw"))
HOW = download_instructions(
    "DIOR (aerial object detection, 20 classes, horizontal boxes in VOC XML)", "dior", SOURCES, [
    "Or put the extracted folders there instead:",
    "  JPEGImages-trainval/*.jpg   (11,725 images, ids 00001..11725)",
    "  JPEGImages-test/*.jpg       (11,738 images)",
    "  Annotations/*.xml  or  Annotations/Horizontal Bounding Boxes/*.xml   (one VOC XML per image, train and test; "
    "'Oriented Bounding Boxes' is ignored)",
    "  optional: ImageSets/Main/{train,val,test}.txt (or ImageSets.zip from the same Drive folder), needed only for "
    "train_lists other than ('train', 'val').",
    "The TorchGeo mirror (Images_trainval.zip, Annotations_trainval.zip) has no test annotations and is not enough "
    "for the test split."])


CROP_MODES = ("whole", "stretch")


def _store_crop(im, size: int, mode: str = "whole") -> np.ndarray:
    """A PIL image (a crop) as uint8 (3, H, W). "whole": as core.read_image stores an image file at `size` (at 224-px
    sizes its aspect ratio kept); "stretch": resized to size x size (aspect ratio not kept)."""
    from PIL import Image

    if mode == "whole":
        return stored_image(im, size)
    if mode != "stretch":
        raise ValueError(f"unknown crop_mode {mode!r}; valid choices: {', '.join(CROP_MODES)}")
    return np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8).transpose(2, 0, 1)


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
    """The classes with more than `min_crops` training crops (PANDA's protocol: 19 of DIOR's 20), in the authors'
    class order (dior_class_order)."""
    return sorted((c for c, n in train_counts.items() if n > min_crops), key=dior_class_order)


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
    for c in sorted(counts, key=dior_class_order):
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
                out.append(_store_crop(im.crop((x0, y0, x1, y1)), size, mode))
            return out

    return str(path), load, labels


def prepare_dior(raw_dir, out_dir, *, size: int = DEFAULT_SIZE, min_side: int = 120, min_crops: int = 50,
                 train_lists: Sequence[str] = ("train", "val"), crop_mode: str = "whole",
                 workers: int | None = None, verify: bool = True) -> dict:
    """DIOR as PANDA prepares it: every annotated (horizontal) box is cropped; crops wider AND taller than
    `min_side` pixels are kept; classes with more than `min_crops` such training crops are kept (19 of 20).

    Splits: train = the images of the official lists in `train_lists` (default train + val = the
    JPEGImages-trainval folder; ImageSets are needed only for other choices), test = JPEGImages-test, whose
    boxes of the kept classes give the test crops. The paper's training set is trainval: it reports 1,890
    windmill training crops, more than the train list alone holds (about a quarter of DIOR's 5,363 windmills).
    A box is (xmin, ymin, xmax, ymax) in pixels as in the XML (PIL crop box, clipped to the image); its width
    is xmax - xmin. Each crop is stored as core.read_image would store it as an image file (crop_mode
    "whole": shorter side to `size`, aspect ratio kept, as the public code reads the crops as an ImageFolder with
    Resize(256), then random crops of the whole crop / its centre crop), or stretched ("stretch": resized to size x
    size, aspect ratio lost).
    The class filter counts annotations, before decoding: an unreadable image lowers the stored counts."""
    name = "dior"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), check_size(size)
    parts = [Part("trainval images", ["JPEGImages-trainval"], TRAINVAL),
             Part("test images", ["JPEGImages-test"], TEST),
             Part("annotations", ["Annotations"], ANNOTATIONS)]
    sets_part = Part("image lists", ["ImageSets", "Main"], IMAGESETS)
    resolve_parts(name, raw_dir, parts, HOW)  # everything missing is named before any work
    # a string, as `data prepare dior --option train_lists=train,val` gives it: names separated by commas or spaces
    train_lists = tuple(re.split(r"[,\s]+", train_lists.strip()) if isinstance(train_lists, str) else train_lists)
    use_lists = set(train_lists) != {"train", "val"} and set(train_lists) != {"trainval"}
    if use_lists and not sets_part.present(raw_dir):
        raise missing(name, raw_dir, [f"train_lists={train_lists} needs " + sets_part.describe()], HOW)
    if crop_mode not in CROP_MODES:
        raise ValueError(f"unknown crop_mode {crop_mode!r}; valid choices: {', '.join(CROP_MODES)}")
    all_parts = parts + ([sets_part] if use_lists else [])
    resolved = {p.label: p.resolve(raw_dir) for p in all_parts}
    sources = part_records(raw_dir, all_parts, resolved, SOURCES, verify)

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
    for _i, objects in boxes["train"].items():
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
    workers = n_workers(workers)
    splits = {}
    with Scratch(out_dir) as scratch:
        for split in ("train", "test"):
            jobs = []
            for i in sorted(boxes[split]):
                kept = [(c, b) for c, b in boxes[split][i] if c in index]
                if kept:
                    jobs.append(_dior_image_job(images[i], [b for _, b in kept], [index[c] for c, _ in kept],
                                                size, crop_mode))
            imgs, labels = decode(jobs, scratch, split, size, workers, skipped)
            nonempty(name, split, imgs, raw_dir)
            splits[split] = (imgs, labels)
        stored = {c: int((splits["train"][1] == k).sum()) for c, k in index.items()}
        notes = (f"DIOR, PANDA's protocol: every horizontal box cropped; crops wider and taller than {min_side} px "
                 f"kept; classes with more than {min_crops} such training crops kept ({len(class_names)} classes; "
                 f"dropped: {', '.join(f'{c} ({counts.get(c, 0)} training crops)' for c in dropped) or 'none'}). "
                 f"{how}. Crops stored "
                 + (f"as core.read_image stores an image: {storage_note(size)}"
                    if crop_mode == "whole" else f"{size}x{size}, stretched to a square (aspect ratio not kept)")
                 + f". Images without annotation: train {no_xml['train']}, test {no_xml['test']}."
                 + skip_note(skipped) + "\n" + dior_count_report(stored))
        return write_prepared(out_dir, name, splits, class_names, sources=sources, skipped=skipped, notes=notes)


ENTRIES = [DataSet("dior", "DIOR aerial object crops > 120 px, 19 classes", prepare_dior, SOURCES, HOW, label="DIOR",
                   image_size=224, stored_size=DEFAULT_SIZE, stem="imagenet", alpha=0.1,
                   default_oe="imagenet22k_minus_1k", class_names=CLASSES,
                   # the crops per class depend on the size filter; the paper gives only their average (App. I)
                   split_sizes=((649,) * 19, (649,) * 19, "approximate: the paper's average of 649 training crops "
                                                          "per class for every class, and as many test crops"))]
