"""The project's documents stand on their own: no tracked file points into the developers' `shared` folder beside
the checkout (its notes and its data), which the project does not ship. The facts once cited from there are in
docs/upstream.md. A test may still read a file from that folder when it skips without it: its code may name the
path, but none of its comments or docstrings."""
from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The folder's notes or data as a path, in prose or in code, written out or joined by pathlib's `/` (quoted parts).
OUTSIDE = re.compile(r"""\bshared["']?\s*/\s*["']?(?:docs|data)\b""")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no list of tracked files")
    return [REPO / name for name in out.decode().split("\0") if name]


def _prose(source: str) -> list[str]:
    """What a Python file tells its reader: its docstrings and comments."""
    tree = ast.parse(source)
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    docstrings = [ast.get_docstring(node, clean=False) for node in ast.walk(tree) if isinstance(node, kinds)]
    comments = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    return [text for text in docstrings if text] + comments


def mentions(path: Path) -> list[str]:
    """The passages of one file that point into the folder; a skipping test's code is its skip logic and may."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return []  # binary files (the figures), and tracked files deleted in this working tree
    if not OUTSIDE.search(text):
        return []
    skipping_test = path.relative_to(REPO).parts[0] == "tests" and path.suffix == ".py" and "pytest.skip" in text
    passages = _prose(text) if skipping_test else text.splitlines()
    return [p.strip() for p in passages if OUTSIDE.search(p)]


def test_the_pattern_finds_the_folder_in_prose_and_in_code():
    for text in ("see " + "shared" + "/docs/NOTES.md", "(the copy in " + "shared" + "/data/)",
                 'Path(x) / "shared" / ' + '"data" / "a.tar.gz"', "'shared'/" + "'docs'"):
        assert OUTSIDE.search(text), text
    for text in ("shared by every method", "a shared data root", "shared/paper/", "the shared file system"):
        assert not OUTSIDE.search(text), text


def test_a_skipping_test_may_name_the_path_in_code_only():
    source = ('"""Reads the archive."""\nimport pytest\n'
              'ARCHIVE = ROOT / "shared" / "data" / "x.tar.gz"  # from ' + 'shared' + '/data\n'
              'def test_x():\n    pytest.skip("absent")\n')
    hits = [p for p in _prose(source) if OUTSIDE.search(p)]
    assert hits == ["# from " + "shared" + "/data"]


def test_no_tracked_file_points_into_the_shared_folder():
    found = {str(path.relative_to(REPO)): hits for path in tracked_files() if (hits := mentions(path))}
    assert not found, ("documents must stand on their own; carry the facts into docs/upstream.md and cite it there: "
                       + "; ".join(f"{name}: {hits}" for name, hits in found.items()))
