"""The optimiser pilot (python -m oecl_core.pilot) end to end on a tiny synthetic CIFAR-like tree."""
import csv

from oecl_core import runner
from oecl_core.experiments import RUN_FOLDER
from oecl_core.pilot import main


def test_pilot_trains_every_arm_writes_its_summary_and_resumes(tmp_path, one_torch_thread, noise_tree, monkeypatch):
    # every run goes through runner.run_experiment: its run lock, and metrics.json by io.write_json (atomic)
    locked, written = [], []
    real_lock, real_write = runner.run_lock, runner.write_json
    monkeypatch.setattr(runner, "run_lock", lambda out_dir, *a: locked.append(out_dir) or real_lock(out_dir, *a))
    monkeypatch.setattr(runner, "write_json", lambda path, data: written.append(path) or real_write(path, data))
    data = noise_tree(tmp_path / "data", {"airplane": 150, "truck": 60, "cat": 0}, (("train", 12), ("test", 4)))
    out = tmp_path / "pilot"
    args = ["--data", str(data), "--out", str(out), "--epochs", "6", "--train-images", "8", "--test-normal", "4",
            "--test-other", "2", "--batch", "4", "--width", "0.0625", "--seeds", "0", "--device", "cpu"]
    assert main(args) == 0
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["arm"], r["method"]) for r in rows] == \
        [(a, m) for a in ("lars", "lars_csi", "sgd") for m in ("simclr", "oecl")]
    for r in rows:
        assert 0 <= float(r["auroc_s_mu_mean"]) <= 100 and float(r["conv_weight_change_median"]) > 0
    # the x10 warm-up arm moves the weights further than the flat-lr LARS from the same start
    change = {(r["arm"], r["method"]): float(r["conv_weight_change_median"]) for r in rows}
    assert change[("lars_csi", "simclr")] > change[("lars", "simclr")]
    assert (out / "summary.md").read_text().startswith("| arm |") and (out / "loss_curves.png").stat().st_size > 0
    # each arm's runs in the pipeline's layout below OUT/<arm>/
    folders = [out / arm / RUN_FOLDER.format(benchmark="pilot", dataset="data", method=m, cls="airplane", seed=0)
               for arm in ("lars", "lars_csi", "sgd") for m in ("simclr", "oecl")]
    assert sorted(map(str, locked)) == sorted(map(str, folders))
    assert sorted(map(str, written)) == sorted(str(f / "metrics.json") for f in folders)
    assert all((f / ".lock").exists() and (f / "metrics.json").exists() for f in folders)
    assert not list(out.rglob(".*.tmp*"))  # no half-written file left
    finished = (folders[-1] / "metrics.json").stat().st_mtime
    assert main(args) == 0  # finished runs are skipped, not retrained
    assert (folders[-1] / "metrics.json").stat().st_mtime == finished
    assert len(locked) == 6
