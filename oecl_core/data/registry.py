"""Registries of data sets, OE sources and benchmarks. A new data set is one DATASETS entry."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .core import ImageSet, Split, load_image_folder, resize_uint8
from .prepared import default_data_root, is_prepared, load_prepared, read_manifest, require_prepared
from .benchmarks import BUILDERS, DIMINISHING, PER_CLASS, PROTOCOLS, OEOverlapError, subsample  # noqa: F401 (exported)
from .embedded import load_digits, load_sample_photo_crops
from .prep import DataSet
from .sets import SETS

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
    class_names: tuple[str, ...] = ()  # known before preparation (planning); a prepared manifest overrides it
    stored_size: int = 0  # resolution on disk when larger than image_size (224-px data is stored at 256)
    prepared: bool = False  # read from <data root>/<name>/ (python -m oecl_core data prepare <name>)

    def classes(self) -> list[str]:
        if self.prepared and is_prepared(default_data_root() / self.name):
            return read_manifest(default_data_root() / self.name)["class_names"]
        return list(self.class_names) or self.load(self.image_size)[0].class_names

    @property
    def load_size(self) -> int:
        return self.stored_size or self.image_size


def _load_prepared_pair(name: str, size: int) -> tuple[ImageSet, ImageSet]:
    folder = default_data_root() / name
    require_prepared(folder, f"data set {name!r}")
    train, test = load_prepared(folder, "train"), load_prepared(folder, "test")
    for part in (train, test):
        part.images = resize_uint8(part.images, size)
    return train, test


def _spec(entry: DataSet) -> DatasetSpec:
    return DatasetSpec(entry.name, lambda size: _load_prepared_pair(entry.name, size), entry.image_size, entry.stem,
                       entry.alpha, entry.crop_scale_min, entry.default_oe, entry.description, entry.class_names,
                       entry.stored_size, prepared=True)


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        name="digits",
        load=lambda size: load_digits(size),
        image_size=16,
        stem="cifar",
        alpha=0.1,
        crop_scale_min=0.5,  # a 0.08 crop of a 16-px digit is a 4x4 patch that shows no digit
        default_oe="sample_photos_digit_like",
        description="scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), upscaled; "
                    "embedded, no download",
        class_names=tuple(str(d) for d in range(10)),
    ),
    # The prepared data sets, one file each in sets/ (their facts: Appendices I and J of the paper).
    **{name: _spec(entry) for name, entry in SETS.items() if not entry.oe_only},
}


def _folder_dataset(spec: str) -> DatasetSpec:
    """`folder:ROOT` names an ImageFolder pair ROOT/train/<class>/... and ROOT/test/<class>/...
    (32 px, CIFAR settings)."""
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


def load_oe(name: str, size: int, seed: int = 0):
    """An OE pool stored at `size` (uint8 (N, 3, size, size), or a Canvas of images that keep their aspect ratio,
    data/core.py): a registered source, a prepared OE set or data set (its training images), or `folder:DIR` (every
    image under DIR)."""
    if name.startswith(FOLDER_PREFIX):
        return load_image_folder(Path(name[len(FOLDER_PREFIX):]).expanduser(), size).images
    if is_prepared_set(name):
        folder = default_data_root() / name
        require_prepared(folder, f"OE set {name!r}")
        return resize_uint8(load_prepared(folder, "train").images, size)
    try:
        return OE_SOURCES[name](size, seed)
    except KeyError:
        choices = [n for names in oe_choices().values() for n in names]
        raise ValueError(f"unknown OE source {name!r}; valid choices: {', '.join(choices)}, or folder:DIR") from None


def oe_choices() -> dict[str, list[str]]:
    """Every name an OE setting (--oe, a benchmark spec's oe=, a data set's default) may take, besides folder:DIR,
    grouped by what it reads: the built-in sources, the OE-only sets and the data sets `data prepare` makes (an OE
    set's images, or a data set's training images), and the pool the benchmark builds from the data set itself."""
    return {
        "built in": list(OE_SOURCES),
        "OE sets (data prepare NAME)": sorted(n for n, entry in SETS.items() if entry.oe_only),
        "data sets' training images (data prepare NAME)": sorted(n for n, entry in SETS.items() if not entry.oe_only),
        "the pool the benchmark builds from the data set (few_shot, diminishing)": [BENCHMARK_OE],
    }


def oe_choices_text() -> str:
    """oe_choices() on one line, as `list` and the --oe help print it."""
    return "; ".join(f"{what}: {', '.join(names)}" for what, names in oe_choices().items()) + "; or folder:DIR"


# The benchmarks by name: the protocol registry itself (data/benchmarks.py; DIMINISHING and PER_CLASS come from there).
BENCHMARKS = PROTOCOLS
# `--oe benchmark`: the OE pool is the one the benchmark builds from the data set itself (few-shot, near OE).
BENCHMARK_OE = "benchmark"


def check_class(spec: DatasetSpec, cls: int) -> None:
    names = spec.classes()
    if not 0 <= cls < len(names):
        listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        raise ValueError(f"class index {cls} is out of range for {spec.name}; valid choices: {listing}")


def build_split(dataset: str, benchmark: str, cls: int, oe: str | None = None, size: int | None = None, seed: int = 0,
                anomaly: str = "", shots: int = -1, train_size: int = 0, oe_count: int = 0,
                obtainable: int = -1) -> Split:
    """The normal training images, OE pool and labelled test set of one run.

    train_size > 0 subsamples the normal training images, oe_count > 0 the OE pool (seeded: Fig. 3 / 7
    size sweeps, Table IX's one-sample OE)."""
    spec = get_dataset(dataset)
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; valid choices: {', '.join(BENCHMARKS)}")
    protocol = PROTOCOLS[benchmark]
    if protocol.per_class:
        check_class(spec, cls)
    size = size or spec.load_size
    train, test = spec.load(size)
    options = dict(cls=cls, shots=shots, seed=seed, train_size=0, obtainable=obtainable)
    options.update(protocol.options(dataset, oe, anomaly, train_size, lambda name: get_dataset(name).load(size)[1]))
    data = protocol.build(train, test, **options)
    oe_name = spec.default_oe if oe is None else oe
    if oe_name == BENCHMARK_OE:
        if data.oe is None:
            raise ValueError(f"--oe {BENCHMARK_OE} takes the OE the benchmark builds, but {benchmark} builds none")
        pool = data.oe
    else:
        pool = load_oe(oe_name, size, seed)
    normal_train, train_labels = data.train, data.train_labels
    if train_size and not protocol.subsamples_train:
        if train_size > len(normal_train):
            raise ValueError(f"train_size {train_size} exceeds the {len(normal_train)} normal training images")
        keep = subsample(len(normal_train), train_size, seed)
        normal_train = normal_train[keep]
        train_labels = None if train_labels is None else train_labels[keep]
    if oe_count and pool is not None:
        if oe_count > len(pool):
            raise ValueError(f"oe_count {oe_count} exceeds the {len(pool)} images of OE {oe_name!r}")
        pool = pool[subsample(len(pool), oe_count, seed + 1)]
    return Split(
        train=normal_train,
        test=data.test,
        test_is_normal=data.test_is_normal,
        test_labels=data.test_labels,
        oe=pool,
        description=f"{dataset} {benchmark} ({data.note}), OE {oe_name}" + (f" x {oe_count}" if oe_count else ""),
        train_labels=train_labels,
    )


def is_prepared_set(name: str) -> bool:
    """Whether `name` is read from <data root>/<name>/ (a prepared data set or OE set), i.e. needs `data prepare`."""
    return name in SETS
