"""HAM10000 (Tschandl et al., 2018): dermatoscopic images of 7 diagnoses; 10,015 training images and, as the paper
evaluates (App. I), the 1,511 test images of the Harvard Dataverse record doi:10.7910/DVN/DBW86T.

Two layouts prepare, chosen per split by the files present (the Dataverse one when both are):
  dataverse       the paper's: HAM10000_images_part_{1,2}.zip + HAM10000_metadata (training), and
                  ISIC2018_Task3_Test_Images.zip + ISIC2018_Task3_Test_GroundTruth (test, 1,511 images), the tables
                  in HAM10000's metadata format (lesion_id,image_id,dx,...), comma- or tab-separated
  isic_challenge  the ISIC 2018 challenge's Task 3 files: Training_Input + Training_GroundTruth (the same 10,015
                  images) and Test_Input + Test_GroundTruth (1,512 images), one-hot ground truth (image,MEL,NV,...)
The manifest's `layout` says which one each split was read from."""
from __future__ import annotations

import csv
from pathlib import Path

from ..core import list_images, storage_note
from ..fetch import RemoteFile
from ..prep import (DEFAULT_SIZE, DataSet, Part, Scratch, check_size, decode, file_job, missing, nonempty,
                    part_records, resolve_parts, skip_note)
from ..prepared import write_prepared

HAM_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")  # class k of every layout (ISIC's column order)
HAM_READABLE = {"MEL": "melanoma", "NV": "melanocytic nevi", "BCC": "basal cell carcinoma",
                "AKIEC": "actinic keratosis / intraepithelial carcinoma (Bowen's disease)",
                "BKL": "benign keratosis", "DF": "dermatofibroma", "VASC": "vascular lesion"}
DATAVERSE = "https://doi.org/10.7910/DVN/DBW86T"
ISIC_URL = "https://isic-challenge-data.s3.amazonaws.com/2018/{}.zip"
ONE_HOT_HEADER = "image," + ",".join(HAM_CLASSES)
METADATA_HEADER = "lesion_id,image_id,dx,dx_type,age,sex,localization[,dataset]"

# Dataverse serves its tables as tab-separated .tab files by default and as the uploaded CSV on request; a
# "download all" zip names the metadata without an extension. Any of these names is taken.
_TABLE = (".tab", ".csv", "")
_META, _TEST_TRUTH = "HAM10000_metadata", "ISIC2018_Task3_Test_GroundTruth"
LAYOUTS = {
    "dataverse": {
        "train": [Part("training images, part 1", ["HAM10000_images_part_1"], "HAM10000_images_part_1.zip"),
                  Part("training images, part 2", ["HAM10000_images_part_2"], "HAM10000_images_part_2.zip"),
                  Part("training metadata", [_META + e for e in _TABLE], None, file=True)],
        "test": [Part("test images", ["ISIC2018_Task3_Test_Images"], "ISIC2018_Task3_Test_Images.zip"),
                 Part("test ground truth", [_TEST_TRUTH + e for e in _TABLE], None, file=True)]},
    "isic_challenge": {
        "train": [Part("training images", ["ISIC2018_Task3_Training_Input"], "ISIC2018_Task3_Training_Input.zip"),
                  Part("training ground truth", ["ISIC2018_Task3_Training_GroundTruth.csv"],
                       "ISIC2018_Task3_Training_GroundTruth.zip", file=True)],
        "test": [Part("test images", ["ISIC2018_Task3_Test_Input"], "ISIC2018_Task3_Test_Input.zip"),
                 Part("test ground truth", [_TEST_TRUTH + ".csv"], _TEST_TRUTH + ".zip", file=True)]},
}
# The Dataverse files have no download link here: Dataverse serves them by numeric file ids that no source this
# project can cite publishes, so `data prepare` stops with HOW. Names as Dataverse's default download gives them.
SOURCES = (RemoteFile("HAM10000_images_part_1.zip"), RemoteFile("HAM10000_images_part_2.zip"),
           RemoteFile(_META + ".tab"), RemoteFile("ISIC2018_Task3_Test_Images.zip"), RemoteFile(_TEST_TRUTH + ".tab"))
