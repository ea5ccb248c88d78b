"""Benchmark builders: which training images are normal, what the OE pool is, and how the test set is labelled.

Each builder is a pure function of in-memory image sets, so every protocol is testable on tiny data:
    one_vs_rest     class c is normal; the whole test set, c normal, the rest anomalous (Tables I, V, VI, IX)
    leave_one_out   every class but c is normal; c is the anomaly (Table II)
    unlabeled       the whole training set is normal; another data set's test images are the anomalies (Table III)
    few_shot        the largest class is normal, k images of the next largest are the OE, every other class is an
                    unseen anomaly; the OE class is left out of the test set (Table IV)
    diminishing     a fixed union of normal classes, trained on n images; near OE from named classes (Fig. 3)
    defect_detection  category c is normal; its own defective test images are the anomalies (MVTec-AD, Table VII)
Rule checked by every builder: the OE never contains a class that is an anomaly at test time.
Each protocol is one Protocol (PROTOCOLS, at the end): its builder, the inputs it needs besides the data set, the
image counts the planner expects of it and whether its runs are one per class; every other list of benchmarks
(registry.BENCHMARKS, PER_CLASS, BUILDERS) is derived from PROTOCOLS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..augment import cat_images
from .core import ImageSet


@dataclass
class BenchmarkData:
    train: torch.Tensor  # normal training images
    test: torch.Tensor
    test_is_normal: torch.Tensor
    test_labels: torch.Tensor
    oe: torch.Tensor | None = None  # OE images drawn from the data set itself (few-shot, near OE)
    oe_classes: tuple[int, ...] = ()  # the data set's classes the OE images come from
    note: str = ""
    train_labels: torch.Tensor | None = None  # class labels of the training images, where they span several classes


class OEOverlapError(ValueError):
    pass


def check_oe_disjoint(oe_classes, test_labels: torch.Tensor, test_is_normal: torch.Tensor, class_names) -> None:
    anomalies = set(test_labels[~test_is_normal].tolist())
    overlap = sorted(set(oe_classes) & anomalies)
    if overlap:
        names = ", ".join(class_names[c] for c in overlap)
        raise OEOverlapError(f"the OE contains class(es) {names} that are anomalies at test time; OE must never "
                             "contain a test-anomaly class (choose other OE classes or leave them out of the test set)")


def subsample(n_total: int, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=gen)[:n].sort().values


def one_vs_rest(train: ImageSet, test: ImageSet, cls: int, **_) -> BenchmarkData:
    return BenchmarkData(train.images[train.labels == cls], test.images, test.labels == cls, test.labels,
                         note=f"normal: {train.class_names[cls]}")


def leave_one_out(train: ImageSet, test: ImageSet, cls: int, **_) -> BenchmarkData:
    return BenchmarkData(train.images[train.labels != cls], test.images, test.labels != cls, test.labels,
                         note=f"anomaly: {train.class_names[cls]}")


def unlabeled(train: ImageSet, test: ImageSet, cls: int = 0, anomaly_test: ImageSet | None = None,
              **_) -> BenchmarkData:
    """All training images normal; the ID test set (normal) against another data set's test set (anomalous).
    The anomalies' labels are stored as -1 - their own class, so they can never collide with ID classes."""
    if anomaly_test is None:
        raise ValueError("the unlabeled benchmark needs an anomaly data set (e.g. anomaly=cifar100)")
    images = cat_images([test.images, anomaly_test.images])
    labels = torch.cat([test.labels, -1 - anomaly_test.labels])
    is_normal = torch.cat([torch.ones(len(test), dtype=torch.bool), torch.zeros(len(anomaly_test), dtype=torch.bool)])
    # the labels are not used by the unlabeled methods; supervised contrastive learning (Table VIII) reads them
    return BenchmarkData(train.images, images, is_normal, labels, note="unlabeled: every training image is normal",
                         train_labels=train.labels)


