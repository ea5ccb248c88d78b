"""A run's log.csv (one row per epoch, LOG_FIELDS) and the collapse check read from it (paper Fig. 4)."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

LOG_FIELDS = ["epoch", "loss", "lr", "alpha", "norm_id", "norm_oe", "norm_ood", "seconds", "images_per_s", "collapsed",
              "mu_id", "sigma_id", "sigma_v_id", "mu_ood", "sigma_ood", "sigma_v_ood", "steps"]
# A run has collapsed (paper Fig. 4: the OE norm penalty pushed the features of the training images to zero
# together with the OE's, and its AUROC means nothing) when, with the OE term on, the final mean ID feature norm
# is below COLLAPSE_DROP of the largest ID norm logged once BatchNorm had settled AND no longer
# COLLAPSE_SEPARATION times the OE norm. "Settled": the norms are logged in eval mode, and BatchNorm's running
# statistics (momentum 0.1) keep 0.9^k of their initial values after k steps, which inflates early norms by
# orders of magnitude when an epoch has few steps; after BN_SETTLE_STEPS steps that share is below 5%.
COLLAPSE_DROP = 0.05
COLLAPSE_SEPARATION = 2.0
BN_SETTLE_STEPS = 30


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [{k: (int(v) if k in ("epoch", "collapsed") else float(v)) for k, v in row.items() if v is not None}
                for row in csv.DictReader(fh)]


def log_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS, restval="nan")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def is_collapsed(log: list[dict]) -> bool:
    """Whether the run collapsed as in the paper's Fig. 4 (see COLLAPSE_DROP). A run without an active OE term
    (SimCLR, or OECL still in its warm-up) cannot collapse this way and is never flagged. Logs written before the
    `steps` column existed count epoch 1 as unsettled and every later epoch as settled."""
    if not log:
        return False
    last = log[-1]
    oe, norm_id = last.get("norm_oe", float("nan")), last["norm_id"]
    if not (math.isfinite(norm_id) and math.isfinite(oe)) or last.get("alpha", 1.0) <= 0:
        return False
    settled, steps = [], 0
    for i, row in enumerate(log):
        row_steps = row.get("steps", float("nan"))
        steps += row_steps if math.isfinite(row_steps) else (0 if i == 0 else BN_SETTLE_STEPS)
        if steps >= BN_SETTLE_STEPS and math.isfinite(row["norm_id"]):
            settled.append(row["norm_id"])
    reference = max(settled, default=norm_id)
    return norm_id < COLLAPSE_DROP * reference and norm_id < COLLAPSE_SEPARATION * oe
