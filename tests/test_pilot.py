"""The optimiser pilot (python -m oecl_core.pilot) end to end on a tiny synthetic CIFAR-like tree."""
import csv

from oecl_core.pilot import main


def test_pilot_trains_every_arm_writes_its_summary_and_resumes(tmp_path, one_torch_thread, noise_tree):
    data = noise_tree(tmp_path / "data", {"airplane": 150, "truck": 60, "cat": 0}, (("train", 12), ("test", 4)))
    out = tmp_path / "pilot"
    args = ["--data", str(data), "--out", str(out), "--epochs", "6", "--train-images", "8", "--test-normal", "4",
            "--test-other", "2", "--batch", "4", "--width", "0.0625", "--seeds", "0", "--device", "cpu"]
    assert main(args) == 0
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["arm"], r["method"]) for r in rows] == [(a, m) for a in ("lars", "lars_csi", "sgd") for m in ("simclr", "oecl")]
    for r in rows:
        assert 0 <= float(r["auroc_s_mu_mean"]) <= 100 and float(r["conv_weight_change_median"]) > 0
    # the x10 warm-up arm moves the weights further than the flat-lr LARS from the same start
    change = {(r["arm"], r["method"]): float(r["conv_weight_change_median"]) for r in rows}
    assert change[("lars_csi", "simclr")] > change[("lars", "simclr")]
    assert (out / "summary.md").read_text().startswith("| arm |") and (out / "loss_curves.png").stat().st_size > 0
    finished = (out / "sgd" / "oecl" / "seed0" / "metrics.json").stat().st_mtime
    assert main(args) == 0  # finished runs are skipped, not retrained
    assert (out / "sgd" / "oecl" / "seed0" / "metrics.json").stat().st_mtime == finished
