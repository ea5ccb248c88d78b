"""A new method is one file: a module with a Method subclass dropped into oecl_core/methods/, with no other edit, is
listed, trained and scored, planned, and given its own table column under its label. The module goes into a copy of
the package in tmp_path and every check runs in a subprocess on that copy, so neither the source tree nor this test
process ever sees it."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

THROWAWAY = '''\
"""A throwaway method (tests/test_new_method.py): SimCLR's views and loss under another name."""
from ..losses import nt_xent
from .base import Method, Views


class Throwaway(Method):
    name = "throwaway_test"
    label = "Throwaway"

    def views(self, x_id, x_oe, augment, gen):
        return Views(augment(x_id, gen), augment(x_id, gen), None)

    def loss(self, z1, z2, z_oe, alpha, temperature, targets=None):
        return nt_xent(z1, z2, temperature)
'''

TABLE = {"caption": "a new method's column", "benchmark": "one_vs_rest", "score": "s_mu", "seeds": [0],
         "rows": [{"dataset": "digits"}],
         "columns": [{"method": "simclr", "run": True}, {"method": "throwaway_test", "run": True}]}


@pytest.fixture
def tree(tmp_path):
    """A copy of the package with the throwaway method's module added, and a runner of Python on it."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "oecl_core", src / "oecl_core", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "oecl_core" / "methods" / "zz_throwaway.py").write_text(THROWAWAY)
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}

    def python(*args: str) -> str:
        proc = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    return tmp_path, python


@pytest.mark.slow
def test_a_new_method_is_one_file(tree):
    tmp_path, python = tree
    # (a) listed, after every existing method (whose order it leaves as it was)
    methods = next(line for line in python("-m", "oecl_core", "list").splitlines() if line.startswith("methods:"))
    listed = [m.strip() for m in methods.split(":", 1)[1].split(",")]
    from oecl_core.methods import METHODS

    assert listed == [*METHODS, "throwaway_test"]

    # (b) trained and scored through the command line
    run = tmp_path / "run"
    python("-m", "oecl_core", "run", "--preset", "smoke", "--dataset", "digits", "--method", "throwaway_test",
           "--cls", "0", "--epochs", "1", "--train-size", "32", "--batch-size", "16", "--log-samples", "8",
           "--n-aug", "2", "--out", str(run))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["settings"]["method"] == "throwaway_test"
    assert {"s_mu", "s_l2"} <= set(metrics["auroc"]) and all(0 <= v <= 1 for v in metrics["auroc"].values())

    # (c) planned: a table column that runs it counts its runs
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"tables": {"tnew": TABLE}}))
    plan = python("-m", "oecl_core", "plan", "tnew", "--preset", "smoke", "--configfile", str(config))
    rows = {}
    for line in plan.splitlines():  # the first table: runs per method (the disk table after it has the same names)
        if line.strip():
            rows.setdefault(line.split()[0], line.split())
    assert "tnew (preset smoke): 20 training jobs" in plan
    assert rows["throwaway_test"][1:3] == rows["simclr"][1:3] == ["10", "100"]  # runs (10 classes), epochs

    # (d) its column in a table built from the run's metrics.json, headed by its label
    python("-c", textwrap.dedent(f"""
        import json
        from oecl_core.aggregate import collect
        from oecl_core.tables import write_table
        write_table("tnew", json.loads({json.dumps(json.dumps(TABLE))}), "smoke",
                    collect([{str(run / "metrics.json")!r}]), {str(tmp_path / "tnew")!r})
        """))
    header, _, digits = [line for line in (tmp_path / "tnew.md").read_text().splitlines() if line.startswith("|")]
    assert "| Throwaway (ours) |" in header
    cells = dict(zip(header.split("|"), digits.split("|")))
    assert cells[" Throwaway (ours) "].strip() == f"{100 * metrics['auroc']['s_mu']:.1f}"


def test_every_method_is_in_docs_methods_md():
    # the one line, besides its module, that a new method needs
    from oecl_core.methods import METHODS

    text = (REPO / "docs" / "methods.md").read_text()
    assert [m for m in METHODS if f"`{m}`" not in text] == []
