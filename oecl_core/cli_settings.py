"""The preset overrides every run subcommand takes, generated from RunConfig's fields (cli and cli_predict)."""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import get_args, get_origin

from .config import IDENTITY_FIELDS, SETTING_HELP, SETTING_TYPES, RunConfig

# Every RunConfig setting is a command-line override of the preset (--epochs, --lr-milestones 100 150, ...), generated
# from its fields with the help its field gives (config.SETTING_HELP), except those naming the run and --oe, which
# each subcommand declares with its own meaning.
OVERRIDES = [f.name for f in fields(RunConfig) if f.name not in IDENTITY_FIELDS + ("oe",)]



def add_overrides(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("overrides of the preset (default: the preset's)")
    for name in OVERRIDES:
        kind, flag, text = SETTING_TYPES[name], "--" + name.replace("_", "-"), SETTING_HELP[name]
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


def overrides_of(args) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in ((k, getattr(args, k)) for k in OVERRIDES)}
