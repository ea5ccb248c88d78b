"""oecl_core.metrics.auroc against scikit-learn's roc_auc_score, which it replaces in the scored jobs."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from oecl_core.metrics import auroc


@pytest.mark.parametrize("kind", ["continuous", "integers", "rounded"])
def test_auroc_is_scikit_learns_bit_for_bit(kind):
    rng = np.random.default_rng({"continuous": 0, "integers": 1, "rounded": 2}[kind])
    cases = 0
    for _ in range(400):
        size = int(rng.integers(2, 2000))
        labels = rng.integers(0, 2, size)
        if labels.min() == labels.max():
            continue
        if kind == "continuous":
            scores = rng.normal(size=size)
        elif kind == "integers":  # many ties
            scores = rng.integers(0, 20, size).astype(float)
        else:  # ties and a real separation, as trained scores have
            scores = np.round(rng.normal(size=size) * labels + rng.normal(size=size), 2)
        assert auroc(scores, labels) == roc_auc_score(labels, scores)
        cases += 1
    assert cases > 350


def test_auroc_of_small_cases():
    assert auroc([3.0, 2.0, 1.0], [1, 1, 0]) == 1.0
    assert auroc([1.0, 2.0, 3.0], [1, 1, 0]) == 0.0
    assert auroc([1.0, 1.0, 1.0, 1.0], [1, 0, 1, 0]) == 0.5
    assert auroc(np.float32([0.1, 0.4, 0.35, 0.8]), [0, 0, 1, 1]) == 0.75
