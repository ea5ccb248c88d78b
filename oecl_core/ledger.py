"""The ledger of runs verified at the paper's full settings (results/verified/ledger.csv, `python -m oecl_core
verify`): its columns, reading, writing, merging, one row per run, the provenance a row records and its Markdown.

A row is never written twice for the same run, data, settings and commit (KEY).
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from .budget import finite
from .config import RunConfig
from .io import write_text

REPO = Path(__file__).resolve().parents[1]
COMMITTED_LEDGER = REPO / "results" / "verified" / "ledger.csv"
SCORES = ("s_mu", "s_l2_ens", "s_l2", "sim_s_mu")
COLUMNS = ["dataset", "cls", "class_name", "method", "preset", "seed", "epochs", "data_source", "overrides",
           "speed_settings", *(f"auroc_{s}" for s in SCORES), "status", "conv_weight_change", "paper_cell",
           "paper_cell_kind", "device", "train_seconds", "score_seconds", "git_commit", "date", "run_folder"]
# One row per (run, data, settings, commit).
KEY = ("dataset", "cls", "method", "preset", "seed", "data_source", "overrides", "git_commit")


def is_committed_ledger(path) -> bool:
    return Path(path).resolve() == COMMITTED_LEDGER.resolve()


def read_ledger(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_ledger(path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, buf.getvalue())


def row_key(row: dict) -> tuple:
    return tuple(str(row.get(k, "")) for k in KEY)


def append_row(path, row: dict) -> bool:
    """Adds the row unless the ledger holds one with the same KEY; True if added."""
    rows = read_ledger(path)
    if any(row_key(r) == row_key(row) for r in rows):
        return False
    write_ledger(path, rows + [row])
    return True


def merge_ledger(src, dst) -> tuple[int, int]:
    """Appends src's rows (e.g. DIR/ledger.csv from a device window) to dst, none twice; (added, already there).
    The committed ledger takes only rows at the paper's settings (no `overrides`)."""
    rows = read_ledger(src)
    if not rows:
        raise ValueError(f"{src} holds no ledger rows")
    changed = [r for r in rows if r.get("overrides")]
    if changed and is_committed_ledger(dst):
        raise ValueError(f"{src}: {len(changed)} row(s) ran with settings changed ({changed[0]['overrides']}); the "
                         "committed ledger only takes runs at the paper's full settings")
    added = sum(append_row(dst, r) for r in rows)
    return added, len(rows) - added


