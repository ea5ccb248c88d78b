"""End to end on the embedded benchmark: real data, real training, real scores."""
import json

import pytest

from oecl_core.config import resolve_config
from oecl_core.runner import run_experiment

@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")  # as a pipeline job runs it (threads: 1); see below
def test_oecl_on_digits_detects_the_other_digits_better_than_simclr(tmp_path):
    """The smoke preset's complete OECL and SimCLR runs for digit 0 (100 epochs, 32 augmentations, one intra-op
    thread as the smoke preset's Snakemake jobs run). What holds on every CPU this ran on is the comparison: OE
    lifts s_mu far above SimCLR's. The OECL run itself is chaotic in the float sums: on a 2-core AMD EPYC
    (2026-12-01) it stayed healthy (s_mu 0.98); on a 2-core Intel Xeon with AVX-512 (2026-12-03) the same run
    collapsed (s_mu 0.52, status "collapsed"). SimCLR scored below 0.5 on both (0.09 on the Intel one)."""
    oecl = run_experiment(resolve_config("smoke", "digits", "oecl", cls=0, device="cpu"), tmp_path / "oecl",
                          progress=False)
    simclr = run_experiment(resolve_config("smoke", "digits", "simclr", cls=0, device="cpu"), tmp_path / "simclr",
                            progress=False)
    assert simclr["status"] == "ok" and oecl["status"] in ("ok", "collapsed")
    assert oecl["auroc"]["s_mu"] > simclr["auroc"]["s_mu"] + 0.2, (oecl["auroc"], simclr["auroc"])
    assert oecl["split"] == {"description": "digits one_vs_rest (normal: 0), OE sample_photos_digit_like",
                             "n_train": 119, "n_oe": 2000, "n_test": 599, "n_test_normal": 59}
    saved = json.loads((tmp_path / "oecl" / "metrics.json").read_text())
    assert saved["auroc"] == oecl["auroc"] and saved["settings"]["epochs"] == 100
