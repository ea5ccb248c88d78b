"""The optimiser pilot behind the `paper` preset's choice (docs/fidelity.md, "Optimiser pilot").

It trains SimCLR and OECL on real CIFAR-10 images (an ImageFolder tree DATA/train/<class>/, DATA/test/<class>/,
such as the JPEG copy of CIFAR-10 that docs/upstream.md describes, "Development data") with three optimisers at one
reduced budget, several seeds each, and writes per arm the s_mu AUROC, the median relative change of the convolution
weights and the loss curve:

    python -m oecl_core.pilot --data /path/to/cifar10-jpeg --out pilot/ [--epochs 200 --width 0.125 ...]

Runs are resumable (a finished run is skipped, an interrupted one resumes from its checkpoint). Each arm's runs lie
below OUT/<arm>/ in the pipeline's layout (experiments.RUN_FOLDER: pilot/<data folder>/<method>/<normal class>/seed<s>),
trained and scored by runner.run_experiment (the run lock, metrics.json written atomically).
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from .config import resolve_config
from .data import Split
from .data.core import list_images, read_image
from .experiments import RUN_FOLDER
from .runner import run_experiment
from .train import is_collapsed, read_log

# The arms: what each optimiser is, and where its values come from. Every setting that differs between them is
# explicit, so the arms stay the same whatever the `paper` preset they start from says.
ARMS = {
    # The `paper` preset before this pilot: a real LARS at the paper's lr 0.1, no lr warm-up.
    "lars": dict(optimizer="lars", lr=0.1, weight_decay=1e-6, lr_warmup_multiplier=1.0),
    # LARS as CSI runs it (the paper's citation): torchlars on every parameter, lr 0.1 warmed up x10 over 10 epochs
    # of a 500-epoch run (scaled to the pilot's length), then cosine.
    "lars_csi": dict(optimizer="lars_csi", lr=0.1, weight_decay=1e-6, lr_warmup_multiplier=10.0),
    # What the public OECL code runs: SGD, lr 0.1, momentum 0.9, weight decay 5e-4.
    "sgd": dict(optimizer="sgd", lr=0.1, weight_decay=5e-4, lr_warmup_multiplier=1.0),
}


def load_class(root: Path, part: str, cls: str, count: int | None, seed: int) -> torch.Tensor:
    files = list_images(root / part / cls)
    if not files:
        raise FileNotFoundError(f"no images under {root / part / cls}: "
                                    "--data must hold train/<class>/ and test/<class>/")
    if count is not None and count < len(files):
        keep = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:count].sort().values
        files = [files[i] for i in keep.tolist()]
    return torch.from_numpy(np.stack([read_image(f, 32) for f in files]))


def build_pilot_split(root: Path, normal: str, oe_class: str, n_train: int, n_test_normal: int,
                      n_test_other: int) -> Split:
    """Normal = `normal`; OE = every training image of `oe_class`; test = normal test images against the other
    classes except the OE class (so the OE never contains a test anomaly)."""
    classes = sorted(d.name for d in (root / "test").iterdir() if d.is_dir())
    others = [c for c in classes if c not in (normal, oe_class)]
    test_normal = load_class(root, "test", normal, n_test_normal, 1)
    test_other = torch.cat([load_class(root, "test", c, n_test_other, 2) for c in others])
    test = torch.cat([test_normal, test_other])
    is_normal = torch.arange(len(test)) < len(test_normal)
    return Split(load_class(root, "train", normal, n_train, 0), test, is_normal, (~is_normal).long(),
                 load_class(root, "train", oe_class, None, 0),
                 f"CIFAR-10 pilot: {normal} ({n_train} images) vs {', '.join(others)}; OE {oe_class}")


def run_folder(args, arm: str, method: str, seed) -> Path:
    """OUT/<arm>/ is the arm's runs root; below it the pipeline's layout, the pilot's own split as its benchmark."""
    return Path(args.out) / arm / RUN_FOLDER.format(benchmark="pilot", dataset=Path(args.data).resolve().name,
                                                    method=method, cls=args.normal, seed=seed)


def run_arm(split, root, arm, method, seed, args) -> dict:
    out = run_folder(args, arm, method, seed)
    done = out / "metrics.json"
    if done.exists():
        return json.loads(done.read_text())
    # resolve_config scales CSI's lr warm-up (10 of 500 epochs) to the pilot's length, as the arm asks
    cfg = resolve_config("paper", f"folder:{root}", method, seed=seed, epochs=args.epochs, batch_size=args.batch,
                         oe_batch_size=args.batch, width=args.width, device=args.device, log_samples=128,
                         oe="none" if method == "simclr" else f"folder:{root}/train/{args.oe_class}", **ARMS[arm])
    # metrics.json holds conv_weight_change: both methods train from scratch
    return run_experiment(cfg, out, progress=args.progress, split=split)


