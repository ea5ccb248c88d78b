import pytest
import torch

from oecl_core.config import resolve_config
from oecl_core.data import OEOverlapError, build_split
from oecl_core.data.benchmarks import diminishing, few_shot, leave_one_out, one_vs_rest, unlabeled
from oecl_core.data.core import ImageSet


def image_set(counts, names=None, offset=0):
    """counts[c] images of class c; pixel value = index (mod 256) so images can be traced."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    images = ((torch.arange(len(labels)) + offset) % 256).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone()
    return ImageSet(images, labels, names or [f"c{c}" for c in range(len(counts))])


def test_one_vs_rest_and_leave_one_out():
    train, test = image_set([3, 4, 5]), image_set([2, 2, 2])
    d = one_vs_rest(train, test, cls=1)
    assert len(d.train) == 4 and d.test_is_normal.tolist() == [False, False, True, True, False, False]
    d = leave_one_out(train, test, cls=1)
    assert len(d.train) == 8 and d.test_is_normal.tolist() == [True, True, False, False, True, True]


def test_unlabeled_marks_every_id_test_image_normal():
    d = unlabeled(image_set([3, 4]), image_set([2, 2]), anomaly_test=image_set([5], offset=100))
    assert len(d.train) == 7 and len(d.test) == 9
    assert d.test_is_normal.sum() == 4 and (d.test_labels[4:] < 0).all()


def test_few_shot_takes_largest_class_normal_and_k_shots_of_the_next():
    train = image_set([5, 30, 12, 2], names=["basophil", "neutrophil", "lymphocyte", "eosinophil"])
    test = image_set([3, 3, 3, 3], names=train.class_names)
    d = few_shot(train, test, shots=1, seed=0)
    assert len(d.train) == 30 and len(d.oe) == 1 and d.oe_classes == (2,)
    assert 2 not in d.test_labels.tolist()  # the obtainable class is not an unseen anomaly
    assert d.test_is_normal.sum() == 3 and len(d.test) == 9
    assert len(few_shot(train, test, shots=-1).oe) == 12
    assert len(few_shot(train, test, shots=0).oe) == 0
    # reproducible from the seed, different across seeds
    a, b, c = (few_shot(train, test, shots=3, seed=s).oe for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="13 shots"):
        few_shot(train, test, shots=13)


def test_oe_never_contains_a_test_anomaly_class():
    names = ["basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil"]
    train, test = image_set([4, 4, 6, 6, 8], names), image_set([2, 2, 2, 2, 2], names)
    d = diminishing(train, test, normal_classes=("lymphocyte", "monocyte"), anomaly_classes=("eosinophil",),
                    near_oe_classes=("basophil", "neutrophil"), train_size=5)
    assert len(d.train) == 5 and len(d.oe) == 12 and len(d.test) == 6
    with pytest.raises(OEOverlapError, match="eosinophil"):
        diminishing(train, test, normal_classes=("lymphocyte",), anomaly_classes=("eosinophil",),
                    near_oe_classes=("eosinophil",))


def test_build_split_subsamples_train_and_oe_and_checks_unlabeled_oe():
    split = build_split("digits", "one_vs_rest", 3, train_size=10, oe_count=1)
    assert len(split.train) == 10 and len(split.oe) == 1
    with pytest.raises(OEOverlapError):
        build_split("digits", "unlabeled", 0, oe="digits", anomaly="digits")
    with pytest.raises(ValueError, match="anomaly data set"):
        build_split("digits", "unlabeled", 0)


def test_few_shot_config_takes_the_benchmark_oe():
    cfg = resolve_config("smoke", "digits", "oecl", benchmark="few_shot", shots=10)
    assert cfg.oe == "benchmark"
    split = build_split("digits", "few_shot", -1, oe=cfg.oe, shots=10)
    assert len(split.oe) == 10
