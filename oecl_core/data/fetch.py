"""Downloads verified before use, and safe extraction, on maintained libraries.

    fetch(remote, dest_dir)        HTTP(S) and Google Drive through gdown (resume, retries, progress bar), then
                                   checked; only a verified file gets its final name. A record may name several
                                   sources of the same bytes (RemoteFile.mirrors): they are tried in order, each
                                   download checked against the one checksum
    file_record(path, remote)      md5 + sha256 + size in one pass, compared with the published checksum or
                                   with the one recorded at the first download (trust on first use)
    record_checksum(path)          that trust-on-first-use record, <folder>/CHECKSUMS.json
    extract(archive, dest_dir)     tar (tarfile's "data" filter), zip (every member checked) and rar (rarfile,
                                   which drives unrar / unar / bsdtar / 7z); all or nothing
What stays ours: the checksum record, the atomic hand-over to the final name, and messages that say what to do.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

CHECKSUMS_FILE = "CHECKSUMS.json"
PARTIAL = ".partial"  # dest_dir/.partial/ holds unfinished downloads (gdown resumes them)
RETRIES = 3
TIMEOUT_S = 60.0
GDRIVE_VIEW_URL = "https://drive.google.com/file/d/{id}/view"


@dataclass(frozen=True)
class RemoteFile:
    """One source file of a data set. md5 / sha256: published checksums; with neither, the sha256 of the first
    download is recorded and later files are checked against it. gdrive_id: a Google Drive file. mirrors: further
    URLs of the same file, tried in order when the ones before them fail or serve other bytes (share links that a
    host rotates, such as MVTec-AD's)."""
    filename: str
    url: str = ""
    md5: str | None = None
    sha256: str | None = None
    gdrive_id: str | None = None
    mirrors: tuple[str, ...] = ()

    @property
    def attempts(self) -> tuple[tuple[str, dict], ...]:
        """(where, gdown.download's source argument) of every source, in the order fetch tries them: the Google
        Drive file, url, then the mirrors."""
        drive = ((GDRIVE_VIEW_URL.format(id=self.gdrive_id), dict(id=self.gdrive_id)),) if self.gdrive_id else ()
        return drive + tuple((u, dict(url=u)) for u in (self.url, *self.mirrors) if u)

    @property
    def locations(self) -> tuple[str, ...]:
        return tuple(where for where, _ in self.attempts)

    @property
    def where(self) -> str:
        return self.locations[0] if self.locations else ""


class ChecksumError(RuntimeError):
    """A file does not match its published or recorded checksum."""


class UnsafeArchiveError(RuntimeError):
    """An archive member would land outside the destination, or is a link or device file that could."""


class ManualDownloadRequired(FileNotFoundError):
    """The files cannot be fetched here; the message says where to get them and where to put them."""


class DownloadError(RuntimeError):
    """A download failed after its retries; the partial file is kept, so the next attempt resumes it."""


class CorruptArchiveError(RuntimeError):
    """An archive is truncated or corrupt: delete it so it is fetched again."""


class MissingToolError(RuntimeError):
    """No external program that can extract this archive format is installed."""


# ------------------------------------------------------------------------------------------------ checksums

def _read_record(folder: Path) -> dict[str, str]:
    path = folder / CHECKSUMS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RuntimeError(f"cannot read the checksum record {path}: {err}; fix or delete it") from err
    if not isinstance(data, dict):
        raise RuntimeError(f"the checksum record {path} is not a JSON object; fix or delete it")
    return {str(k): str(v).lower() for k, v in data.items()}


def digests(path: Path) -> dict:
    """md5, sha256 and size of a file, read once."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            md5.update(block)
            sha.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest(), "bytes": Path(path).stat().st_size}


def record_checksum(path: Path, name: str | None = None, sha256: str | None = None,
                    record_dir: Path | None = None) -> str:
    """Trust on first use: the file's sha256 is written to <record_dir>/CHECKSUMS.json (default: the file's
    folder) under `name` the first time and must match it every later time (ChecksumError). Returns the sha256."""
    path = Path(path)
    folder = Path(record_dir or path.parent)
    name = name or path.name
    actual = sha256 or digests(path)["sha256"]
    known = _read_record(folder)
    expected = known.get(name)
    if expected is None:
        known[name] = actual
        tmp = folder / (CHECKSUMS_FILE + ".tmp")
        tmp.write_text(json.dumps(dict(sorted(known.items())), indent=2) + "\n")
        os.replace(tmp, folder / CHECKSUMS_FILE)
    elif expected != actual:
        raise ChecksumError(f"{name}: sha256 {actual} differs from the {expected} recorded in "
                            f"{folder / CHECKSUMS_FILE} at its first download; the file changed: delete it "
                            "and fetch it again")
    return actual


def file_record(path: Path, remote: RemoteFile | None = None, check: bool = True,
                record_dir: Path | None = None) -> dict:
    """md5 + sha256 + size of `path`; with `check`, compared with `remote`'s published checksums or, when none is
    published, with (or recorded into) the trust-on-first-use record. `verified` says against what."""
    path = Path(path)
    record = {**digests(path), "verified": False}
    if not check:
        return record
    published = [(a, getattr(remote, a)) for a in ("md5", "sha256") if remote is not None and getattr(remote, a)]
    for algorithm, expected in published:
        if record[algorithm] != expected.lower():
            raise ChecksumError(f"{path}: {algorithm} {record[algorithm]} does not match the published {expected}; "
                                f"the file is corrupt or another release: delete it and fetch it again"
                                # with several sources, fetch names the one that served the file
                                + (f" (from {remote.where})" if remote and len(remote.locations) == 1 else ""))
        record["verified"] = algorithm
    if not published:
        record_checksum(path, remote.filename if remote else None, record["sha256"], record_dir)
        record["verified"] = "recorded sha256"
    return record


# ------------------------------------------------------------------------------------------------ downloads

def fetch(remote: RemoteFile, dest_dir: Path, progress: bool = True, retries: int = RETRIES) -> Path:
    """dest_dir/remote.filename, downloaded if it is not there yet, and verified (see file_record).

    The sources (remote.locations) are tried in order until one gives a file that passes verification; a file that
    fails it is deleted and the next source tried. The bytes go to dest_dir/.partial/ first (an interrupted download
    is resumed by the next call); the file takes its final name only once verified. When every source fails:
    ChecksumError if each served the wrong bytes, else DownloadError; either names every source and what went wrong."""
    import gdown
    import requests

    dest_dir = Path(dest_dir)
    target = dest_dir / remote.filename
    if target.is_file():
        file_record(target, remote)
        return target
    if not remote.locations:
        raise ManualDownloadRequired(f"{remote.filename} has no download source; get it by hand and save it as "
                                     f"{target}")
    partial = dest_dir / PARTIAL
    partial.mkdir(parents=True, exist_ok=True)
    done = partial / remote.filename
    failures: list[tuple[str, Exception]] = []
    for where, source in remote.attempts:
        try:
            gdown.download(**source, output=str(done), quiet=not progress, resume=True, retries=retries,
                           timeout=TIMEOUT_S)
            if not done.is_file():
                raise DownloadError("the download wrote no file")
        except (OSError, requests.RequestException, gdown.exceptions.FileURLRetrievalError,
                gdown.exceptions.DownloadError, DownloadError) as err:
            failures.append((where, err))
            continue
        try:
            file_record(done, remote, record_dir=dest_dir)
        except ChecksumError as err:
            done.unlink()
            failures.append((where, err))
            continue
        os.replace(done, target)
        return target
    tried = "\n".join(f"  {k}. {where}: {err}" for k, (where, err) in enumerate(failures, 1))
    if all(isinstance(err, ChecksumError) for _, err in failures):
        raise ChecksumError(f"{remote.filename}: no source served the expected file (each download was deleted); "
                            f"tried in order:\n{tried}")
    raise DownloadError(f"could not download {remote.filename}; tried in order:\n{tried}\nA partial file, if any, is "
                        f"kept under {partial} and resumed by the next attempt.")


# ------------------------------------------------------------------------------------------------ archives

_ARCHIVE_ERRORS = (tarfile.ReadError, tarfile.CompressionError, zipfile.BadZipFile, EOFError, zlib.error)


def _check_member(archive: Path, name: str) -> None:
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or ".." in parts or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: refusing member {name!r} (absolute path or '..'); nothing was "
                                 "extracted")


def _extract_rar(archive: Path, tmp: Path) -> None:
    import rarfile

    try:
        with rarfile.RarFile(archive) as rf:
            for info in rf.infolist():
                _check_member(archive, info.filename)
                if info.is_symlink():
                    raise UnsafeArchiveError(f"{archive}: refusing the link {info.filename!r}; nothing was extracted")
            rf.extractall(tmp)
    except rarfile.RarCannotExec as err:
        raise MissingToolError(
            f"cannot extract {archive}: no RAR extractor is installed ({err}). Install one, e.g. Debian/Ubuntu "
            "`apt-get install unar` or `libarchive-tools` (bsdtar), conda `conda install -c conda-forge unar`; "
            "or extract the archive yourself into the same folder") from err
    except (rarfile.BadRarFile, rarfile.NeedFirstVolume, rarfile.RarExecError) as err:
        raise CorruptArchiveError(f"{archive} is truncated or corrupt ({err}); nothing was extracted. Delete it "
                                  "and fetch it again") from err


def extract(archive: Path, dest_dir: Path) -> Path:
    """Extract a tar (any compression), zip or rar archive into dest_dir, all or nothing: members are checked
    first (absolute paths, '..', links and devices leaving the destination raise UnsafeArchiveError), the content
    goes to a temporary folder that becomes dest_dir only when complete. Returns dest_dir."""
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extract-", dir=dest_dir.parent))
    name = archive.name.lower()
    try:
        if name.endswith(".rar"):
            _extract_rar(archive, tmp)
        elif zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member(archive, info.filename)
                zf.extractall(tmp)  # CRCs are checked while reading
        else:
            with tarfile.open(archive, "r:*") as tf:
                for member in tf.getmembers():  # reads the whole archive: a truncated one fails here, before writing
                    _check_member(archive, member.name)  # the data filter would strip a leading '/'; refuse it
                try:
                    tf.extractall(tmp, filter="data")  # refuses '..', links leaving the folder, device files
                except tarfile.FilterError as err:
                    raise UnsafeArchiveError(f"{archive}: {err}; nothing was extracted") from err
    except _ARCHIVE_ERRORS as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CorruptArchiveError(f"{archive} is truncated, corrupt or not an archive ({type(err).__name__}: {err});"
                                  " nothing was extracted. Delete it and fetch it again") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest_dir, ignore_errors=True)
    os.replace(tmp, dest_dir)
    return dest_dir
