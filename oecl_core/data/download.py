"""Downloads verified before use, and safe archive extraction.

Public API
----------
fetch(remote, dest_dir, progress=None) -> Path
    Download ``remote`` to ``dest_dir/remote.filename`` (HTTP(S) with resume and retries, Google Drive,
    ``file://`` URLs or plain local paths), verify it, and return its path.
verify(path, remote)
    Check a file against the published md5 / sha256 of ``remote``, or, when none is published, against
    the sha256 recorded in ``CHECKSUMS.json`` next to it (trust on first use, see record_checksum).
record_checksum(path, name=None) -> str
    Trust-on-first-use record of sha256 checksums in ``<folder>/CHECKSUMS.json``.
sha256_of(path), md5_of(path)
    Streamed hex digests.
safe_extract(archive, dest_dir) -> list[Path]
    Extract .tar/.tar.gz/.tgz/.tar.bz2/.tar.xz/.zip after checking every member.
extract_rar(archive, dest_dir) -> list[Path]
    Extract a RAR archive with an external tool (bsdtar, unar, 7z or unrar) and check the result.

Errors: ChecksumError, UnsafeArchiveError, ManualDownloadRequired, DownloadError (and its subclass
IncompleteDownloadError), CorruptArchiveError, MissingToolError.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path, PurePosixPath
from typing import Callable

try:  # optional decompressors: only their error types are needed
    import lzma
    _LZMA_ERRORS: tuple[type[BaseException], ...] = (lzma.LZMAError,)
except ImportError:  # pragma: no cover
    _LZMA_ERRORS = ()


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set's source: where it comes from and how to check it.

    md5 / sha256: a published checksum; when neither is published, the sha256 seen at the first
    successful download is recorded (see record_checksum) and every later download is checked against it.
    gdrive_id: a Google Drive file id (url is then informational).
    """
    filename: str
    url: str = ""
    md5: str | None = None
    sha256: str | None = None
    gdrive_id: str | None = None
    size: int | None = None  # bytes, when known (progress bar, early truncation check)


class ChecksumError(RuntimeError):
    """A file does not match its expected checksum (or size)."""

    def __init__(self, message: str, *, path: Path | None = None, algorithm: str | None = None,
                 expected: str | None = None, actual: str | None = None):
        super().__init__(message)
        self.path, self.algorithm, self.expected, self.actual = path, algorithm, expected, actual


class UnsafeArchiveError(RuntimeError):
    """An archive member would land outside the destination (or is a device file / unsafe link)."""


class ManualDownloadRequired(FileNotFoundError):
    """The file cannot be fetched automatically; the message says where to get it and where to put it."""

    def __init__(self, message: str, *, target: Path | None = None, url: str | None = None):
        super().__init__(message)
        self.target, self.url = target, url


class DownloadError(RuntimeError):
    """A download failed (after retries); any partial ``.part`` file is kept so a rerun resumes it."""


class IncompleteDownloadError(DownloadError):
    """The server sent fewer bytes than it announced; the partial ``.part`` file is kept for resuming."""


class CorruptArchiveError(RuntimeError):
    """An archive is truncated or corrupt; delete it so that it is downloaded again."""


class MissingToolError(RuntimeError):
    """No external extractor for an archive format was found on PATH."""


# --------------------------------------------------------------------------------------------------
# Settings (module level so that tests and users with mirrors can change them)
# --------------------------------------------------------------------------------------------------

#: Google Drive's direct-download endpoint (``?export=download&id=<id>`` is appended).
GDRIVE_URL = "https://drive.google.com/uc"
#: The page a user opens in a browser to download a Drive file by hand.
GDRIVE_VIEW_URL = "https://drive.google.com/file/d/{id}/view"
#: Name of the trust-on-first-use checksum record kept in each download folder.
CHECKSUMS_FILE = "CHECKSUMS.json"
#: Extra attempts after a transient network error / truncated transfer, and the first backoff (seconds;
#: doubled at each attempt, capped at MAX_BACKOFF_S).
RETRIES = 3
BACKOFF_S = 2.0
MAX_BACKOFF_S = 30.0
#: Socket timeout (seconds) for each request.
TIMEOUT_S = 60.0
USER_AGENT = "Mozilla/5.0 (compatible; oecl-core-downloader)"
CHUNK = 1 << 20
#: RAR extractors tried in this order.
RAR_TOOLS = ("bsdtar", "unar", "7z", "7zz", "unrar")