def summarise(args) -> list[dict]:
    rows = []
    for arm in args.arms:
        for method in args.methods:
            runs = sorted(run_folder(args, arm, method, 0).parent.glob("seed*/metrics.json"))  # every seed
            if not runs:
                continue
            ms = [json.loads(p.read_text()) for p in runs]
            logs = [read_log(p.parent / "log.csv") for p in runs]
            auc = [100 * m["auroc"]["s_mu"] for m in ms]
            change = [m["conv_weight_change"] for m in ms]
            n = len(logs[0])
            checkpoints = sorted({1, max(1, n // 4), max(1, n // 2), n})
            rows.append({
                "arm": arm, "method": method, "seeds": len(ms),
                "auroc_s_mu_mean": statistics.mean(auc),
                "auroc_s_mu_std": statistics.stdev(auc) if len(auc) > 1 else 0.0,
                "auroc_s_mu_runs": " ".join(f"{a:.1f}" for a in auc),
                "conv_weight_change_median": statistics.median(change),
                "loss_at_epochs": " ".join(f"{e}:{statistics.mean(log[e - 1]['loss'] for log in logs):.3f}"
                                           for e in checkpoints),
                "norm_id_last": statistics.mean(log[-1]["norm_id"] for log in logs),
                "collapsed": sum(int(is_collapsed(log)) for log in logs),
                "train_seconds_mean": statistics.mean(m["timings"]["train_seconds_logged"] for m in ms),
            })
    return rows


def summary_markdown(rows: list[dict]) -> str:
    """The pilot table of docs/fidelity.md."""
    lines = ["| arm | method | seeds | AUROC s_mu (%) mean ± std | per seed | median conv weight change | "
             "mean loss at epochs | final ID norm | collapsed |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['arm']}` | {r['method']} | {r['seeds']} | "
                     f"{r['auroc_s_mu_mean']:.1f} ± {r['auroc_s_mu_std']:.1f} | "
                     f"{r['auroc_s_mu_runs']} | {100 * r['conv_weight_change_median']:.1f}% | {r['loss_at_epochs']} | "
                     f"{r['norm_id_last']:.2g} | {r['collapsed']} |")
    return "\n".join(lines) + "\n"


def plot_losses(args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.methods), figsize=(5 * len(args.methods), 3.6), squeeze=False)
    for ax, method in zip(axes[0], args.methods):
        for arm, colour in zip(args.arms, ("tab:red", "tab:blue", "tab:green", "tab:purple")):
            for i, log_path in enumerate(sorted(run_folder(args, arm, method, 0).parent.glob("seed*/log.csv"))):
                log = read_log(log_path)
                ax.plot([r["epoch"] for r in log], [r["loss"] for r in log], color=colour, alpha=0.7,
                        label=arm if i == 0 else None)
        ax.set_title(f"{method}: training loss per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m oecl_core.pilot", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True,
                   help="CIFAR-10 as an ImageFolder tree: DATA/train/<class>/, DATA/test/<class>/")
    p.add_argument("--out", required=True, help="folder for the runs and the summary (resumable)")
    p.add_argument("--normal", default="airplane")
    p.add_argument("--oe-class", default="truck",
                   help="training images of this class are the OE; it leaves the test set")
    p.add_argument("--train-images", type=int, default=400)
    p.add_argument("--test-normal", type=int, default=500)
    p.add_argument("--test-other", type=int, default=100, help="test images of each other class")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch", type=int, default=32, help="ID and OE images per step")
    p.add_argument("--width", type=float, default=0.125)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--methods", nargs="+", default=["simclr", "oecl"], choices=["simclr", "oecl"])
    p.add_argument("--device", default="auto")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--summary-only", action="store_true", help="only rewrite the summary from finished runs")
    args = p.parse_args(argv)
    root = Path(args.data).expanduser().resolve()
    if not args.summary_only:
        split = build_pilot_split(root, args.normal, args.oe_class, args.train_images, args.test_normal,
                                  args.test_other)
        print(split.description, file=sys.stderr)
        for seed in args.seeds:
            for arm in args.arms:
                for method in args.methods:
                    m = run_arm(split, root, arm, method, seed, args)
                    print(f"{arm:9s} {method:7s} seed {seed}: AUROC s_mu {100 * m['auroc']['s_mu']:.1f}, "
                          f"conv weight change {m['conv_weight_change']:.3f}", file=sys.stderr, flush=True)
    rows = summarise(args)
    out = Path(args.out)
    with open(out / "summary.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "summary.md").write_text(summary_markdown(rows))
    plot_losses(args, out / "loss_curves.png")
    for r in rows:
        print(f"{r['arm']:9s} {r['method']:7s} n={r['seeds']} AUROC "
              f"{r['auroc_s_mu_mean']:.1f} +- {r['auroc_s_mu_std']:.1f} "
              f"({r['auroc_s_mu_runs']}) conv change {r['conv_weight_change_median']:.3f} loss {r['loss_at_epochs']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
