"""`fit` and `predict`: OECL trained on a user's own image folders, and images scored with the fitted model.

Their own module, so that cli.py holds the commands on the registered benchmarks; cli.build_parser adds these.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import torch

from .cli_settings import add_overrides, overrides_of
from .config import PRESETS, SETTING_HELP, RunConfig, resolve_config
from .data import Split
from .data.core import IMAGE_SUFFIXES, as_tensor, list_images, load_image_folder, read_image, stack_images
from .io import save_torch, write_text
from .scores import IMAGE_SCORES


def cmd_fit(args) -> int:
    from .train import train

    cfg = resolve_config(args.preset, "folder:" + args.normal, "oecl", oe="folder:" + args.oe, seed=args.seed,
                         **overrides_of(args))
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


def add_parsers(sub) -> None:
    """The fit and predict subcommands, on the subparsers of cli.build_parser."""
    p = sub.add_parser("fit", help="train OECL on your own normal and OE image folders")
    p.add_argument("--normal", required=True, help="folder of normal training images")
    p.add_argument("--oe", required=True, help="folder of outlier-exposure images")
    p.add_argument("--out", required=True, help="model file to write, e.g. model.pt")
    p.add_argument("--preset", default="paper", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--seed", type=int, default=0, help=SETTING_HELP["seed"])
    p.add_argument("--stop-after-epoch", type=int, default=None)
    add_overrides(p)
    p.set_defaults(fn=cmd_fit)
    p = sub.add_parser("predict", help="score images with a fitted model; writes a CSV (path, score)")
    p.add_argument("--model", required=True)
    p.add_argument("images", nargs="+", help="image files and/or folders")
    p.add_argument("--out", default=None, help="CSV to write (default: standard output)")
    p.add_argument("--score", default="s_mu", choices=IMAGE_SCORES)
    p.add_argument("--n-aug", type=int, default=None)
    p.add_argument("--device", default=None)
    p.set_defaults(fn=cmd_predict)