# --------------------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------------------

def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    return _digest(Path(path), "sha256")


def md5_of(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    return _digest(Path(path), "md5")


def _load_checksums(record: Path) -> dict[str, str]:
    if not record.exists():
        return {}
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError) as e:
        raise RuntimeError(f"cannot read the checksum record {record}: {e}; fix or delete it") from e
    if not isinstance(data, dict):
        raise RuntimeError(f"the checksum record {record} is not a JSON object; fix or delete it")
    return {str(k): str(v) for k, v in data.items()}


def record_checksum(path: Path, name: str | None = None) -> str:
    """Trust on first use: check ``path`` against ``<path's folder>/CHECKSUMS.json``, or record it there.

    The record maps a file name (``name``, default ``path.name``) to its sha256. When the name has no
    entry yet, the file's sha256 is written to the record (so the first successful download is trusted);
    when it has one, the file must match it, else ChecksumError. Returns the file's sha256.
    """
    path = Path(path)
    name = name or path.name
    record = path.parent / CHECKSUMS_FILE
    actual = sha256_of(path)
    known = _load_checksums(record)
    expected = known.get(name)
    if expected is None:
        known[name] = actual
        tmp = record.with_name(record.name + ".tmp")
        tmp.write_text(json.dumps(dict(sorted(known.items())), indent=2) + "\n")
        os.replace(tmp, record)
        return actual
    if expected.lower() != actual:
        raise ChecksumError(
            f"{name}: sha256 mismatch with the checksum recorded at its first download in {record}: "
            f"expected {expected}, got {actual}",
            path=path, algorithm="sha256", expected=expected, actual=actual)
    return actual


def verify(path: Path, remote: RemoteFile) -> None:
    """Raise ChecksumError unless ``path`` matches ``remote``.

    Checks ``remote.size`` when given, then ``remote.md5`` and/or ``remote.sha256`` (streamed). When
    neither checksum is published, falls back to trust on first use: the sha256 is recorded under
    ``remote.filename`` in ``CHECKSUMS.json`` in the file's folder the first time, and later
    verifications compare against that record (see record_checksum). The file is never deleted here.
    """
    path = Path(path)
    if remote.size is not None:
        actual_size = path.stat().st_size
        if actual_size != remote.size:
            raise ChecksumError(
                f"{remote.filename}: size mismatch: expected {remote.size} bytes, got {actual_size}",
                path=path, algorithm="size", expected=str(remote.size), actual=str(actual_size))
    checks = [(a, v) for a, v in (("md5", remote.md5), ("sha256", remote.sha256)) if v]
    if not checks:
        record_checksum(path, remote.filename)
        return
    for algorithm, expected in checks:
        actual = _digest(path, algorithm)
        if actual != expected.strip().lower():
            raise ChecksumError(
                f"{remote.filename}: {algorithm} mismatch: expected {expected}, got {actual}",
                path=path, algorithm=algorithm, expected=expected, actual=actual)


# --------------------------------------------------------------------------------------------------
# Progress bar
# --------------------------------------------------------------------------------------------------

class _Bar:
    """One-line ``\\r`` progress bar on stderr: bytes done / total and MB/s."""

    def __init__(self, label: str, total: int | None, done: int, enabled: bool | None):
        self.stream = sys.stderr
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled, self.label, self.total = enabled, label, total
        self.done, self.start_done = done, done
        self.t0 = self.last = time.monotonic()
        self.width = 0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self.last >= 0.2:
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = (self.done - self.start_done) / max(now - self.t0, 1e-6) / 1e6
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(20 * frac)
            text = (f"{self.label} [{bar:<20}] {self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB "
                    f"{100 * frac:3.0f}% {rate:.1f} MB/s")
        else:
            text = f"{self.label} {self.done / 1e6:.1f} MB {rate:.1f} MB/s"
        self.stream.write("\r" + text.ljust(self.width))
        self.width = len(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------------

class _Transient(Exception):
    """A failure worth retrying."""


class _Short(_Transient):
    """The transfer stopped before the announced end."""


_NETWORK_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException)


