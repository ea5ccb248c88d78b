"""Command line: `python -m oecl_core COMMAND ...` (`python -m oecl_core --help` lists the commands).

train / score / run work on the registered benchmarks (what the Snakemake rules call); fit / predict
train and score OECL on a user's own image folders.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import get_args, get_origin

import torch

from .config import DATASET_OE, IDENTITY_FIELDS, PRESETS, SETTING_TYPES, RunConfig, resolve_config
from .data import BENCHMARKS, DATASETS, Split
from .data.core import IMAGE_SUFFIXES, as_tensor, list_images, load_image_folder, read_image, stack_images
from .data.registry import oe_choices_text
from .io import save_torch, write_text
from .methods import METHODS

# Every RunConfig setting is a command-line override of the preset (--epochs, --lr-milestones 100 150, ...), generated
# from its fields, except those naming the run and --oe, which each subcommand declares with its own meaning.
OVERRIDES = [f.name for f in fields(RunConfig) if f.name not in IDENTITY_FIELDS + ("oe",)]
# Help where the option's name does not say enough.
OVERRIDE_HELP = {
    "anomaly": "anomaly data set of the unlabeled benchmark (e.g. cifar100)",
    "shots": "few-shot benchmark: OE images of the obtainable OOD class (-1: all)",
    "obtainable": "few-shot benchmark: the obtainable OOD class (-1: the second largest)",
    "train_size": "> 0: subsample the normal training images",
    "oe_count": "> 0: subsample the OE pool (1: one-sample OE)",
    "lr_schedule": "step (cosine per iteration), epoch (cosine per epoch) or multistep",
    "lr_milestones": "epochs at which the multistep schedule multiplies the lr by 0.1",
    "warmup_epochs": "alpha = 0 before this epoch",
    "stored_size": "resolution of the stored images when larger than --image-size",
    "s_mu_clean_view": "s_mu also averages the clean view (the public code's 33 views)",
    "oe_resample": "a new OE subset and batch order every epoch (--no-oe-resample: see --fixed-oe)",
    "aug_stats_every": "> 0: log mu, sigma, sigma_v of ID / OOD probes every N epochs (Fig. 2)",
    "device": "auto, cpu, cuda, cuda:1, mps",
    "precision": "auto (bf16 autocast on CUDA, float32 elsewhere), bf16 or fp32",
    "compile": "torch.compile the network for the training steps (README, Speed)",
    "cuda_graphs": "the whole training step recorded as one CUDA graph and replayed (CUDA, LARS; README, Speed)",
    "score_batch_views": "views per forward pass when scoring",
}


# The methods `sweep` runs unless --methods is given: the paper's two and the SimCLR they extend (docs/methods.md).
SWEEP_METHODS = tuple(name for name, method in METHODS.items() if method.paper_method)

# Every OE name the registry accepts (oecl_core/data/registry.py, oe_choices), so that --oe's help lists the OE sets the
# pipeline's tables use, and the defaults a preset changes (oecl_core/config.py, DATASET_OE).
OE_HELP = ("OE source (default: the data set's" + "".join(f"; {oe} for {dataset} under {preset}"
                                                          for (preset, dataset), oe in DATASET_OE.items())
           + f"): {oe_choices_text()}")


def _add_overrides(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("overrides of the preset (default: the preset's)")
    for name in OVERRIDES:
        kind, flag, text = SETTING_TYPES[name], "--" + name.replace("_", "-"), OVERRIDE_HELP.get(name)
        if kind is bool:
            g.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif get_origin(kind) is tuple:
            g.add_argument(flag, dest=name, type=get_args(kind)[0], nargs="*", default=None, metavar="N", help=text)
        else:
            g.add_argument(flag, dest=name, type=kind, default=None, metavar=kind.__name__.upper(), help=text)
    # the documented spellings of --no-oe-resample / --oe-resample
    g.add_argument("--fixed-oe", dest="oe_resample", action="store_const", const=False,
                   help="one fixed OE subset and batch order for every epoch (the public code's behaviour)")
    g.add_argument("--resample-oe", dest="oe_resample", action="store_const", const=True, help=argparse.SUPPRESS)


def _overrides(args) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in ((k, getattr(args, k)) for k in OVERRIDES)}


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)}, or folder:ROOT")
    p.add_argument("--benchmark", default="one_vs_rest",
                   help=f"one of {', '.join(BENCHMARKS)}, optionally with settings: NAME~key=value~... (e.g. one_vs_rest~oe=svhn)")
    p.add_argument("--cls", type=int, default=0, help="class index of the benchmark")
    p.add_argument("--method", default="oecl", help=f"one of {', '.join(METHODS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="paper", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--oe", default=None, help=OE_HELP)
    p.add_argument("--out", required=True, help="run folder (config.json, log.csv, checkpoint.pt, metrics.json)")
    p.add_argument("--stop-after-epoch", type=int, default=None, help="stop early; the same command resumes later")
    _add_overrides(p)


def _config(args) -> RunConfig:
    from .experiments import Run, run_config

    run = Run(args.benchmark, args.dataset, args.method, args.cls, args.seed)
    return run_config(args.preset, run, oe=args.oe, **_overrides(args))


def cmd_train(args) -> int:
    from .runner import split_for
    from .train import train

    cfg = _config(args)
    result = train(cfg, split_for(cfg), args.out, stop_after_epoch=args.stop_after_epoch)
    state = "finished" if result.finished else f"stopped after epoch {result.epochs_done} (run again to resume)"
    print(f"{args.out}: {state}{'; COLLAPSED' if result.collapsed else ''}")
    return 0


def cmd_score(args) -> int:
    from .runner import score_run

    saved = json.loads((Path(args.run) / "config.json").read_text())
    if args.n_aug is not None:
        saved["n_aug"] = args.n_aug
    if args.device is not None:
        saved["device"] = args.device
    metrics = score_run(RunConfig.from_dict(saved), args.run)
    print(json.dumps({"auroc": metrics["auroc"], "status": metrics["status"]}, indent=2))
    return 0


def cmd_run(args) -> int:
    from . import retry
    from .runner import run_experiment
    from .train import RunStopped

    refused = retry.refusal(args.out, args.attempt)
    if refused:
        print(f"error: not retried: {refused}", file=sys.stderr)
        return 1
    try:
        metrics = run_experiment(_config(args), args.out, stop_after_epoch=args.stop_after_epoch,
                                 keep_checkpoint=args.keep_checkpoint)
    except RunStopped as stopped:
        retry.record_stop(args.out, args.attempt)
        job = retry.requeue() if stopped.warned else None
        if job:
            print(f"requeued SLURM job {job}: it resumes this run when it starts again", file=sys.stderr)
        raise
    except Exception as err:
        retry.record_failure(args.out, err, args.attempt)
        raise
    if metrics is not None:
        retry.clear(args.out)
        print(json.dumps({"auroc": metrics["auroc"], "status": metrics["status"]}, indent=2))
    return 0


def cmd_fit(args) -> int:
    from .train import train

    cfg = resolve_config(args.preset, "folder:" + args.normal, "oecl", oe="folder:" + args.oe, seed=args.seed, **_overrides(args))
    normal = load_image_folder(args.normal, cfg.image_size).images
    oe = load_image_folder(args.oe, cfg.image_size).images
    empty = torch.zeros((0, *normal.shape[1:]), dtype=torch.uint8)
    split = Split(normal, empty, torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.int64), oe,
                  f"{len(normal)} normal images from {args.normal}, {len(oe)} OE images from {args.oe}")
    work = Path(args.out).with_name(Path(args.out).name + ".run")  # checkpoint and log: the fit resumes if re-run
    result = train(cfg, split, work, stop_after_epoch=args.stop_after_epoch)
    if not result.finished:
        print(f"stopped after epoch {result.epochs_done}; run the same command again to resume", file=sys.stderr)
        return 0
    if result.collapsed:
        print(f"warning: training collapsed (see {work}/log.csv); try a smaller --alpha", file=sys.stderr)
    save_torch(args.out, {"config": cfg.to_dict(), "model": result.model.state_dict(), "collapsed": result.collapsed})
    print(f"wrote {args.out} ({len(normal)} normal, {len(oe)} OE images, {cfg.epochs} epochs)")
    return 0


def _image_paths(items: list[str]) -> list[Path]:
    paths = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            paths += list_images(p)
        elif p.is_file():
            paths.append(p)
        else:
            raise FileNotFoundError(f"{item} is neither an image file nor a folder")
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {', '.join(items)}")
    return paths


def cmd_predict(args) -> int:
    from .augment import SimCLRAugment
    from .device import place_network, resolve_device, use_cudnn_benchmark
    from .methods import get_method
    from .scores import feature_stats
    from .train import build_network

    state = torch.load(args.model, map_location="cpu", weights_only=False)
    cfg = RunConfig.from_dict(state["config"])
    device = resolve_device(args.device or "auto")
    use_cudnn_benchmark(device)
    model = place_network(build_network(cfg), device)  # as the run trained it (channels-last on CUDA)
    model.load_state_dict(state["model"])
    method = get_method(cfg.method)
    method.configure(cfg)
    paths = _image_paths(args.images)
    arrays, size = [], cfg.stored_size or cfg.image_size
    for p in paths:
        try:
            arrays.append(read_image(p, size))
        except OSError as err:
            raise ValueError(f"cannot read {p} as an image ({err}); remove it or convert it") from None
    images = as_tensor(stack_images(arrays, size))  # stored as the run's data was (data/core.py)
    if method.primary_score:  # a baseline has one score of its own
        if method.name == "csi":
            raise ValueError("the CSI score is computed against the training images: score the run with "
                             "`python -m oecl_core score --run RUN_FOLDER` instead")
        args.score = method.primary_score
        stats = method.score(model, images, cfg)
    else:
        n_aug = cfg.n_aug if args.n_aug is None else args.n_aug
        stats = feature_stats(model, images, SimCLRAugment(cfg.crop_scale_min, output_size=cfg.image_size), n_aug,
                              seed=cfg.seed, image_size=cfg.image_size)
    if args.score not in stats:
        raise ValueError(f"score {args.score} needs --n-aug > 0")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "score"])
    writer.writerows((str(p), f"{s:.8g}") for p, s in zip(paths, stats[args.score]))
    text = buf.getvalue()
    if args.out:
        write_text(args.out, text)
        print(f"wrote {len(paths)} scores ({args.score}, higher = more normal) to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_sweep(args) -> int:
    """One benchmark for the methods of --methods (SWEEP_METHODS unless given, not every registered method), on every
    class (or those of --classes) and every seed of --seeds: each run in its own resumable run folder, then a summary
    of the mean AUROCs."""
    from .data import get_dataset
    from .experiments import Run, run_config
    from .report import collect, summarise
    from .runner import run_experiment

    classes = range(len(get_dataset(args.dataset).classes())) if args.classes is None else args.classes
    metrics_files = []
    for method in args.methods:
        for cls in classes:
            for seed in args.seeds:
                run = Run(args.benchmark, args.dataset, method, cls, seed)
                cfg = run_config(args.preset, run, oe=args.oe, **_overrides(args))
                out = Path(args.out) / run.relative_folder
                metrics = run_experiment(cfg, out)
                metrics_files.append(out / "metrics.json")
                print(f"{method} class {cls} seed {seed}: " + " ".join(f"{k} {v:.3f}" for k, v in metrics["auroc"].items())
                      + ("" if metrics["status"] == "ok" else f" [{metrics['status']}]"), flush=True)
    auc = collect(metrics_files)
    write_text(Path(args.out) / "auc.csv", auc.to_csv(index=False))
    summary = summarise(auc)
    print(f"\nmean AUROC (%) over classes, std across classes ({args.dataset}, {args.benchmark}, preset {args.preset}, "
          f"{len(args.seeds)} seed(s)); collapsed runs are included and counted (mean_without_collapsed leaves them out):")
    print(summary.to_string(index=False))
    return 0


def cmd_data(args) -> int:
    from .data import catalog

    root = Path(args.root) if args.root else None
    if args.action == "status":
        print(catalog.status_table(root))
        return 0
    if not args.name:
        raise ValueError(f"`data {args.action}` needs a data set name; valid choices: {', '.join(sorted(catalog.SETS))}")
    entry = catalog.entry(args.name)
    if args.action == "how":
        print(entry.instructions)
        return 0
    options = dict(item.split("=", 1) for item in args.option)
    options = {k: int(v) if v.lstrip("-").isdigit() else v for k, v in options.items()}
    manifest = catalog.prepare(args.name, root, force=args.force, local=args.source, **options)
    counts = ", ".join(f"{split}: {info['count']:,}" for split, info in manifest["splits"].items())
    print(f"{args.name} prepared in {catalog.prepared_dir(args.name, root)} ({counts}; {len(manifest['class_names'])} classes; "
          f"{len(manifest.get('skipped', []))} unreadable images skipped)")
    if args.name == "dior":
        from .data.sets.dior import dior_count_report

        print(dior_count_report(manifest))
    return 0


def cmd_verify(args) -> int:
    from .verify import run_from_args

    return run_from_args(args)


def cmd_device_window(args) -> int:
    from .window import run_from_args

    return run_from_args(args)


def cmd_plan(args) -> int:
    from .plan import plan

    throughput = {size: rate for size, rate in ((32, args.throughput_32), (224, args.throughput_224)) if rate is not None}
    print(plan(args.target, args.preset, args.configfile, throughput, args.bench_json))
    return 0


def cmd_list(args) -> int:
    print("data sets: " + ", ".join(f"{n} ({s.description})" for n, s in DATASETS.items()) + ", folder:ROOT")
    print("methods:   " + ", ".join(METHODS))
    print("presets:   " + ", ".join(PRESETS))
    print("OE:        " + oe_choices_text())
    print("benchmarks: " + ", ".join(BENCHMARKS))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m oecl_core", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, text in (("train", cmd_train, "train (or resume) one run"),
                           ("run", cmd_run, "train (or resume) one run, then score it")):
        p = sub.add_parser(name, help=text)
        _add_run_args(p)
        p.set_defaults(fn=fn)
    p.add_argument("--attempt", type=int, default=1,
                   help="Snakemake's attempt number: a retry resumes a run stopped by a signal, not one that failed or "
                        "was cancelled (oecl_core/retry.py)")
    p.add_argument("--keep-checkpoint", action=argparse.BooleanOptionalAction, default=True,
                   help="--no-keep-checkpoint: once the run is scored, delete checkpoint.pt and leave "
                        "checkpoint_removed.json (its size and sha256, a copy of the metrics); a later call does not "
                        "train the run again (the pipeline's keep_checkpoints: false). Not one of the run's settings")
    p = sub.add_parser("score", help="score a trained run's test set; writes metrics.json")
    p.add_argument("--run", required=True, help="run folder written by train")
    p.add_argument("--n-aug", type=int, default=None)
    p.add_argument("--device", default=None)
    p.set_defaults(fn=cmd_score)
    p = sub.add_parser("fit", help="train OECL on your own normal and OE image folders")
    p.add_argument("--normal", required=True, help="folder of normal training images")
    p.add_argument("--oe", required=True, help="folder of outlier-exposure images")
    p.add_argument("--out", required=True, help="model file to write, e.g. model.pt")
    p.add_argument("--preset", default="paper", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-after-epoch", type=int, default=None)
    _add_overrides(p)
    p.set_defaults(fn=cmd_fit)
    p = sub.add_parser("predict", help="score images with a fitted model; writes a CSV (path, score)")
    p.add_argument("--model", required=True)
    p.add_argument("images", nargs="+", help="image files and/or folders")
    p.add_argument("--out", default=None, help="CSV to write (default: standard output)")
    p.add_argument("--score", default="s_mu", choices=["s_l2", "s_l2_ens", "s_mu"])
    p.add_argument("--n-aug", type=int, default=None)
    p.add_argument("--device", default=None)
    p.set_defaults(fn=cmd_predict)
    p = sub.add_parser("sweep", help=f"run one benchmark for --methods (default: {', '.join(SWEEP_METHODS)}; not every "
                                     "method) on every class (or --classes) and --seeds, then print the mean AUROCs")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--benchmark", default="one_vs_rest", choices=list(BENCHMARKS))
    p.add_argument("--methods", nargs="+", default=list(SWEEP_METHODS),
                   help=f"methods to run, among {', '.join(METHODS)} (default: {', '.join(SWEEP_METHODS)})")
    p.add_argument("--classes", nargs="+", type=int, default=None, help="class indices (default: all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--preset", default="smoke")
    p.add_argument("--oe", default=None, help=OE_HELP)
    p.add_argument("--out", required=True, help="folder for the runs and auc.csv")
    _add_overrides(p)
    p.set_defaults(fn=cmd_sweep)
    p = sub.add_parser("data", help="real data sets: status, how to get them, prepare (download, verify, convert)")
    p.add_argument("action", choices=["status", "prepare", "how"])
    p.add_argument("name", nargs="?", help="data set name (for prepare / how)")
    p.add_argument("--root", default=None, help="data root (default: $OECL_DATA or ./data)")
    p.add_argument("--force", action="store_true", help="prepare again even if prepared")
    p.add_argument("--from", dest="source", type=Path, default=None, metavar="PATH",
                   help="prepare from an archive or folder you already have (no download)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="preparer option, e.g. --option count=50000 (repeatable)")
    p.set_defaults(fn=cmd_data)
    from .verify import add_arguments as add_verify_arguments

    p = sub.add_parser("verify", help="train and score runs at the paper's full settings within a time budget; "
                                      "record them in results/verified/ledger.csv")
    add_verify_arguments(p)
    p.set_defaults(fn=cmd_verify)
    from .window import add_arguments as add_window_arguments

    p = sub.add_parser("device-window", help="one GPU window's work in one command: device facts, syncs per step, the "
                                             "quick bench, and verify on as many CIFAR-10 classes as fit, into --out")
    add_window_arguments(p)
    p.set_defaults(fn=cmd_device_window)
    p = sub.add_parser("plan", help="the runs of a pipeline target, the views they train and score, and their GPU-hours")
    p.add_argument("target", help="tableN, figN, report or all")
    p.add_argument("--preset", default="paper", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--configfile", default="config.yaml", help="the pipeline's configuration")
    p.add_argument("--bench-json", default=None, help="figures written by python -m oecl_core.bench --json on the training GPU")
    p.add_argument("--throughput-32", type=float, default=None, help="training views/s of the OECL step at 32 px")
    p.add_argument("--throughput-224", type=float, default=None, help="training views/s of the OECL step at 224 px")
    p.set_defaults(fn=cmd_plan)
    p = sub.add_parser("list", help="list data sets, methods, presets, OE sources, benchmarks")
    p.set_defaults(fn=cmd_list)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .train import STOPPED_EXIT, RunStopped

    try:
        return args.fn(args)
    except RunStopped as stopped:
        print(f"{stopped}; run the same command again to resume (exit {STOPPED_EXIT})", file=sys.stderr)
        return STOPPED_EXIT
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        from .distributed import finish

        finish()  # leave the process group of a torchrun job (no-op otherwise)