ISIC_SOURCES = tuple(RemoteFile(f"{f}.zip", ISIC_URL.format(f)) for f in (
    "ISIC2018_Task3_Training_Input", "ISIC2018_Task3_Training_GroundTruth", "ISIC2018_Task3_Test_Input",
    _TEST_TRUTH))
HOW = "\n".join([
    "HAM10000 as the paper evaluates it (App. I: the Harvard Dataverse record, ISIC2018_Task3_Test_Images.zip with "
    "1,511 test images): a manual download from the record's page.",
    f"  1. Open {DATAVERSE} (dataverse.harvard.edu) and download these five files, unchanged (archives not extracted):",
    *[f"       {f.filename}" for f in SOURCES],
    "     The two tables may also be the original CSV Dataverse offers (HAM10000_metadata.csv, "
    f"{_TEST_TRUTH}.csv); \"Download ZIP\" of the whole record gives all of them in dataverse_files.zip: unzip it.",
    "  2. Put them into <data root>/raw/ham10000/, or give the folder that holds them to "
    "`python -m oecl_core data prepare ham10000 --from FOLDER`. Extracted folders work too: "
    "HAM10000_images_part_1/, HAM10000_images_part_2/, ISIC2018_Task3_Test_Images/ (ISIC_*.jpg).",
    f"  The tables are in HAM10000's metadata format ({METADATA_HEADER}; dx one of "
    "akiec, bcc, bkl, df, mel, nv, vasc), comma- or tab-separated.",
    "Or the ISIC 2018 challenge's layout (the same 10,015 training images; its test set has 1,512 images, not the "
    "paper's 1,511): these four archives, in the same folder or given with --from FOLDER:",
    *[f"  {f.filename}   from {f.url}" for f in ISIC_SOURCES],
    f"  (or extracted: the image folders of the same names and the CSVs with the header {ONE_HOT_HEADER}, one-hot). "
    "A split is read from the Dataverse files when they are there, else from these; the manifest says which.",
    "No checksum is published for these files: the sha256 of each is recorded in raw/ham10000/CHECKSUMS.json the "
    "first time and later copies are checked against it."])


def _read_table(path: Path) -> list[list[str]]:
    """The rows of a CSV or Dataverse .tab table (tab-separated when the header has a tab), blank rows dropped."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        text = f.read()
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    return [[cell.strip() for cell in row] for row in csv.reader(text.splitlines(), delimiter=delimiter)
            if any(cell.strip() for cell in row)]


def _one_hot_labels(path: Path, rows: list[list[str]]) -> dict[str, int]:
    """ISIC 2018 Task 3's ground truth: image,<one column per class>, one 1.0 per row."""
    columns = [c.upper() for c in rows[0][1:]]
    if sorted(columns) != sorted(HAM_CLASSES):
        raise ValueError(f"{path}: expected the class columns {', '.join(HAM_CLASSES)} after 'image', "
                         f"got {rows[0][1:]}")
    labels = {}
    for lineno, row in enumerate(rows[1:], 2):
        if len(row) != len(columns) + 1:
            raise ValueError(f"{path}:{lineno}: expected {len(columns) + 1} values, got {len(row)}")
        try:
            values = [float(v) for v in row[1:]]
        except ValueError:
            raise ValueError(f"{path}:{lineno}: non-numeric label in {row}") from None
        hot = [k for k, v in enumerate(values) if v == 1.0]
        if len(hot) != 1 or any(v not in (0.0, 1.0) for v in values):
            raise ValueError(f"{path}:{lineno}: image {row[0]} is not labelled one-hot: {row[1:]}")
        if row[0] in labels:
            raise ValueError(f"{path}:{lineno}: image {row[0]} listed twice")
        labels[row[0]] = HAM_CLASSES.index(columns[hot[0]])
    return labels