def _content_length(resp) -> int | None:
    value = resp.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _range_start(resp) -> tuple[int | None, int | None]:
    """(start, total) from a ``Content-Range: bytes start-end/total`` header."""
    value = resp.headers.get("Content-Range", "")
    try:
        unit, _, spec = value.partition(" ")
        span, _, total = spec.partition("/")
        start = int(span.split("-")[0]) if unit.strip() == "bytes" else None
        return start, (int(total) if total.strip().isdigit() else None)
    except ValueError:
        return None, None


def _open(opener, url: str, offset: int = 0, timeout: float = TIMEOUT_S):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)


def _stream_to_part(opener, url: str, part: Path, remote: RemoteFile, progress: bool | None,
                    retries: int, backoff_s: float, sleep: Callable[[float], None],
                    first_response=None) -> None:
    """Download ``url`` into ``part`` (resuming it when the server honours Range), with retries.

    ``first_response``: an already opened response for the whole file (offset 0), used by the first
    attempt when there is no partial file (Google Drive's resolution step opens it).
    """
    attempt = 0
    last_error: BaseException | None = None
    reset_416 = False
    while True:
        offset = part.stat().st_size if part.exists() else 0
        resp = None
        try:
            if first_response is not None and offset == 0:
                resp, first_response = first_response, None
            else:
                if first_response is not None:
                    first_response.close()
                    first_response = None
                try:
                    resp = _open(opener, url, offset)
                except urllib.error.HTTPError as e:
                    e.close()
                    if e.code == 416 and offset:
                        total = e.headers.get("Content-Range", "").rpartition("/")[2].strip() \
                            if e.headers else ""
                        if (total.isdigit() and int(total) == offset) or remote.size == offset:
                            return  # the partial file is already complete; verification follows
                    if e.code == 416 and offset and not reset_416:
                        # Our partial file is not a prefix the server can continue: start over.
                        reset_416 = True
                        part.unlink()
                        continue
                    if e.code in (408, 425, 429) or e.code >= 500:
                        raise _Transient(f"HTTP {e.code} {e.reason}") from e
                    raise DownloadError(
                        f"downloading {remote.filename} from {url} failed: HTTP {e.code} {e.reason}"
                        + (" (the file is missing at the source; check the URL)" if e.code == 404 else "")
                    ) from e
            status = getattr(resp, "status", 200)
            length = _content_length(resp)
            expected_total: int | None = None
            if offset and status == 206:
                start, total = _range_start(resp)
                if start is not None and start != offset:
                    offset = 0  # the server sent some other range: start over
                    resp.close()
                    part.unlink()
                    continue
                mode = "ab"
                expected_total = total if total is not None else (
                    offset + length if length is not None else remote.size)
            else:
                offset, mode = 0, "wb"
                expected_total = length if length is not None else remote.size
            bar = _Bar(remote.filename, expected_total, offset, progress)
            written = offset
            try:
                with open(part, mode) as out:
                    while True:
                        try:
                            block = resp.read(CHUNK)
                        except _NETWORK_ERRORS as e:
                            raise _Short(f"connection lost after {written} bytes: {e}") from e
                        if not block:
                            break
                        out.write(block)
                        written += len(block)
                        bar.update(len(block))
            finally:
                bar.close()
                resp.close()
            if expected_total is not None and written < expected_total:
                raise _Short(f"transfer ended after {written} of {expected_total} bytes")
            return
        except _Transient as e:
            last_error = e
        except _NETWORK_ERRORS as e:  # could not connect / no answer
            last_error = e
        finally:
            if resp is not None:
                resp.close()
        if attempt >= retries:
            break
        sleep(min(backoff_s * (2 ** attempt), MAX_BACKOFF_S))
        attempt += 1
    have = part.stat().st_size if part.exists() else 0
    msg = (f"downloading {remote.filename} from {url} failed after {attempt + 1} attempts: {last_error}. "
           f"{have} bytes are kept in {part}; run again to resume.")
    if isinstance(last_error, _Short):
        raise IncompleteDownloadError(msg) from last_error
    raise DownloadError(msg) from last_error


