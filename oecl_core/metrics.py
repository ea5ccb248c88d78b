"""AUROC with the project's convention: normal = 1, higher score = more normal, computed in float64.

Computed here rather than by scikit-learn's roc_auc_score, whose import costs every scored job about a second: the
same computation (the ROC curve from the highest score down, one point per distinct score, collinear middle points
dropped, then the trapezoidal area), so it gives the same float64 number; tests/test_metrics.py compares the two on
thousands of score sets, ties included, bit for bit.
"""
from __future__ import annotations

import numpy as np


def auroc(scores, is_normal) -> float:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(is_normal).astype(np.int64)
    if labels.min() == labels.max():
        raise ValueError("AUROC needs both normal and anomalous test images; the test set has only one kind")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf; the model is broken (see the run's log)")
    order = np.argsort(scores, kind="mergesort")[::-1]  # highest first; a stable sort: ties in a fixed order
    ranked, positive = scores[order], labels[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]  # the last image of each run of equal scores
    tps = np.cumsum(positive)[last]  # normal images at or above each distinct score
    fps = 1 + last - tps
    if len(fps) > 2:  # a point on the line through its neighbours adds no area, only rounding
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[keep], tps[keep]
    fpr, tpr = np.r_[0, fps] / fps[-1], np.r_[0, tps] / tps[-1]
    return float((np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0).sum())