def _metadata_labels(path: Path, rows: list[list[str]]) -> dict[str, int]:
    """HAM10000's metadata format: the image_id and dx columns (dx in lower case, one per HAM_CLASSES entry)."""
    header = [c.lower() for c in rows[0]]
    image_col, dx_col = header.index("image_id"), header.index("dx")
    labels = {}
    for lineno, row in enumerate(rows[1:], 2):
        if len(row) <= max(image_col, dx_col):
            raise ValueError(f"{path}:{lineno}: expected {len(header)} values, got {len(row)}")
        image, dx = row[image_col], row[dx_col].upper()
        if dx not in HAM_CLASSES:
            raise ValueError(f"{path}:{lineno}: image {image} has the diagnosis {row[dx_col]!r}; expected one of "
                             f"{', '.join(sorted(c.lower() for c in HAM_CLASSES))}")
        if image in labels:
            raise ValueError(f"{path}:{lineno}: image {image} listed twice")
        labels[image] = HAM_CLASSES.index(dx)
    return labels


def ham_labels(path: Path) -> tuple[str, dict[str, int]]:
    """(table format, image id -> index into HAM_CLASSES) from a ground-truth table, its format told by its header:
    'one-hot' (ISIC 2018 Task 3) or 'metadata' (HAM10000, as the Dataverse record has its tables)."""
    path = Path(path)
    rows = _read_table(path)
    header = [c.lower() for c in rows[0]] if rows else []
    if header and header[0] == "image":
        return "one-hot", _one_hot_labels(path, rows)
    if "image_id" in header and "dx" in header:
        return "metadata", _metadata_labels(path, rows)
    raise ValueError(f"{path}: header {rows[0] if rows else '(empty file)'} is neither ISIC 2018 Task 3's one-hot "
                     f"ground truth ({ONE_HOT_HEADER}) nor HAM10000's metadata format ({METADATA_HEADER})")


def _images(folders: list[Path]) -> dict[str, Path]:
    """Image id (file stem) -> JPEG under the folders; macOS resource forks (__MACOSX/, ._*) are not images."""
    ids: dict[str, Path] = {}
    for folder in folders:
        for p in list_images(folder):
            if p.suffix.lower() not in (".jpg", ".jpeg") or "__MACOSX" in p.parts:
                continue
            if p.stem in ids:
                raise ValueError(f"ham10000: image {p.stem} is twice in the input: {ids[p.stem]} and {p}")
            ids[p.stem] = p
    return ids


def _choose_layouts(raw_dir: Path) -> dict[str, str]:
    """Per split, the first layout (Dataverse first) whose files are all present, else the first whose images are
    (resolve_parts then names what it lacks); a split with neither is named, with both layouts' images."""
    chosen, absent = {}, []
    for split in ("train", "test"):
        complete = [n for n, parts in LAYOUTS.items() if all(p.present(raw_dir) for p in parts[split])]
        begun = [n for n, parts in LAYOUTS.items() if parts[split][0].present(raw_dir)]
        if complete or begun:
            chosen[split] = (complete or begun)[0]
        else:
            absent.append(f"the {'training' if split == 'train' else 'test'} images, either " + " or ".join(
                " and ".join(p.names[0] for p in parts[split] if not p.file) + f" ({name}; folder or .zip)"
                for name, parts in LAYOUTS.items()))
    if absent:
        raise missing("ham10000", raw_dir, absent, HOW)
    return chosen


