"""Command line: `python -m oecl_core COMMAND ...` (`python -m oecl_core --help` lists the commands).

train / score / run work on the registered benchmarks (what the Snakemake rules call); fit / predict
train and score OECL on a user's own image folders.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli_settings import add_overrides, overrides_of
from .config import DATASET_OE, PRESETS, SETTING_HELP, RunConfig
from .data import BENCHMARKS, DATASETS
from .data.registry import oe_choices_text
from .io import write_text
from .methods import METHODS

# The methods `sweep` runs unless --methods is given: the paper's two and the SimCLR they extend (docs/methods.md).
SWEEP_METHODS = tuple(name for name, method in METHODS.items() if method.paper_method)

# Every OE name the registry accepts (oecl_core/data/registry.py, oe_choices), so that --oe's help lists the OE sets the
# pipeline's tables use, and the defaults a preset changes (oecl_core/config.py, DATASET_OE).
OE_HELP = ("OE source (default: the data set's" + "".join(f"; {oe} for {dataset} under {preset}"
                                                          for (preset, dataset), oe in DATASET_OE.items())
           + f"): {oe_choices_text()}")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)}, or folder:ROOT")
    p.add_argument("--benchmark", default="one_vs_rest",
                   help=f"one of {', '.join(BENCHMARKS)}, optionally with settings: "
                        "NAME~key=value~... (e.g. one_vs_rest~oe=svhn)")
    p.add_argument("--cls", type=int, default=0, help=SETTING_HELP["cls"])
    p.add_argument("--method", default="oecl", help=f"one of {', '.join(METHODS)}")
    p.add_argument("--seed", type=int, default=0, help=SETTING_HELP["seed"])
    p.add_argument("--preset", default="paper", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--oe", default=None, help=OE_HELP)
    p.add_argument("--out", required=True, help="run folder (config.json, log.csv, checkpoint.pt, metrics.json)")
    p.add_argument("--stop-after-epoch", type=int, default=None, help="stop early; the same command resumes later")
    add_overrides(p)


def _config(args) -> RunConfig:
    from .experiments import Run, run_config

    run = Run(args.benchmark, args.dataset, args.method, args.cls, args.seed)
    return run_config(args.preset, run, oe=args.oe, **overrides_of(args))


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


def cmd_sweep(args) -> int:
    """One benchmark for the methods of --methods (SWEEP_METHODS unless given, not every registered method), on every
    class (or those of --classes) and every seed of --seeds: each run in its own resumable run folder, then a summary
    of the mean AUROCs."""
    from .data import get_dataset
    from .experiments import Run, run_config
    from .aggregate import collect, summarise
    from .runner import run_experiment

    classes = range(len(get_dataset(args.dataset).classes())) if args.classes is None else args.classes
    metrics_files = []
    for method in args.methods:
        for cls in classes:
            for seed in args.seeds:
                run = Run(args.benchmark, args.dataset, method, cls, seed)
                cfg = run_config(args.preset, run, oe=args.oe, **overrides_of(args))
                out = Path(args.out) / run.relative_folder
                metrics = run_experiment(cfg, out)
                metrics_files.append(out / "metrics.json")
                print(f"{method} class {cls} seed {seed}: "
                      + " ".join(f"{k} {v:.3f}" for k, v in metrics["auroc"].items())
                      + ("" if metrics["status"] == "ok" else f" [{metrics['status']}]"), flush=True)
    auc = collect(metrics_files)
    write_text(Path(args.out) / "auc.csv", auc.to_csv(index=False))
    summary = summarise(auc)
    print(f"\nmean AUROC (%) over classes, std across classes ({args.dataset}, {args.benchmark}, preset {args.preset}, "
          f"{len(args.seeds)} seed(s)); collapsed runs are included and counted "
          "(mean_without_collapsed leaves them out):")
    print(summary.to_string(index=False))
    return 0


def cmd_data(args) -> int:
    from .data import catalog

    root = Path(args.root) if args.root else None
    if args.action == "status":
        print(catalog.status_table(root))
        return 0
    if not args.name:
        raise ValueError(f"`data {args.action}` needs a data set name; "
                         f"valid choices: {', '.join(sorted(catalog.SETS))}")
    entry = catalog.entry(args.name)
    if args.action == "how":
        print(entry.instructions)
        return 0
    options = dict(item.split("=", 1) for item in args.option)
    options = {k: int(v) if v.lstrip("-").isdigit() else v for k, v in options.items()}
    manifest = catalog.prepare(args.name, root, force=args.force, local=args.source, **options)
    counts = ", ".join(f"{split}: {info['count']:,}" for split, info in manifest["splits"].items())
    print(f"{args.name} prepared in {catalog.prepared_dir(args.name, root)} "
          f"({counts}; {len(manifest['class_names'])} classes; "
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

    throughput = {size: rate for size, rate in ((32, args.throughput_32), (224, args.throughput_224))
                  if rate is not None}
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
    from .cli_predict import add_parsers as add_folder_parsers

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
    add_folder_parsers(sub)
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
    add_overrides(p)
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
    p = sub.add_parser("plan", help="the runs of a pipeline target, the views they train and score, "
                                     "and their GPU-hours")
    p.add_argument("target", help="tableN, figN, report or all")
    p.add_argument("--preset", default="paper", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--configfile", default="config.yaml", help="the pipeline's configuration")
    p.add_argument("--bench-json", default=None,
                   help="figures written by python -m oecl_core.throughput --json on the training GPU")
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
