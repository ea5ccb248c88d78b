"""The catalogue of real data sets: where each comes from, how it is prepared, and whether it is here.

    python -m oecl_core data status            every data set: prepared? raw files present and verified? how to get it
    python -m oecl_core data prepare NAME      download (where possible), verify, prepare into <root>/NAME/
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import prepare_classic, prepare_special
from .download import ChecksumError, DownloadError, ManualDownloadRequired, RemoteFile, fetch
from .prepared import default_data_root, is_prepared, read_manifest

SOURCES: dict[str, list[RemoteFile]] = {**prepare_classic.SOURCES, **prepare_special.SOURCES}
INSTRUCTIONS: dict[str, str] = {**prepare_classic.INSTRUCTIONS, **prepare_special.INSTRUCTIONS}
PREPARERS = {**prepare_classic.PREPARERS, **prepare_special.PREPARERS}


def check_name(name: str) -> None:
    if name not in PREPARERS:
        raise ValueError(f"unknown data set {name!r}; valid choices: {', '.join(sorted(PREPARERS))}")


def raw_dir(name: str, root: Path | None = None) -> Path:
    return Path(root or default_data_root()) / "raw" / name


def prepared_dir(name: str, root: Path | None = None) -> Path:
    return Path(root or default_data_root()) / name


@dataclass
class Status:
    name: str
    prepared: bool
    automatic: bool  # every source file can be fetched without a person
    raw_present: list[str]
    raw_missing: list[str]
    summary: str
    how: str


def status(name: str, root: Path | None = None) -> Status:
    check_name(name)
    folder = prepared_dir(name, root)
    sources = SOURCES.get(name, [])
    raw = raw_dir(name, root)
    present = [r.filename for r in sources if (raw / r.filename).exists()]
    missing = [r.filename for r in sources if not (raw / r.filename).exists()]
    automatic = bool(sources) and all(r.url and not r.gdrive_id for r in sources)
    summary = ""
    if is_prepared(folder):
        m = read_manifest(folder)
        summary = ", ".join(f"{split} {info['count']:,}" for split, info in m["splits"].items())
        if m.get("skipped"):
            summary += f" ({len(m['skipped'])} unreadable skipped)"
    how = "downloaded automatically by `data prepare`" if automatic else INSTRUCTIONS.get(name, "")
    return Status(name, is_prepared(folder), automatic, present, missing, summary, how)


def prepare(name: str, root: Path | None = None, force: bool = False, progress: bool | None = None, **options) -> dict:
    """Fetch what can be fetched, verify it, and prepare the data set; returns its manifest.

    A manual data set whose files are missing raises ManualDownloadRequired with the instructions,
    before anything is written."""
    check_name(name)
    out = prepared_dir(name, root)
    if is_prepared(out) and not force:
        return read_manifest(out)
    raw = raw_dir(name, root)
    raw.mkdir(parents=True, exist_ok=True)
    for remote in SOURCES.get(name, []):
        if remote.url or remote.gdrive_id:
            try:
                fetch(remote, raw, progress=progress)
            except (ManualDownloadRequired, ChecksumError):
                raise
            except (DownloadError, OSError) as err:  # network failures: say what to do by hand
                raise ManualDownloadRequired(f"could not download {remote.filename} for {name}: {err}\n\n"
                                             f"{INSTRUCTIONS.get(name, '')}") from err
    return PREPARERS[name](raw, out, **options)


def status_table(root: Path | None = None) -> str:
    """One line per data set: state, how it is obtained, and what to run next."""
    lines = [f"data root: {Path(root or default_data_root()).resolve()}  (set $OECL_DATA or --root to change)", "",
             f"{'data set':<22} {'state':<34} {'source':<28} next step"]
    for name in sorted(PREPARERS):
        s = status(name, root)
        sources = SOURCES.get(name, [])
        if s.prepared:
            state, step = f"prepared, verified ({s.summary})", "-"
        elif sources and not s.raw_missing:
            state, step = "raw files present, not prepared", f"data prepare {name}"
        else:
            state = f"missing {len(s.raw_missing)} of {len(sources)} files" if sources else "missing"
            step = f"data prepare {name}" if s.automatic else f"data how {name}, then data prepare {name}"
        source = ("download" if s.automatic else "Google Drive download" if any(r.gdrive_id for r in sources)
                  else "manual (registration)")
        lines.append(f"{name:<22} {state[:34]:<34} {source:<28} {step}")
    return "\n".join(lines)