def defect_detection(train: ImageSet, test: ImageSet, cls: int, **_) -> BenchmarkData:
    """A data set that comes with its own anomalies (MVTec-AD): the category's defect-free training images, tested
    on the category's test images, of which the defective ones are the anomalies."""
    if test.defective is None:
        raise ValueError("the defect_detection benchmark needs a data set whose test images "
                         "are flagged defective (mvtec); this one has no defect flags: use one_vs_rest")
    ok = train.labels == cls
    if train.defective is not None:
        ok &= ~train.defective
    mine = test.labels == cls
    return BenchmarkData(train.images[ok], test.images[mine], ~test.defective[mine], test.labels[mine],
                         note=f"normal: defect-free {train.class_names[cls]}, "
                              f"anomalies: defective {train.class_names[cls]}")


def class_sizes(labels: torch.Tensor, n_classes: int) -> list[int]:
    return torch.bincount(labels, minlength=n_classes).tolist()


def few_shot(train: ImageSet, test: ImageSet, cls: int = -1, shots: int = -1, obtainable: int = -1, seed: int = 0,
             **_) -> BenchmarkData:
    """cls < 0: the largest training class is normal; obtainable < 0: the next largest is the obtainable OOD
    class, of which `shots` training images (-1: all) are the OE. The obtainable class is not in the test set."""
    sizes = class_sizes(train.labels, len(train.class_names))
    order = sorted(range(len(sizes)), key=lambda c: -sizes[c])
    normal = order[0] if cls < 0 else cls
    obtainable = next(c for c in order if c != normal) if obtainable < 0 else obtainable
    if obtainable == normal:
        raise ValueError("the obtainable OOD class must differ from the normal class")
    pool = train.images[train.labels == obtainable]
    if shots >= 0:
        if shots > len(pool):
            raise ValueError(f"{shots} shots asked but class {train.class_names[obtainable]} "
                             f"has {len(pool)} training images")
        pool = pool[subsample(len(pool), shots, seed)]
    keep = test.labels != obtainable
    data = BenchmarkData(train.images[train.labels == normal], test.images[keep], test.labels[keep] == normal,
                         test.labels[keep], oe=pool, oe_classes=(obtainable,),
                         note=f"normal: {train.class_names[normal]}; OE: {len(pool)} x {train.class_names[obtainable]}")
    check_oe_disjoint(data.oe_classes, data.test_labels, data.test_is_normal, train.class_names)
    return data


def diminishing(train: ImageSet, test: ImageSet, cls: int = 0, normal_classes=(), anomaly_classes=(),
                near_oe_classes=(), train_size: int = 0, seed: int = 0, **_) -> BenchmarkData:
    """Fig. 3: normal = union of normal_classes, subsampled to train_size (0: all); test = their test images
    against anomaly_classes; near OE = the training images of near_oe_classes."""
    names = list(train.class_names)
    idx = lambda wanted: [names.index(c) if isinstance(c, str) else int(c) for c in wanted]
    normal, anomalous, near = idx(normal_classes), idx(anomaly_classes), idx(near_oe_classes)
    normal_train = train.images[torch.isin(train.labels, torch.tensor(normal))]
    if train_size:
        if train_size > len(normal_train):
            raise ValueError(f"train_size {train_size} exceeds the {len(normal_train)} normal training images")
        normal_train = normal_train[subsample(len(normal_train), train_size, seed)]
    keep = torch.isin(test.labels, torch.tensor(normal + anomalous))
    oe = train.images[torch.isin(train.labels, torch.tensor(near))] if near else None
    data = BenchmarkData(normal_train, test.images[keep], torch.isin(test.labels[keep], torch.tensor(normal)),
                         test.labels[keep], oe=oe, oe_classes=tuple(near),
                         note=f"normal {[names[c] for c in normal]} x {len(normal_train)}")
    check_oe_disjoint(data.oe_classes, data.test_labels, data.test_is_normal, names)
    return data


# Fixed class lists of the diminishing-effect benchmark (Fig. 3), per data set.
DIMINISHING = {
    "raabin": dict(normal_classes=("lymphocyte", "monocyte"), anomaly_classes=("eosinophil",),
                   near_oe_classes=("basophil", "neutrophil")),
}


# --- The protocols. sizes(cfg, train, test, sizes_of, class_names) -> (training images, test images) of a run, as
# its builder would give them, from the images per class alone (the planner reads no image): train / test are the
# data set's counts per class, sizes_of(name) another data set's (train, test, source), class_names() its classes.
# options(dataset, oe, anomaly, train_size, load_test) -> the builder's inputs besides (train, test, cls, shots,
# seed, obtainable), checked; load_test(name) reads another data set's test images.

