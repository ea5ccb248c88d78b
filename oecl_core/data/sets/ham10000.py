"""HAM10000 as ISIC 2018 Task 3: dermatoscopic images of 7 diagnoses; 10,015 training and 1,511 test images."""
from __future__ import annotations

import csv
from pathlib import Path

from ..core import list_images, storage_note
from ..fetch import RemoteFile
from ..prep import (DEFAULT_SIZE, DataSet, Part, Scratch, check_size, decode, download_instructions, file_job, nonempty,
                    part_records, resolve_parts, skip_note)
from ..prepared import write_prepared

HAM_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
HAM_FILES = {"train_images": "ISIC2018_Task3_Training_Input", "train_truth": "ISIC2018_Task3_Training_GroundTruth",
             "test_images": "ISIC2018_Task3_Test_Input", "test_truth": "ISIC2018_Task3_Test_GroundTruth"}
HAM_READABLE = {"MEL": "melanoma", "NV": "melanocytic nevi", "BCC": "basal cell carcinoma",
                "AKIEC": "actinic keratosis / intraepithelial carcinoma (Bowen's disease)",
                "BKL": "benign keratosis", "DF": "dermatofibroma", "VASC": "vascular lesion"}
SOURCES = tuple(RemoteFile(f"{f}.zip", f"https://isic-challenge-data.s3.amazonaws.com/2018/{f}.zip")
                for f in HAM_FILES.values())
HOW = download_instructions("HAM10000 as ISIC 2018 Task 3 (10,015 training images, 1,511 test images, 7 diagnoses)",
                            "ham10000", SOURCES, [
    "Or extract them yourself so that there is",
    *[f"  {HAM_FILES[k]}/ISIC_*.jpg" for k in ("train_images", "test_images")],
    *[f"  {HAM_FILES[k]}/{HAM_FILES[k]}.csv   (columns image,MEL,NV,BCC,AKIEC,BKL,DF,VASC; one-hot)"
      for k in ("train_truth", "test_truth")]])


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
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), check_size(size)
    parts = [Part("training images", [HAM_FILES["train_images"]], HAM_FILES["train_images"] + ".zip"),
             Part("training ground truth", [HAM_FILES["train_truth"] + ".csv"], HAM_FILES["train_truth"] + ".zip",
                   file=True),
             Part("test images", [HAM_FILES["test_images"]], HAM_FILES["test_images"] + ".zip"),
             Part("test ground truth", [HAM_FILES["test_truth"] + ".csv"], HAM_FILES["test_truth"] + ".zip",
                   file=True)]
    resolved = resolve_parts(name, raw_dir, parts, HOW)
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
    sources = part_records(raw_dir, parts, resolved, SOURCES, verify)
    skipped: list[str] = []
    splits = {}
    with Scratch(out_dir) as scratch:
        for split, items in plan.items():
            jobs = [file_job(p, k, size) for p, k in items]
            splits[split] = decode(jobs, scratch, split, size, workers, skipped)
            nonempty(name, split, splits[split][0], raw_dir)
        readable = ", ".join(f"{c} = {HAM_READABLE.get(c, '?')}" for c in class_names)
        notes = (f"HAM10000 / ISIC 2018 Task 3: train = Training_Input ({len(plan['train'])} images; paper: 10,015), "
                 f"test = Test_Input ({len(plan['test'])} images; paper: 1,511); labels = the one-hot ground-truth "
                 f"columns ({readable}); {storage_note(size)}. Few-shot "
                 "protocol: normal = NV (melanocytic nevi), obtainable OOD = MEL or BKL." + skip_note(skipped))
        return write_prepared(out_dir, name, splits, class_names, sources=sources, skipped=skipped, notes=notes)


ENTRIES = [DataSet("ham10000", "HAM10000 / ISIC 2018 Task 3 skin lesions, 7 classes", prepare_ham10000, SOURCES, HOW,
                   label="HAM10000", image_size=224, stored_size=DEFAULT_SIZE, stem="imagenet", alpha=0.1,
                   crop_scale_min=0.5, default_oe="imagenet22k_minus_1k", class_names=HAM_CLASSES,
                   # as ISIC 2018 Task 3 reports them (10,015 / 1,511), recalled, not read from files here
                   split_sizes=((1113, 6705, 514, 327, 1099, 115, 142), (171, 908, 93, 43, 217, 44, 35),
                                "approximate: the published ISIC 2018 Task 3 training and test counts per class"))]