def prepare_ham10000(raw_dir, out_dir, *, size: int = DEFAULT_SIZE, workers: int | None = None,
                     verify: bool = True) -> dict:
    """HAM10000: train = its 10,015 images, test = the paper's 1,511 Dataverse test images (or, from the ISIC
    challenge's files, its 1,512); see the module docstring for the two layouts. Labels come from the ground-truth
    tables, whose format (one-hot or HAM10000 metadata) is read from their header, matched by image id; the classes
    are HAM_CLASSES in every layout. An image without a ground-truth row, or a row without its image, is an error
    naming it."""
    name = "ham10000"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), check_size(size)
    if not raw_dir.is_dir():
        raise missing(name, raw_dir, [f"the folder {raw_dir} does not exist"], HOW)
    layout = _choose_layouts(raw_dir)
    parts = [p for split in ("train", "test") for p in LAYOUTS[layout[split]][split]]
    resolved = resolve_parts(name, raw_dir, parts, HOW)
    plan, formats = {}, {}
    for split in ("train", "test"):
        *image_parts, truth_part = LAYOUTS[layout[split]][split]
        truth_path = resolved[truth_part.label]
        formats[split], truth = ham_labels(truth_path)
        folders = [resolved[p.label] for p in image_parts]
        ids = _images(folders)
        where = " + ".join(str(f) for f in folders)
        no_truth = sorted(set(ids) - set(truth))
        if no_truth:
            raise ValueError(f"{name}: no ground truth in {truth_path} for {len(no_truth)} image(s) of {where}: "
                             f"{', '.join(no_truth[:10])}" + (" ..." if len(no_truth) > 10 else ""))
        no_image = sorted(set(truth) - set(ids))
        if no_image:
            raise ValueError(f"{name}: {len(no_image)} image(s) of {truth_path} not found in {where}: "
                             f"{', '.join(no_image[:10])}" + (" ..." if len(no_image) > 10 else "")
                             + "; are the table and the images of the same release?")
        plan[split] = [(ids[i], truth[i]) for i in sorted(ids)]
    sources = part_records(raw_dir, parts, resolved, SOURCES + ISIC_SOURCES, verify)
    skipped: list[str] = []
    splits = {}
    with Scratch(out_dir) as scratch:
        for split, items in plan.items():
            jobs = [file_job(p, k, size) for p, k in items]
            splits[split] = decode(jobs, scratch, split, size, workers, skipped)
            nonempty(name, split, splits[split][0], raw_dir)
        readable = ", ".join(f"{c} = {HAM_READABLE[c]}" for c in HAM_CLASSES)
        said = {"dataverse": f"the Harvard Dataverse record ({DATAVERSE})", "isic_challenge": "the ISIC 2018 challenge"}
        notes = (f"HAM10000: train = {len(plan['train'])} images (paper: 10,015) from {said[layout['train']]}, "
                 f"test = {len(plan['test'])} images (paper: 1,511, the Dataverse record's) from {said[layout['test']]}"
                 f"; labels from the ground-truth tables ({formats['train']} / {formats['test']} format): {readable}; "
                 f"{storage_note(size)}. Few-shot protocol: normal = NV (melanocytic nevi), obtainable OOD = MEL or "
                 "BKL." + skip_note(skipped))
        return write_prepared(out_dir, name, splits, list(HAM_CLASSES), sources=sources, skipped=skipped, notes=notes,
                              extra={"layout": layout})


ENTRIES = [DataSet("ham10000", "HAM10000 skin lesions, 7 classes, the paper's 1,511 Dataverse test images",
                   prepare_ham10000, SOURCES, HOW, label="HAM10000", image_size=224, stored_size=DEFAULT_SIZE,
                   stem="imagenet", alpha=0.1, crop_scale_min=0.5, default_oe="imagenet22k_minus_1k",
                   class_names=HAM_CLASSES,
                   split_sizes=((1113, 6705, 514, 327, 1099, 115, 142), (168, 1012, 78, 49, 166, 17, 21),
                                "approximate: test = the paper's 1,511 test images (App. I) spread over the classes in "
                                "the training proportions (no source cited here gives the Dataverse test set's counts "
                                "per class); training = HAM10000's published counts per diagnosis (Tschandl et al., "
                                "Sci. Data 5, 180161, 2018)"))]
