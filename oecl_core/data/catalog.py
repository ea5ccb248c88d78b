"""The catalogue of real data sets (one file each in sets/): whether each is here, how to get it, and its preparation.

    python -m oecl_core data status                  every data set: prepared? raw files present? what to do next
    python -m oecl_core data how NAME                how to get NAME by hand and where its files go
    python -m oecl_core data prepare NAME            download (where possible), verify, prepare into <root>/NAME/
    python -m oecl_core data prepare NAME --from P   the same from an archive or folder P you already have, offline
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from .fetch import ChecksumError, DownloadError, ManualDownloadRequired, fetch
from .prep import FROM, DataSet  # FROM: raw/<name>/from/ links to a folder given with --from
from .prepared import MANIFEST, default_data_root, is_prepared, read_manifest
from .sets import SETS


def entry(name: str) -> DataSet:
    if name not in SETS:
        raise ValueError(f"unknown data set {name!r}; valid choices: {', '.join(sorted(SETS))}")
    return SETS[name]


def prepare_arguments(name: str) -> str:
    """The arguments the pipeline adds to `data prepare NAME`: ` --option KEY=VALUE` for each of its
    DataSet.pipeline_options, each with a leading space and quoted for a shell; empty for a data set without them
    or a name that is not a data set."""
    e = SETS.get(name)
    return "".join(f" --option {shlex.quote(f'{k}={v}')}" for k, v in (e.pipeline_options if e else ()))


def prepare_inputs(name: str) -> list[str]:
    """The package files NAME's preparer reads (DataSet.package_inputs): the pipeline's inputs of its preparation."""
    e = SETS.get(name)
    return list(e.package_inputs) if e else []


def raw_dir(name: str, root: Path | None = None) -> Path:
    return Path(root or default_data_root()) / "raw" / (entry(name).raw_name or name)


def prepared_dir(name: str, root: Path | None = None) -> Path:
    return Path(root or default_data_root()) / name


@dataclass
class Status:
    name: str
    prepared: bool
    automatic: bool  # every source file can be fetched without a person
    raw_missing: list[str]
    summary: str
    outdated: bool = False  # prepared by an older version in a layout this one no longer reads


def status(name: str, root: Path | None = None) -> Status:
    e, raw = entry(name), raw_dir(name, root)
    absent = [r.filename for r in e.sources if not (raw / r.filename).exists()]
    folder, summary = prepared_dir(name, root), ""
    if is_prepared(folder):
        m = read_manifest(folder)
        summary = ", ".join(f"{split} {info['count']:,}" for split, info in m["splits"].items())
        if m.get("skipped"):
            summary += f" ({len(m['skipped'])} unreadable skipped)"
    old = (folder / MANIFEST).exists() and not is_prepared(folder)
    return Status(name, is_prepared(folder), e.automatic, absent, summary, old)


def link_local_copy(name: str, source: Path, root: Path | None = None) -> list[Path]:
    """Makes an archive or folder the user already has readable as NAME's raw input, without copying or network:
    a file is linked under the source name it stands for (any name when the data set has one source file); a
    folder that holds every source file has each linked; any other folder (an extracted data set, or the files of
    another layout the preparer reads, e.g. HAM10000's ISIC challenge archives) is linked as raw/<name>/from/, where
    the preparer finds its folders, files and archives. Returns the links made."""
    e, raw, source = entry(name), raw_dir(name, root), Path(source).expanduser().resolve()
    if not source.exists():
        raise FileNotFoundError(f"--from {source}: no such file or folder")
    raw.mkdir(parents=True, exist_ok=True)
    names = [r.filename for r in e.sources]
    if source.is_file():
        if source.name in names or len(names) == 1:
            pairs = [(source, raw / (source.name if source.name in names else names[0]))]
        elif not names:
            pairs = [(source, raw / source.name)]
        else:
            raise ValueError(f"--from {source}: {name} needs the files {', '.join(names)}; give one of them by its "
                             "name, or the folder that holds them")
    else:
        held = [n for n in names if (source / n).is_file()]
        pairs = [(source / n, raw / n) for n in held] if held and len(held) == len(names) else [(source, raw / FROM)]
    made = []
    for target, link in pairs:
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            raise FileExistsError(f"{link} exists and is a folder; move it away to prepare {name} from {source}")
        link.symlink_to(target, target_is_directory=target.is_dir())
        made.append(link)
    return made


def prepare(name: str, root: Path | None = None, force: bool = False, progress: bool = True,
            local: Path | None = None, **options) -> dict:
    """Fetch what can be fetched (nothing with `local`), verify it and prepare NAME; returns its manifest. A
    manual data set whose files are missing raises ManualDownloadRequired with the instructions, before anything is
    written."""
    e = entry(name)
    out = prepared_dir(name, root)
    if is_prepared(out) and not force:
        return read_manifest(out)
    raw = raw_dir(name, root)
    raw.mkdir(parents=True, exist_ok=True)
    if local is not None:
        for link in link_local_copy(name, local, root):
            print(f"{name}: reading {link.resolve()} (linked as {link})", file=sys.stderr)
    if not (raw / FROM).exists():  # an extracted copy given with --from is read as it is, nothing is downloaded
        for remote in e.sources:
            if remote.locations and (local is None or (raw / remote.filename).exists()):
                try:
                    fetch(remote, raw, progress=progress)  # a file already there is only verified
                except DownloadError as err:  # network failures: say what to do by hand
                    raise ManualDownloadRequired(f"{err}\n\n{e.instructions}") from err
                except ChecksumError as err:  # every source served other bytes: the same way out, by hand
                    raise ChecksumError(f"{err}\n\n{e.instructions}") from err
    return e.prepare(raw, out, **options)


def status_table(root: Path | None = None) -> str:
    """One line per data set: state, how it is obtained, and what to run next."""
    lines = [f"data root: {Path(root or default_data_root()).resolve()}  (set $OECL_DATA or --root to change)", "",
             f"{'data set':<22} {'state':<34} {'source':<24} next step"]
    for name in sorted(SETS):
        s, e = status(name, root), SETS[name]
        if s.prepared:
            state, step = f"prepared, verified ({s.summary})", "-"
        elif s.outdated:
            state, step = "prepared in an old format", f"data prepare {name} (again)"
        elif e.sources and not s.raw_missing:
            state, step = "raw files present, not prepared", f"data prepare {name}"
        else:
            state = f"missing {len(s.raw_missing)} of {len(e.sources)} files" if e.sources else "missing"
            step = f"data prepare {name}" if s.automatic else f"data how {name}, then data prepare {name} --from PATH"
        source = ("Google Drive download" if any(r.gdrive_id for r in e.sources) else "download") if s.automatic \
            else "manual"
        lines.append(f"{name:<22} {state[:34]:<34} {source:<24} {step}")
    return "\n".join(lines)
