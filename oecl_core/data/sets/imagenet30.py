"""ImageNet-30 (Hendrycks et al., 2019): 30 ImageNet classes, 1,300 training and 100 test images each, from
Hendrycks' Google Drive archives or the extracted folders."""
from __future__ import annotations

from pathlib import Path

from ..core import list_images, storage_note
from ..fetch import RemoteFile
from ..prep import (DEFAULT_SIZE, DataSet, Part, Scratch, check_size, decode, download_instructions, file_job, nonempty,
                    part_records, resolve_parts, skip_note)
from ..prepared import write_prepared

IN30_TRAIN, IN30_TEST = "one_class_train", "one_class_test"
CLASSES = (  # the one_class_train/ folder names
    "acorn", "airliner", "ambulance", "american_alligator", "banjo", "barn", "bikini", "digital_clock", "dragonfly",
    "dumbbell", "forklift", "goblet", "grand_piano", "hotdog", "hourglass", "manhole_cover", "mosque", "nail",
    "parking_meter", "pillow", "revolver", "rotary_dial_telephone", "schooner", "snowmobile", "soccer_ball", "stingray",
    "strawberry", "tank", "toaster", "volcano")
SOURCES = (RemoteFile(IN30_TRAIN + ".tar", gdrive_id="1B5c39Fc3haOPzlehzmpTLz6xLtGyKEy4"),
           RemoteFile(IN30_TEST + ".tar", gdrive_id="13xzVuQMEhSnBRZr-YaaO08coLU2dxAUq"))
HOW = download_instructions("ImageNet-30 (30 classes, 1,300 train / 100 test images each)", "imagenet30", SOURCES, [
    "Or extract them yourself so that there is",
    f"  {IN30_TRAIN}/<class>/.../*.JPEG   and   {IN30_TEST}/<class>/.../*.JPEG",
    "Files named ._* (macOS metadata, e.g. airliner/._1.JPEG) are ignored."])


def _metadata_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("._*") if p.is_file())


def prepare_imagenet30(raw_dir, out_dir, *, size: int = DEFAULT_SIZE, workers: int | None = None,
                       verify: bool = True) -> dict:
    """ImageNet-30: 30 classes (the class folders of one_class_train, alphabetical), train = one_class_train,
    test = one_class_test (1,300 / 100 images per class); ._* files (airliner/._1.JPEG) are not images."""
    name = "imagenet30"
    raw_dir, out_dir, size = Path(raw_dir), Path(out_dir), check_size(size)
    parts = [Part("training images", [IN30_TRAIN], IN30_TRAIN + ".tar"),
             Part("test images", [IN30_TEST], IN30_TEST + ".tar")]
    resolved = resolve_parts(name, raw_dir, parts, HOW)
    train_root, test_root = resolved["training images"], resolved["test images"]
    class_names = sorted(d.name for d in train_root.iterdir() if d.is_dir() and not d.name.startswith("."))
    test_classes = sorted(d.name for d in test_root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_names:
        raise ValueError(f"{name}: {train_root} has no class folders")
    if class_names != test_classes:
        raise ValueError(f"{name}: {train_root} and {test_root} have different class folders: "
                         f"only in train {sorted(set(class_names) - set(test_classes))}, "
                         f"only in test {sorted(set(test_classes) - set(class_names))}")
    sources = part_records(raw_dir, parts, resolved, SOURCES, verify)
    skipped = [f"{p}: macOS metadata file (._*), not an image" for r in (train_root, test_root)
               for p in _metadata_files(r)]
    ignored = len(skipped)
    splits, per_class = {}, {}
    with Scratch(out_dir) as scratch:
        for split, root in (("train", train_root), ("test", test_root)):
            jobs, per_class[split] = [], {}
            for k, c in enumerate(class_names):
                files = list_images(root / c)
                per_class[split][c] = len(files)
                jobs += [file_job(p, k, size) for p in files]
            splits[split] = decode(jobs, scratch, split, size, workers, skipped)
            nonempty(name, split, splits[split][0], root)
        odd = {s: {c: n for c, n in per_class[s].items() if n != want}
               for s, want in (("train", 1300), ("test", 100))}
        notes = (f"ImageNet-30 (Hendrycks et al.): {len(class_names)} classes (paper: 30), train = {IN30_TRAIN}, "
                 f"test = {IN30_TEST}; {storage_note(size)}. "
                 f"Expected 1,300 train / 100 test files per class; classes that differ: "
                 f"train {odd['train'] or 'none'}, test {odd['test'] or 'none'}. "
                 f"{ignored} macOS metadata file(s) (._*) ignored and listed in `skipped`."
                 + skip_note(skipped[ignored:]))
        return write_prepared(out_dir, name, splits, class_names, sources=sources, skipped=skipped, notes=notes)


ENTRIES = [DataSet("imagenet30", "ImageNet-30, 39,000 / 3,000 images, 30 classes", prepare_imagenet30, SOURCES, HOW,
                   label="ImageNet-30", image_size=224, stored_size=DEFAULT_SIZE, stem="imagenet", alpha=1.0,
                   default_oe="imagenet22k_minus_1k", class_names=CLASSES,
                   split_sizes=((1300,) * 30, (100,) * 30, "ImageNet-30's split (1,300 / 100 per class)"))]