class _FormParser(HTMLParser):
    """Collects forms (action, method, named inputs) and links of an HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                               "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            if a.get("type", "text").lower() in ("hidden", "text", "submit") or "value" in a:
                self.forms[-1]["inputs"][a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])


def _is_html(resp) -> bool:
    return resp.headers.get_content_type() in ("text/html", "application/xhtml+xml")


def _gdrive_next_url(page: str, page_url: str, file_id: str, cookies: CookieJar) -> str | None:
    """The confirmed download URL hidden in Drive's 'can't scan for viruses' page, if any."""
    parser = _FormParser()
    try:
        parser.feed(page)
    except Exception:  # malformed HTML: fall through to the other clues
        pass
    for form in parser.forms:
        inputs = form["inputs"]
        if "confirm" in inputs or "uuid" in inputs or inputs.get("id") == file_id:
            action = urllib.parse.urljoin(page_url, form["action"] or page_url)
            sep = "&" if urllib.parse.urlsplit(action).query else "?"
            return action + sep + urllib.parse.urlencode(inputs)
    for href in parser.links:
        if "confirm=" in href:
            return urllib.parse.urljoin(page_url, href)
    for cookie in cookies:  # older flow: the token sits in a download_warning cookie
        if cookie.name.startswith("download_warning"):
            return f"{GDRIVE_URL}?export=download&confirm={cookie.value}&id={file_id}"
    return None


def _gdrive_manual(file_id: str, target: Path, why: str) -> ManualDownloadRequired:
    view = GDRIVE_VIEW_URL.format(id=file_id)
    return ManualDownloadRequired(
        f"Google Drive did not serve file id {file_id} directly ({why}; this happens when its download "
        f"quota is exceeded or it asks for a sign-in). Download it in a browser from {view} and save it "
        f"as {target}, then run again.", target=target, url=view)


def _gdrive_download(remote: RemoteFile, part: Path, target: Path, progress: bool | None,
                     retries: int, backoff_s: float, sleep: Callable[[float], None]) -> None:
    file_id = remote.gdrive_id
    assert file_id
    cookies = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    url = f"{GDRIVE_URL}?{urllib.parse.urlencode({'export': 'download', 'id': file_id})}"
    for _hop in range(3):
        attempt = 0
        while True:
            try:
                resp = _open(opener, url)
                break
            except urllib.error.HTTPError as e:
                e.close()
                if e.code in (403, 404):
                    raise _gdrive_manual(file_id, target, f"it answered HTTP {e.code}") from e
                if attempt >= retries or not (e.code in (429,) or e.code >= 500):
                    raise DownloadError(f"Google Drive file {file_id}: HTTP {e.code} {e.reason}") from e
            except _NETWORK_ERRORS as e:
                if attempt >= retries:
                    raise DownloadError(f"Google Drive file {file_id}: cannot connect: {e}") from e
            sleep(min(backoff_s * (2 ** attempt), MAX_BACKOFF_S))
            attempt += 1
        if not _is_html(resp):
            # The file itself: stream this answer, unless a partial file is to be resumed (then the
            # URL it came from is asked again with a Range header).
            first = None if (part.exists() and part.stat().st_size) else resp
            if first is None:
                resp.close()
            _stream_to_part(opener, resp.geturl(), part, remote, progress, retries, backoff_s, sleep,
                            first_response=first)
            return
        with resp:
            page = resp.read(2 << 20).decode("utf-8", "replace")
            page_url = resp.geturl()
        next_url = _gdrive_next_url(page, page_url, file_id, cookies)
        if next_url is None or next_url == url:
            break
        url = next_url
    raise _gdrive_manual(file_id, target, "it answered with a web page instead of the file")


def _local_source(url: str) -> Path | None:
    """The local path named by a ``file://`` URL or a plain path, else None."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path))
    if parts.scheme in ("", ) or (len(parts.scheme) == 1 and os.name == "nt"):  # relative/absolute path
        return Path(url).expanduser()
    return None