def ledger_markdown(path=COMMITTED_LEDGER) -> str:
    """The ledger as a Markdown table: our AUROCs (%), the paper's cell beside s_mu and the difference."""
    rows = read_ledger(path)
    if not rows:
        return (f"The ledger of runs verified at the paper's full settings ({Path(path).name}) is empty: "
                "no run has been verified at paper scale yet.")
    lines = ["| data set | class | method | seed | epochs | data | s_mu | paper | diff | s_l2_ens | s_l2 | sim_s_mu "
             "| status | device | train min | commit | date |",
             "|" + "---|" * 17]
    means = False
    for r in rows:
        ours, paper = finite(r.get("auroc_s_mu")), finite(r.get("paper_cell"))
        train_s = finite(r.get("train_seconds"))
        commit = r.get("git_commit", "")
        mark = ""
        if paper is not None and "mean" in r.get("paper_cell_kind", ""):
            mark, means = " \u2020", True
        cells = [r["dataset"], f"{r['cls']} {r.get('class_name', '')}".strip(), r["method"], r["seed"], r["epochs"],
                 r.get("data_source", "") + (f" ({r['overrides']})" if r.get("overrides") else ""),
                 _fmt(ours), _fmt(paper) + mark,
                 f"{ours - paper:+.1f}" if ours is not None and paper is not None else "",
                 _fmt(finite(r.get("auroc_s_l2_ens"))), _fmt(finite(r.get("auroc_s_l2"))),
                 _fmt(finite(r.get("auroc_sim_s_mu"))),
                 r.get("status", ""), r.get("device", ""),
                 _fmt(None if train_s is None else train_s / 60),
                 "+".join(c[:12] + ("-dirty" if c.endswith("-dirty") else "") for c in commit.split("+")),
                 r.get("date", "")[:10]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines.append("")
    lines.append("AUROC in %; diff = our s_mu minus the paper's cell (the paper's Table I reports s_mu).")
    if means:
        lines.append("\u2020 the paper's mean over all classes: its per-class numbers are not transcribed "
                     "(oecl_core/reference/paper_tables.csv), so a single class is compared with the mean.")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def paper_cell(dataset: str, method: str, class_name: str) -> tuple[float | None, str]:
    """The paper's Table I cell for a one-vs-rest run: the class's own number if transcribed, else the mean."""
    from .reference import paper_value

    for setting, kind in ((class_name, "Table I, this class"), ("", "Table I mean over classes")):
        try:  # paper_value raises KeyError unless exactly one cell matches
            value, _, _ = paper_value("I", dataset, method, setting, benchmark="one_vs_rest")
        except KeyError:
            continue
        if value is not None:  # None: a "×" cell
            return value, kind
    return None, ""


# ---------------------------------------------------------------------------------------------------------
# provenance, and the row of a scored run
# ---------------------------------------------------------------------------------------------------------

def git_commit(repo: Path = REPO) -> str:
    """HEAD, with "-dirty" when tracked files outside results/ differ from it; $OECL_GIT_COMMIT where the
    tree is no git checkout (e.g. a copy of it on another machine), else "unknown"."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                              timeout=60).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        changed = git("diff", "--name-only", "HEAD", "--", ".", ":(exclude)results")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("OECL_GIT_COMMIT", "unknown")
    return head + ("-dirty" if changed else "")


def device_name(cfg: RunConfig) -> str:
    import torch

    from .device import resolve_device

    device = resolve_device(cfg.device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def settings_text(settings: dict) -> str:
    return ";".join(f"{k}={settings[k]}" for k in sorted(settings))


def ledger_row(cfg: RunConfig, source: str, overrides: dict, speed: dict, metrics: dict, sidecar: dict, commit: str,
               run_dir: Path) -> dict:
    """The row of a scored run: metrics.json's AUROCs (%), the paper's cell, the device, the timings over every
    chunk (the run folder's verify.json) and every commit that trained it."""
    from .data import get_dataset

    class_name = get_dataset(cfg.dataset).classes()[cfg.cls]
    paper, kind = paper_cell(cfg.dataset, cfg.method, class_name)
    commits = [c for c in sidecar.get("git_commits", []) if c != commit] + [commit]
    row = {"dataset": cfg.dataset, "cls": cfg.cls, "class_name": class_name, "method": cfg.method,
           "preset": cfg.preset, "seed": cfg.seed, "epochs": cfg.epochs, "data_source": source,
           "overrides": settings_text(overrides), "speed_settings": settings_text(speed),
           "status": metrics.get("status", ""),
           "conv_weight_change": f"{metrics['conv_weight_change']:.4f}" if "conv_weight_change" in metrics else "",
           "paper_cell": "" if paper is None else f"{paper:g}", "paper_cell_kind": kind,
           "device": device_name(cfg), "train_seconds": f"{sidecar.get('train_seconds', 0.0):.2f}",
           "score_seconds": f"{(metrics.get('timings') or {}).get('score_seconds') or 0.0:.2f}",
           "git_commit": "+".join(commits),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "run_folder": shown(run_dir)}
    for score in SCORES:
        value = metrics.get("auroc", {}).get(score)
        row[f"auroc_{score}"] = "" if value is None else f"{100.0 * value:.2f}"
    return row


def key_row(cfg: RunConfig, source: str, overrides: dict, commit: str) -> dict:
    """The KEY columns of a run's row, to look it up before it is trained."""
    return {"dataset": cfg.dataset, "cls": cfg.cls, "method": cfg.method, "preset": cfg.preset, "seed": cfg.seed,
            "data_source": source, "overrides": settings_text(overrides), "git_commit": commit}
