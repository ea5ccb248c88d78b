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
"""
from __future__ import annotations

from dataclasses import dataclass

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


def unlabeled(train: ImageSet, test: ImageSet, cls: int = 0, anomaly_test: ImageSet | None = None, **_) -> BenchmarkData:
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
        raise ValueError("the defect_detection benchmark needs a data set whose test images are flagged defective (mvtec); "
                         "this one has no defect flags: use one_vs_rest")
    ok = train.labels == cls
    if train.defective is not None:
        ok &= ~train.defective
    mine = test.labels == cls
    return BenchmarkData(train.images[ok], test.images[mine], ~test.defective[mine], test.labels[mine],
                         note=f"normal: defect-free {train.class_names[cls]}, anomalies: defective {train.class_names[cls]}")


def class_sizes(labels: torch.Tensor, n_classes: int) -> list[int]:
    return torch.bincount(labels, minlength=n_classes).tolist()


def few_shot(train: ImageSet, test: ImageSet, cls: int = -1, shots: int = -1, obtainable: int = -1, seed: int = 0, **_) -> BenchmarkData:
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
            raise ValueError(f"{shots} shots asked but class {train.class_names[obtainable]} has {len(pool)} training images")
        pool = pool[subsample(len(pool), shots, seed)]
    keep = test.labels != obtainable
    data = BenchmarkData(train.images[train.labels == normal], test.images[keep], test.labels[keep] == normal,
                         test.labels[keep], oe=pool, oe_classes=(obtainable,),
                         note=f"normal: {train.class_names[normal]}; OE: {len(pool)} x {train.class_names[obtainable]}")
    check_oe_disjoint(data.oe_classes, data.test_labels, data.test_is_normal, train.class_names)
    return data


def oe_pool_empty(cfg) -> bool:
    """Whether a run's OE pool is empty by construction, known before any image is read: few-shot with k = 0."""
    return cfg.benchmark == "few_shot" and cfg.shots == 0


def diminishing(train: ImageSet, test: ImageSet, cls: int = 0, normal_classes=(), anomaly_classes=(), near_oe_classes=(),
                train_size: int = 0, seed: int = 0, **_) -> BenchmarkData:
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


# The benchmarks whose runs are one per class of the data set (the class is the normal one, or the anomaly).
PER_CLASS = ("one_vs_rest", "leave_one_out", "defect_detection")
BUILDERS = {"one_vs_rest": one_vs_rest, "leave_one_out": leave_one_out, "unlabeled": unlabeled, "defect_detection": defect_detection,
            "few_shot": few_shot, "diminishing": diminishing}