def _copy_local(src: Path, part: Path, remote: RemoteFile, progress: bool | None) -> None:
    if not src.is_file():
        raise FileNotFoundError(f"{remote.filename}: local source {src} does not exist")
    bar = _Bar(remote.filename, src.stat().st_size, 0, progress)
    try:
        with open(src, "rb") as fin, open(part, "wb") as fout:
            while True:
                block = fin.read(CHUNK)
                if not block:
                    break
                fout.write(block)
                bar.update(len(block))
    finally:
        bar.close()


def fetch(remote: RemoteFile, dest_dir: Path, progress: bool | None = None, *,
          retries: int | None = None, backoff_s: float | None = None,
          sleep: Callable[[float], None] = time.sleep) -> Path:
    """Download ``remote`` to ``dest_dir/remote.filename``, verify it, and return that path.

    * A file already there that verifies is returned without downloading. One that fails verification
      is deleted (with a note on stderr) and downloaded again.
    * Sources: ``remote.gdrive_id`` (Google Drive, following its confirmation page; base URL
      ``GDRIVE_URL``), else ``remote.url``: http(s), ``file://`` or a plain local path (copied).
    * The data goes to ``<filename>.part`` first. An existing ``.part`` is resumed with a
      ``Range: bytes=<size>-`` request (appended on a 206 answer, restarted on 200). Connection errors,
      HTTP 408/429/5xx and transfers shorter than the announced Content-Length (or ``remote.size``) are
      retried ``retries`` times (default RETRIES) after ``backoff_s * 2**k`` seconds (default BACKOFF_S).
      A transfer still short at the end raises IncompleteDownloadError and keeps the ``.part``.
    * Only a complete file that verifies (see verify) is renamed to its final name; one that does not
      is deleted and ChecksumError is raised.
    * progress: a one-line bar on stderr; None shows it only when stderr is a terminal.
    Raises ManualDownloadRequired when there is no source or Drive refuses to serve the file.
    """
    dest_dir = Path(dest_dir)
    target = dest_dir / remote.filename
    part = target.with_name(target.name + ".part")
    retries = RETRIES if retries is None else retries
    backoff_s = BACKOFF_S if backoff_s is None else backoff_s

    if target.is_file():
        try:
            verify(target, remote)
            return target
        except ChecksumError as e:
            print(f"{target} failed verification ({e}); deleting it and downloading it again",
                  file=sys.stderr)
            target.unlink()

    dest_dir.mkdir(parents=True, exist_ok=True)
    if remote.gdrive_id:
        _gdrive_download(remote, part, target, progress, retries, backoff_s, sleep)
    elif not remote.url:
        raise ManualDownloadRequired(
            f"{remote.filename} has no download source; get it by hand and save it as {target}",
            target=target)
    else:
        local = _local_source(remote.url)
        if local is not None:
            _copy_local(local, part, remote, progress)
        else:
            opener = urllib.request.build_opener(
                urllib.request.HTTPCookieProcessor(CookieJar()))
            _stream_to_part(opener, remote.url, part, remote, progress, retries, backoff_s, sleep)

    try:
        verify(part, remote)
    except ChecksumError as e:
        part.unlink(missing_ok=True)
        source = remote.url or (GDRIVE_VIEW_URL.format(id=remote.gdrive_id) if remote.gdrive_id else "")
        raise ChecksumError(
            f"{target.name} failed verification: {e.algorithm} expected {e.expected}, got {e.actual}. "
            f"The bad download was deleted; run again to retry, and if it fails again check the source "
            f"({source}) or the expected checksum.",
            path=target, algorithm=e.algorithm, expected=e.expected, actual=e.actual) from None
    os.replace(part, target)
    return target


