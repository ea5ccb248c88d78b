"""Registries of data sets, OE sources and benchmarks. A new data set is one DATASETS entry."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .core import ImageSet, Split, load_image_folder
from .embedded import load_digits, load_sample_photo_crops

FOLDER_PREFIX = "folder:"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    load: Callable[[int], tuple[ImageSet, ImageSet]]  # image size -> (train, test)
    image_size: int  # resolution the model is trained and tested at
    stem: str  # "cifar" (32 px and smaller) or "imagenet" (224 px)
    alpha: float  # OE weight of the paper for this data set (Appendix I)
    crop_scale_min: float  # lower bound of RandomResizedCrop's scale (Appendix J)
    default_oe: str
    description: str
    class_names: tuple[str, ...] = ()  # empty: read from the data (folder data sets)

    def classes(self) -> list[str]:
        return list(self.class_names) or self.load(self.image_size)[0].class_names


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        name="digits",
        load=lambda size: load_digits(size),
        image_size=16,
        stem="cifar",
        alpha=0.1,
        crop_scale_min=0.5,  # a 0.08 crop of a 16-px digit is a 4x4 patch that shows no digit
        default_oe="sample_photos_digit_like",
        description="scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), upscaled; embedded, no download",
        class_names=tuple(str(d) for d in range(10)),
    ),
}


def _folder_dataset(spec: str) -> DatasetSpec:
    """`folder:ROOT` names an ImageFolder pair ROOT/train/<class>/... and ROOT/test/<class>/... (32 px, CIFAR settings)."""
    root = Path(spec[len(FOLDER_PREFIX):]).expanduser()
    names = tuple(sorted(d.name for d in (root / "train").iterdir() if d.is_dir())) if (root / "train").is_dir() else ()

    def load(size):
        train = load_image_folder(root / "train", size, allow_flat=False)
        test = load_image_folder(root / "test", size, allow_flat=False)
        if train.class_names != test.class_names:
            raise ValueError(f"{root}/train and {root}/test have different class folders")
        return train, test

    return DatasetSpec(spec, load, 32, "cifar", 1.0, 0.08, "none", f"image folders under {root}", names)


def get_dataset(name: str) -> DatasetSpec:
    if name.startswith(FOLDER_PREFIX):
        return _folder_dataset(name)
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown data set {name!r}; valid choices: {', '.join(sorted(DATASETS))}, or folder:ROOT "
            "for ROOT/train/<class>/ and ROOT/test/<class>/ image folders"
        ) from None


OE_SOURCES: dict[str, Callable[[int, int], torch.Tensor | None]] = {
    "none": lambda size, seed: None,
    "sample_photos": lambda size, seed: load_sample_photo_crops(size, seed=seed),
    "sample_photos_digit_like": lambda size, seed: load_sample_photo_crops(size, seed=seed, digit_like=True),
}


def load_oe(name: str, size: int, seed: int = 0) -> torch.Tensor | None:
    """An OE pool as uint8 (N, 3, size, size); `folder:DIR` reads every image under DIR."""
    if name.startswith(FOLDER_PREFIX):
        return load_image_folder(Path(name[len(FOLDER_PREFIX):]).expanduser(), size).images
    try:
        return OE_SOURCES[name](size, seed)
    except KeyError:
        raise ValueError(f"unknown OE source {name!r}; valid choices: {', '.join(sorted(OE_SOURCES))}, or folder:DIR") from None


def _one_vs_rest(labels: torch.Tensor, cls: int) -> torch.Tensor:
    return labels == cls


def _leave_one_out(labels: torch.Tensor, cls: int) -> torch.Tensor:
    return labels != cls


# benchmark name -> which images are normal, given labels and the benchmark's class index
BENCHMARKS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "one_vs_rest": _one_vs_rest,
    "leave_one_out": _leave_one_out,
}


def check_class(spec: DatasetSpec, cls: int) -> None:
    names = spec.classes()
    if not 0 <= cls < len(names):
        listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        raise ValueError(f"class index {cls} is out of range for {spec.name}; valid choices: {listing}")


def build_split(dataset: str, benchmark: str, cls: int, oe: str | None = None, size: int | None = None, oe_seed: int = 0) -> Split:
    """The normal training images, OE pool and labelled test set of one (data set, benchmark, class)."""
    spec = get_dataset(dataset)
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; valid choices: {', '.join(BENCHMARKS)}")
    check_class(spec, cls)
    size = size or spec.image_size
    train, test = spec.load(size)
    is_normal = BENCHMARKS[benchmark]
    oe_name = spec.default_oe if oe is None else oe
    return Split(
        train=train.images[is_normal(train.labels, cls)],
        test=test.images,
        test_is_normal=is_normal(test.labels, cls),
        test_labels=test.labels,
        oe=load_oe(oe_name, size, oe_seed),
        description=f"{dataset} {benchmark} class {cls} ({train.class_names[cls]}), OE {oe_name}",
    )