def _no_options(dataset, oe, anomaly, train_size, load_test) -> dict:
    return {}


@dataclass(frozen=True)
class Protocol:
    name: str
    build: Callable[..., BenchmarkData]
    sizes: Callable[..., tuple[int, int]]
    per_class: bool = False  # one run per class of the data set (the class is the normal one, or the anomaly)
    options: Callable[..., dict] = _no_options
    subsamples_train: bool = False  # the builder applies train_size itself (within its normal classes)
    oe_empty: Callable[..., bool] = lambda cfg: False  # the OE pool is empty by construction (before any image is read)


def _unlabeled_sizes(cfg, train, test, sizes_of, class_names) -> tuple[int, int]:
    if not cfg.anomaly:
        raise ValueError(f"{cfg.dataset}: the unlabeled benchmark needs an anomaly data set")
    anomaly_test = sum(sizes_of(cfg.anomaly)[1])
    return sum(train), sum(test) + anomaly_test


def _unlabeled_options(dataset, oe, anomaly, train_size, load_test) -> dict:
    if not anomaly:
        raise ValueError("the unlabeled benchmark needs an anomaly data set (--anomaly NAME)")
    if anomaly == oe:
        raise OEOverlapError(f"OE {oe!r} is the anomaly data set of the test; choose another OE source")
    return {"anomaly_test": load_test(anomaly)}


def _few_shot_sizes(cfg, train, test, sizes_of, class_names) -> tuple[int, int]:
    # the classes few_shot picks: the largest is normal, the next largest the obtainable one (left out of the test)
    order = sorted(range(len(train)), key=lambda c: -train[c])
    normal = order[0] if cfg.cls < 0 else cfg.cls
    obtainable = next(c for c in order if c != normal) if cfg.obtainable < 0 else cfg.obtainable
    return train[normal], sum(test) - test[obtainable]


def _diminishing_sizes(cfg, train, test, sizes_of, class_names) -> tuple[int, int]:
    classes = class_names()
    sets = DIMINISHING[cfg.dataset]
    idx = lambda names: [classes.index(c) for c in names]
    n_train = sum(train[c] for c in idx(sets["normal_classes"]))
    return n_train, sum(test[c] for c in idx(sets["normal_classes"]) + idx(sets["anomaly_classes"]))


def _diminishing_options(dataset, oe, anomaly, train_size, load_test) -> dict:
    if dataset not in DIMINISHING:
        raise ValueError(f"the diminishing benchmark is defined for {', '.join(DIMINISHING)}, not {dataset}")
    return {**DIMINISHING[dataset], "train_size": train_size}


# The one registry of protocols (its order is the order every listing of benchmarks shows).
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("one_vs_rest", one_vs_rest, lambda cfg, train, test, *_: (train[cfg.cls], sum(test)), per_class=True),
    Protocol("leave_one_out", leave_one_out, lambda cfg, train, test, *_: (sum(train) - train[cfg.cls], sum(test)),
             per_class=True),
    Protocol("unlabeled", unlabeled, _unlabeled_sizes, options=_unlabeled_options),
    # the category's own test images only
    Protocol("defect_detection", defect_detection, lambda cfg, train, test, *_: (train[cfg.cls], test[cfg.cls]),
             per_class=True),
    Protocol("few_shot", few_shot, _few_shot_sizes, oe_empty=lambda cfg: cfg.shots == 0),
    Protocol("diminishing", diminishing, _diminishing_sizes, options=_diminishing_options, subsamples_train=True),
)}
# Derived names others import.
PER_CLASS = tuple(name for name, p in PROTOCOLS.items() if p.per_class)
BUILDERS = {name: p.build for name, p in PROTOCOLS.items()}


def oe_pool_empty(cfg) -> bool:
    """Whether a run's OE pool is empty by construction, known before any image is read: few-shot with k = 0."""
    protocol = PROTOCOLS.get(cfg.benchmark)
    return protocol is not None and protocol.oe_empty(cfg)