# --------------------------------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------------------------------

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")
_FILTER_ERRORS: tuple[type[BaseException], ...] = (
    (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ())
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError,
                   *_LZMA_ERRORS)


def _corrupt(archive: Path, err: BaseException) -> CorruptArchiveError:
    return CorruptArchiveError(
        f"{archive} is truncated or corrupt ({type(err).__name__}: {err}); nothing was extracted. "
        f"Delete it and run again to download it again.")


def _inside(root: str, path: str) -> bool:
    return path == root or os.path.commonpath([root, path]) == root


def _check_name(archive: Path, root: str, name: str) -> str:
    """The normalised destination of member ``name`` under ``root``; raise if it escapes."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or PurePosixPath(posix).is_absolute() or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; nothing was extracted")
    dest = os.path.normpath(os.path.join(root, posix))
    if not _inside(root, dest):
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the destination; "
                                 f"nothing was extracted")
    return dest


def _check_tar(archive: Path, members: list[tarfile.TarInfo], root: str) -> None:
    for m in members:
        dest = _check_name(archive, root, m.name)
        if m.ischr() or m.isblk() or m.isfifo():
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device file or FIFO; "
                                     f"nothing was extracted")
        if m.issym() or m.islnk():
            link = m.linkname.replace("\\", "/")
            if link.startswith("/") or (len(link) > 1 and link[1] == ":"):
                raise UnsafeArchiveError(f"{archive}: link {m.name!r} points to the absolute path {link!r}; "
                                         f"nothing was extracted")
            base = os.path.dirname(dest) if m.issym() else root
            if not _inside(root, os.path.normpath(os.path.join(base, link))):
                raise UnsafeArchiveError(f"{archive}: link {m.name!r} -> {link!r} points outside the "
                                         f"destination; nothing was extracted")


def _check_tree(root: str) -> str | None:
    """The first path under ``root`` whose real location (links resolved) is outside it, else None."""
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if not _inside(real_root, os.path.realpath(p)):
                return p
            try:
                mode = os.lstat(p).st_mode
            except OSError:
                continue
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                return p
    return None


def _archive_kind(archive: Path) -> str:
    name = archive.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    if zipfile.is_zipfile(archive):
        return "zip"
    try:
        if tarfile.is_tarfile(archive):
            return "tar"
    except _ARCHIVE_ERRORS:
        pass
    raise ValueError(f"{archive}: unsupported archive type (expected .tar, .tar.gz/.tgz, .tar.bz2, "
                     f".tar.xz or .zip; use extract_rar for .rar)")


def _move_into_place(tmp: Path, dest_dir: Path) -> list[Path]:
    """Move the top-level entries of ``tmp`` into ``dest_dir`` (replacing same-named entries)."""
    out = []
    for entry in sorted(tmp.iterdir()):
        final = dest_dir / entry.name
        if final.is_symlink() or final.is_file():
            final.unlink()
        elif final.is_dir():
            shutil.rmtree(final)
        os.replace(entry, final)
        out.append(final)
    return out


def _new_tmp(archive: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{archive.name}.extract-", dir=dest_dir))


def safe_extract(archive: Path, dest_dir: Path) -> list[Path]:
    """Extract a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip archive into ``dest_dir``, safely.

    Every member is checked before anything is written: absolute paths, ``..`` components that leave
    ``dest_dir``, symbolic or hard links pointing outside it, and device files / FIFOs raise
    UnsafeArchiveError and nothing is extracted. Extraction goes to a temporary folder inside
    ``dest_dir`` whose top-level entries are then moved into place (entries of the same name already in
    ``dest_dir`` are replaced), so a truncated or corrupt archive (CorruptArchiveError, a RuntimeError
    suggesting to delete the archive and download it again) leaves no partial extraction.

    Returns the extracted top-level paths (files or folders directly in ``dest_dir``), sorted.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    kind = _archive_kind(archive)
    tmp = _new_tmp(archive, dest_dir)
    root = os.path.abspath(tmp)
    try:
        try:
            if kind == "tar":
                with tarfile.open(archive, "r:*") as tf:
                    members = tf.getmembers()  # reads the whole archive: truncation shows up here
                    _check_tar(archive, members, root)
                    if hasattr(tarfile, "data_filter"):
                        tf.extractall(root, members=members, filter="data")
                    else:  # pragma: no cover - Python without extraction filters
                        tf.extractall(root, members=members)
            else:
                with zipfile.ZipFile(archive) as zf:
                    infos = zf.infolist()
                    for info in infos:
                        _check_name(archive, root, info.filename)
                    for info in infos:
                        zf.extract(info, root)  # CRC checked while reading
        except UnsafeArchiveError:
            raise
        except _FILTER_ERRORS as e:  # tarfile's own 'data' filter objected (defence in depth)
            raise UnsafeArchiveError(f"{archive}: {e}; nothing was extracted") from e
        except _ARCHIVE_ERRORS as e:
            if isinstance(e, OSError) and not isinstance(e, (tarfile.TarError, EOFError)) \
                    and e.errno is not None:
                raise  # a real file-system error (disk full, permissions), not a bad archive
            raise _corrupt(archive, e) from e
        bad = _check_tree(root)
        if bad is not None:
            raise UnsafeArchiveError(f"{archive}: extracted path {bad} resolves outside the destination; "
                                     f"nothing was kept")
        return _move_into_place(tmp, dest_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rar_command(tool: str, exe: str, archive: Path, out: Path) -> list[str]:
    if tool == "bsdtar":
        return [exe, "-x", "-f", str(archive), "-C", str(out)]
    if tool == "unar":
        return [exe, "-q", "-f", "-D", "-o", str(out), str(archive)]
    if tool in ("7z", "7zz"):
        return [exe, "x", "-y", "-bd", f"-o{out}", str(archive)]
    return [exe, "x", "-o+", "-y", "-idq", str(archive), str(out) + os.sep]  # unrar


def extract_rar(archive: Path, dest_dir: Path) -> list[Path]:
    """Extract a RAR archive into ``dest_dir`` with an external, maintained tool; return top-level paths.

    Python's standard library cannot read RAR, so the first of these found on PATH is used:
    ``bsdtar`` (libarchive; reads RAR4 and RAR5 and refuses absolute / ``..`` paths by default),
    ``unar`` (The Unarchiver), ``7z`` / ``7zz`` (7-Zip, needs its RAR codec) and ``unrar`` (RARLAB,
    non-free). Without any of them MissingToolError says which packages provide them.

    As in safe_extract, extraction goes to a temporary folder inside ``dest_dir`` and its top-level
    entries are moved into place afterwards. Every extracted path is resolved first: if one lands
    outside (e.g. through a symbolic link) or is a device file, everything is deleted and
    UnsafeArchiveError is raised. A failing tool raises CorruptArchiveError (nothing kept).
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    found = [(tool, shutil.which(tool)) for tool in RAR_TOOLS]
    found = [(tool, exe) for tool, exe in found if exe]
    if not found:
        raise MissingToolError(
            f"cannot extract {archive}: no RAR extractor on PATH (looked for {', '.join(RAR_TOOLS)}). "
            "Install one, e.g. Debian/Ubuntu: `apt-get install libarchive-tools` (bsdtar) or "
            "`apt-get install unar` (or `7zip` with `7zip-rar`, or `unrar` from non-free); "
            "conda: `conda install -c conda-forge libarchive` (bsdtar) or `conda install -c conda-forge unar`.")
    tool, exe = found[0]
    tmp = _new_tmp(archive, dest_dir)
    try:
        proc = subprocess.run(_rar_command(tool, exe, archive.resolve(), tmp.resolve()),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise CorruptArchiveError(
                f"{tool} could not extract {archive} (exit {proc.returncode}: {' | '.join(detail)}); "
                f"nothing was kept. The archive may be truncated or corrupt: delete it and run again "
                f"to download it again.")
        bad = _check_tree(str(tmp))
        if bad is not None:
            raise UnsafeArchiveError(f"{archive}: extracted path {bad} resolves outside the destination "
                                     f"or is a device file; everything extracted was deleted")
        return _move_into_place(tmp, dest_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
