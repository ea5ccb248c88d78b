"""Each run setting is described once, on its RunConfig field: the command line's help and docs/settings.md read
that text, and a field's metadata never reaches the settings a run records."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from oecl_core.config import SETTING_HELP, SETTING_TYPES, RunConfig, settings_markdown

REPO = Path(__file__).resolve().parents[1]


def test_every_setting_has_its_help_on_its_field():
    names = [f.name for f in dataclasses.fields(RunConfig)]
    assert list(SETTING_HELP) == names == list(SETTING_TYPES)
    for name, text in SETTING_HELP.items():
        assert text.strip() and text == text.strip() and "%" not in text, name  # argparse formats help with %


def test_the_help_does_not_change_what_a_run_records():
    d = RunConfig().to_dict()
    assert list(d) == list(SETTING_HELP)
    assert d == {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
                 for f in dataclasses.fields(RunConfig)}
    assert RunConfig.from_dict(d) == RunConfig()


def _override_help(command: str) -> dict[str, str]:
    from oecl_core.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    group = next(g for g in sub.choices[command]._action_groups if g.title.startswith("overrides"))
    return {a.dest: a.help for a in group._group_actions if a.help != argparse.SUPPRESS and a.option_strings[0]
            == "--" + a.dest.replace("_", "-")}


@pytest.mark.parametrize("command", ["run", "train", "sweep", "fit"])
def test_the_command_lines_help_is_the_fields(command):
    from oecl_core.cli_settings import OVERRIDES

    helps = _override_help(command)
    assert set(helps) == set(OVERRIDES)
    for name, text in helps.items():
        assert text == SETTING_HELP[name], name


def test_docs_settings_is_generated_from_the_fields():
    doc = (REPO / "docs/settings.md").read_text(encoding="utf-8")
    assert doc == settings_markdown(), ("docs/settings.md is out of date; rewrite it with "
                                        "python -c \"from oecl_core.config import settings_markdown as m; "
                                        "print(m(), end='')\" > docs/settings.md")
    for name in SETTING_HELP:
        assert f"| `{name}` |" in doc
