"""AUROC with the project's convention: normal = 1, higher score = more normal, computed in float64."""
from __future__ import annotations

import numpy as np


def auroc(scores, is_normal) -> float:
    from sklearn.metrics import roc_auc_score  # here: importing scikit-learn costs a training job about 1 s

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(is_normal).astype(np.int64)
    if labels.min() == labels.max():
        raise ValueError("AUROC needs both normal and anomalous test images; the test set has only one kind")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf; the model is broken (see the run's log)")
    return float(roc_auc_score(labels, scores))
