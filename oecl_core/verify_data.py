"""The data of `verify`: the prepared data set, or the JPEG copy of CIFAR-10 read in memory (see verify's text)."""
from __future__ import annotations

import io
import sys
import tarfile
import time
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from .config import RunConfig
from .data import ImageSet, Split, get_dataset, load_oe
from .data.core import IMAGE_SUFFIXES, list_images, read_image, resize_uint8
from .data.prepared import default_data_root, is_prepared
from .data.sets.cifar import CLASSES as CIFAR10_CLASSES

JPEG_SOURCE = "cifar10-jpeg"
OFFICIAL_SOURCE = "official"


def say(message: str) -> None:
    print(f"[verify] {message}", file=sys.stderr, flush=True)


def _jpeg_entries(path: Path):
    """(split, class name, name inside the class, opener) of every image of the tree or archive."""
    if path.is_dir():
        for split in ("train", "test"):
            root = path / split
            if not root.is_dir():
                raise FileNotFoundError(f"{path} has no {split}/ folder; expected {path}/train/<class>/*.jpg and "
                                        f"{path}/test/<class>/*.jpg")
            for class_dir in sorted(d for d in root.iterdir() if d.is_dir()):
                for f in list_images(class_dir):
                    yield split, class_dir.name, str(f.relative_to(class_dir)), f
        return
    if path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path) as tf:
            for member in tf:
                parts = PurePosixPath(member.name).parts
                if (not member.isfile() or len(parts) < 3 or parts[-3] not in ("train", "test")
                        or PurePosixPath(member.name).suffix.lower() not in IMAGE_SUFFIXES
                        or parts[-1].startswith("._")):
                    continue
                yield parts[-3], parts[-2], parts[-1], io.BytesIO(tf.extractfile(member).read())
        return
    raise FileNotFoundError(f"--cifar10-jpeg {path}: neither a folder nor a tar archive")


def read_cifar10_jpeg(path, size: int = 32, complete: bool = True) -> tuple[ImageSet, ImageSet]:
    """The JPEG copy of CIFAR-10 as (train, test) ImageSets with the official class indices (airplane = 0 ...
    truck = 9), in a fixed order (class, then file name) whatever the container. complete=True insists on
    all 60,000 images (5,000 / 1,000 per class), as a paper-scale run needs."""
    path = Path(path).expanduser()
    found: dict[str, list] = {"train": [], "test": []}
    for split, class_name, name, source in _jpeg_entries(path):
        if class_name not in CIFAR10_CLASSES:
            raise ValueError(f"{path}: class folder {class_name!r} is not a CIFAR-10 class; expected "
                             f"{', '.join(CIFAR10_CLASSES)}")
        try:
            image = read_image(source, size)
        except OSError as err:
            raise ValueError(f"{path}: cannot read {split}/{class_name}/{name} ({err})") from None
        found[split].append((CIFAR10_CLASSES.index(class_name), name, image))
    sets = []
    for split, expected in (("train", 5000), ("test", 1000)):
        items = sorted(found[split], key=lambda t: (t[0], t[1]))
        if not items:
            raise FileNotFoundError(f"{path}: no {split} images (expected {split}/<class>/*.jpg)")
        labels = torch.tensor([t[0] for t in items], dtype=torch.int64)
        counts = torch.bincount(labels, minlength=len(CIFAR10_CLASSES)).tolist()
        if complete and counts != [expected] * len(CIFAR10_CLASSES):
            per_class = ", ".join(f"{n} {c}" for n, c in zip(CIFAR10_CLASSES, counts))
            raise ValueError(f"{path}: a paper-scale run needs all of CIFAR-10 ({expected} {split} images per class); "
                             f"found {per_class}")
        sets.append(ImageSet(torch.from_numpy(np.stack([t[2] for t in items])), labels, list(CIFAR10_CLASSES)))
    return sets[0], sets[1]


class OfficialData:
    """The prepared data set, through the project's own build_split."""

    name = OFFICIAL_SOURCE

    def check(self, dataset: str) -> None:
        folder = default_data_root() / dataset
        if get_dataset(dataset).prepared and not is_prepared(folder):
            hint = " or give --cifar10-jpeg PATH" if dataset == "cifar10" else ""
            raise FileNotFoundError(f"data set {dataset!r} is not prepared under {folder}; run `python -m oecl_core "
                                    f"data prepare {dataset}` (or set $OECL_DATA){hint}")

    def split(self, cfg: RunConfig) -> Split:
        from .runner import split_for

        return split_for(cfg)


class JpegCifar10:
    """The JPEG copy of CIFAR-10, read once and split here (one vs. rest), the OE loaded as build_split does."""

    name = JPEG_SOURCE

    def __init__(self, path, complete: bool = True):
        self.path, self.complete = Path(path), complete
        self._sets = None

    def check(self, dataset: str) -> None:
        if dataset != "cifar10":
            raise ValueError(f"--cifar10-jpeg holds CIFAR-10; it cannot stand in for {dataset!r}")
        if not self.path.exists():
            raise FileNotFoundError(f"--cifar10-jpeg {self.path} does not exist")

    def split(self, cfg: RunConfig) -> Split:
        from .data.benchmarks import one_vs_rest

        if self._sets is None:
            t0 = time.monotonic()
            self._sets = read_cifar10_jpeg(self.path, 32, complete=self.complete)
            say(f"read {len(self._sets[0]) + len(self._sets[1]):,} images of {self.path} "
                f"in {time.monotonic() - t0:.0f} s")
        size = cfg.stored_size or cfg.image_size
        train, test = (ImageSet(resize_uint8(s.images, size), s.labels, s.class_names) for s in self._sets)
        data = one_vs_rest(train, test, cfg.cls)
        oe = load_oe(cfg.oe, size, cfg.seed)
        return Split(data.train, data.test, data.test_is_normal, data.test_labels, oe,
                     f"cifar10 from {self.path.name} (JPEG copy) one_vs_rest ({data.note}), OE {cfg.oe}")
