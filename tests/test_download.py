"""Tests for oecl_core.data.download: verified, resumable downloads and safe archive extraction.

Everything runs against a local HTTP server on 127.0.0.1 (no network access needed).
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import threading
import urllib.parse
import zipfile
from pathlib import Path

import pytest

from oecl_core.data import download as dl
from oecl_core.data.download import (
    ChecksumError,
    CorruptArchiveError,
    DownloadError,
    IncompleteDownloadError,
    ManualDownloadRequired,
    MissingToolError,
    RemoteFile,
    UnsafeArchiveError,
    extract_rar,
    fetch,
    md5_of,
    record_checksum,
    safe_extract,
    sha256_of,
    verify,
)

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
NO_WAIT = dict(retries=2, backoff_s=0.0)


# --------------------------------------------------------------------------------------------------
# A local HTTP server: Range requests, truncated answers, Google Drive's confirmation page
# --------------------------------------------------------------------------------------------------

class _State:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.hits: list[tuple[str, dict]] = []
        self.truncate: set[str] = set()     # paths answered with half their body (Range ignored)
        self.truncate_once: set[str] = set()  # the first answer is cut short, later ones are not
        self.fail_once: set[str] = set()    # the first request gets a 503
        self.gdrive: dict[str, bytes] = {}  # Drive ids served after the confirmation page
        self.gdrive_html_only: set[str] = set()
        self.lock = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a cut-short body ends with a close

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        st: _State = self.server.state
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        with st.lock:
            st.hits.append((self.path, dict(self.headers)))
        if parts.path == "/uc":
            return self._gdrive_start(query)
        if parts.path == "/usercontent/download":
            return self._gdrive_confirmed(query)
        path = parts.path
        if path in st.fail_once:
            st.fail_once.discard(path)
            return self.send_error(503)
        body = st.files.get(path)
        if body is None:
            return self.send_error(404)
        if path in st.truncate:
            return self._send(body, cut=True)
        cut = path in st.truncate_once
        st.truncate_once.discard(path)
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng[6:].endswith("-"):
            start = int(rng[6:-1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                return self._send(b"", status_sent=True)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            return self._send(body[start:], cut=cut, status_sent=True)
        self._send(body, cut=cut)

    def _send(self, body: bytes, cut: bool = False, status_sent: bool = False,
              ctype: str = "application/octet-stream"):
        if not status_sent:
            self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)
        self.wfile.flush()
        self.close_connection = True

    def _html(self, text: str):
        self._send(text.encode(), ctype="text/html; charset=utf-8")

    def _gdrive_start(self, query):
        st: _State = self.server.state
        file_id = query.get("id", "")
        if file_id in st.gdrive_html_only:
            return self._html("<html><body><p>Quota exceeded. Too many users have viewed or "
                              "downloaded this file recently.</p></body></html>")
        if file_id not in st.gdrive:
            return self.send_error(404)
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._html(
            "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
            f'<form id="download-form" action="{host}/usercontent/download" method="get">'
            '<input type="submit" id="uc-download-link" value="Download anyway"/>'
            f'<input type="hidden" name="id" value="{file_id}">'
            '<input type="hidden" name="export" value="download">'
            '<input type="hidden" name="confirm" value="t">'
            '<input type="hidden" name="uuid" value="1234-abcd"></form></body></html>')

    def _gdrive_confirmed(self, query):
        st: _State = self.server.state
        body = st.gdrive.get(query.get("id", ""))
        if body is None or query.get("confirm") != "t" or query.get("uuid") != "1234-abcd":
            return self._html("<html><body>not confirmed</body></html>")
        self._send(body)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = _State()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _hits(server, path: str) -> list[dict]:
    return [h for p, h in server.state.hits if urllib.parse.urlsplit(p).path == path]


# --------------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------------

def test_download_md5_and_reuse(server, tmp_path):
    server.state.files["/data.bin"] = PAYLOAD
    remote = RemoteFile("data.bin", url=server.base + "/data.bin", md5=MD5)
    out = fetch(remote, tmp_path / "dl", progress=False)
    assert out == tmp_path / "dl" / "data.bin"
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "dl" / "data.bin.part").exists()
    assert len(_hits(server, "/data.bin")) == 1
    # Already there and verified: no second request.
    assert fetch(remote, tmp_path / "dl", progress=False) == out
    assert len(_hits(server, "/data.bin")) == 1


def test_download_sha256_and_size(server, tmp_path):
    server.state.files["/d.bin"] = PAYLOAD
    remote = RemoteFile("d.bin", url=server.base + "/d.bin", sha256=SHA256, size=len(PAYLOAD))
    out = fetch(remote, tmp_path, progress=False)
    assert sha256_of(out) == SHA256 and md5_of(out) == MD5
    verify(out, remote)


def test_progress_bar_written_when_enabled(server, tmp_path, capsys):
    server.state.files["/p.bin"] = PAYLOAD
    fetch(RemoteFile("p.bin", url=server.base + "/p.bin", md5=MD5), tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "\r" in err and "MB/s" in err and "p.bin" in err
    fetch(RemoteFile("q.bin", url=server.base + "/p.bin", md5=MD5), tmp_path, progress=False)
    assert capsys.readouterr().err == ""


def test_checksum_mismatch_deletes_file(server, tmp_path):
    server.state.files["/bad.bin"] = PAYLOAD
    wrong = "0" * 32
    remote = RemoteFile("bad.bin", url=server.base + "/bad.bin", md5=wrong)
    with pytest.raises(ChecksumError) as info:
        fetch(remote, tmp_path, progress=False)
    msg = str(info.value)
    assert "bad.bin" in msg and wrong in msg and MD5 in msg and "deleted" in msg
    assert info.value.expected == wrong and info.value.actual == MD5
    assert list(tmp_path.iterdir()) == []


def test_existing_bad_file_is_replaced(server, tmp_path, capsys):
    server.state.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin").write_bytes(b"garbage")
    out = fetch(RemoteFile("f.bin", url=server.base + "/f.bin", md5=MD5), tmp_path, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert "failed verification" in capsys.readouterr().err


def test_resume_partial_file(server, tmp_path):
    server.state.files["/big.bin"] = PAYLOAD
    half = len(PAYLOAD) // 2
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:half])
    out = fetch(RemoteFile("big.bin", url=server.base + "/big.bin", md5=MD5), tmp_path, progress=False)
    assert out.read_bytes() == PAYLOAD
    (headers,) = _hits(server, "/big.bin")
    assert headers.get("Range") == f"bytes={half}-"


def test_complete_partial_file_is_not_downloaded_again(server, tmp_path):
    server.state.files["/c.bin"] = PAYLOAD
    (tmp_path / "c.bin.part").write_bytes(PAYLOAD)  # e.g. interrupted between download and rename
    out = fetch(RemoteFile("c.bin", url=server.base + "/c.bin", md5=MD5), tmp_path, progress=False)
    assert out.read_bytes() == PAYLOAD and not (tmp_path / "c.bin.part").exists()
    assert len(_hits(server, "/c.bin")) == 1


def test_oversized_partial_file_restarts(server, tmp_path):
    server.state.files["/o.bin"] = PAYLOAD
    (tmp_path / "o.bin.part").write_bytes(b"y" * (len(PAYLOAD) + 10))
    out = fetch(RemoteFile("o.bin", url=server.base + "/o.bin", md5=MD5), tmp_path, progress=False)
    assert out.read_bytes() == PAYLOAD
    hits = _hits(server, "/o.bin")
    assert len(hits) == 2 and "Range" not in hits[1]


def test_partial_restarted_when_server_ignores_range(server, tmp_path, monkeypatch):
    server.state.files["/r.bin"] = PAYLOAD
    (tmp_path / "r.bin.part").write_bytes(b"x" * 1000)  # not even a prefix: a 200 answer overwrites it

    real_open = dl._open
    monkeypatch.setattr(dl, "_open", lambda opener, url, offset=0, timeout=5: real_open(opener, url, 0))
    out = fetch(RemoteFile("r.bin", url=server.base + "/r.bin", md5=MD5), tmp_path, progress=False)
    assert out.read_bytes() == PAYLOAD


def test_truncated_transfer_is_retried_with_resume(server, tmp_path):
    server.state.files["/t.bin"] = PAYLOAD
    server.state.truncate_once.add("/t.bin")
    out = fetch(RemoteFile("t.bin", url=server.base + "/t.bin", md5=MD5), tmp_path, **NO_WAIT,
                progress=False)
    assert out.read_bytes() == PAYLOAD
    hits = _hits(server, "/t.bin")
    assert len(hits) == 2 and hits[1].get("Range") == f"bytes={len(PAYLOAD) // 2}-"


def test_truncated_transfer_fails_without_final_file(server, tmp_path):
    server.state.files["/t.bin"] = PAYLOAD
    server.state.truncate.add("/t.bin")
    sleeps = []
    with pytest.raises(IncompleteDownloadError) as info:
        fetch(RemoteFile("t.bin", url=server.base + "/t.bin"), tmp_path, progress=False,
              retries=2, backoff_s=0.5, sleep=sleeps.append)
    assert "t.bin" in str(info.value) and "resume" in str(info.value)
    assert sleeps == [0.5, 1.0]  # bounded, doubling backoff, injectable sleep
    assert not (tmp_path / "t.bin").exists()
    assert (tmp_path / "t.bin.part").stat().st_size == len(PAYLOAD) // 2
    assert not (tmp_path / dl.CHECKSUMS_FILE).exists()  # nothing trusted from a partial file


def test_transient_server_error_is_retried(server, tmp_path):
    server.state.files["/e.bin"] = PAYLOAD
    server.state.fail_once.add("/e.bin")
    out = fetch(RemoteFile("e.bin", url=server.base + "/e.bin", md5=MD5), tmp_path, **NO_WAIT,
                progress=False)
    assert out.read_bytes() == PAYLOAD and len(_hits(server, "/e.bin")) == 2


def test_not_found_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        fetch(RemoteFile("x.bin", url=server.base + "/missing.bin"), tmp_path, **NO_WAIT, progress=False)
    assert len(_hits(server, "/missing.bin")) == 1


def test_trust_on_first_use(server, tmp_path):
    server.state.files["/tofu.bin"] = PAYLOAD
    remote = RemoteFile("tofu.bin", url=server.base + "/tofu.bin")
    out = fetch(remote, tmp_path, progress=False)
    record = json.loads((tmp_path / dl.CHECKSUMS_FILE).read_text())
    assert record == {"tofu.bin": SHA256}
    assert fetch(remote, tmp_path, progress=False) == out  # verified against the record, no download
    assert len(_hits(server, "/tofu.bin")) == 1
    # The source changes: a fresh download no longer matches what was recorded.
    out.unlink()
    server.state.files["/tofu.bin"] = PAYLOAD[::-1]
    with pytest.raises(ChecksumError) as info:
        fetch(remote, tmp_path, progress=False)
    assert SHA256 in str(info.value) and hashlib.sha256(PAYLOAD[::-1]).hexdigest() in str(info.value)
    assert not out.exists() and not (tmp_path / "tofu.bin.part").exists()


def test_record_checksum_direct(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"hello")
    assert record_checksum(f) == hashlib.sha256(b"hello").hexdigest()
    f.write_bytes(b"changed")
    with pytest.raises(ChecksumError):
        record_checksum(f)


def test_local_sources(tmp_path):
    src = tmp_path / "mirror" / "m.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    out = fetch(RemoteFile("m.bin", url=src.as_uri(), md5=MD5), tmp_path / "a", progress=False)
    assert out.read_bytes() == PAYLOAD
    out = fetch(RemoteFile("m.bin", url=str(src), sha256=SHA256), tmp_path / "b", progress=False)
    assert out.read_bytes() == PAYLOAD
    with pytest.raises(FileNotFoundError):
        fetch(RemoteFile("n.bin", url=str(tmp_path / "nope.bin")), tmp_path / "c", progress=False)


def test_no_source_is_manual(tmp_path):
    with pytest.raises(ManualDownloadRequired) as info:
        fetch(RemoteFile("licensed.tar"), tmp_path, progress=False)
    assert str(tmp_path / "licensed.tar") in str(info.value)


def test_gdrive_confirm_flow(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "GDRIVE_URL", server.base + "/uc")
    server.state.gdrive["FILEID123"] = PAYLOAD
    remote = RemoteFile("drive.bin", gdrive_id="FILEID123", md5=MD5)
    out = fetch(remote, tmp_path, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert len(_hits(server, "/uc")) == 1 and len(_hits(server, "/usercontent/download")) == 1


def test_gdrive_confirm_flow_resumes(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "GDRIVE_URL", server.base + "/uc")
    server.state.gdrive["FILEID123"] = PAYLOAD
    (tmp_path / "drive.bin.part").write_bytes(PAYLOAD[:1000])
    out = fetch(RemoteFile("drive.bin", gdrive_id="FILEID123", md5=MD5), tmp_path, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert _hits(server, "/usercontent/download")[-1].get("Range") == "bytes=1000-"


def test_gdrive_html_only_requires_manual_download(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "GDRIVE_URL", server.base + "/uc")
    server.state.gdrive_html_only.add("QUOTA42")
    with pytest.raises(ManualDownloadRequired) as info:
        fetch(RemoteFile("big.zip", gdrive_id="QUOTA42"), tmp_path, progress=False)
    msg = str(info.value)
    assert "QUOTA42" in msg and "https://drive.google.com/file/d/QUOTA42/view" in msg
    assert str(tmp_path / "big.zip") in msg
    assert info.value.target == tmp_path / "big.zip"
    assert not (tmp_path / "big.zip").exists() and not (tmp_path / "big.zip.part").exists()


# --------------------------------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------------------------------

def _tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _file(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), f"content of {name}".encode()


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_safe_extract_tar_gz_and_zip(tmp_path):
    arc = _tar(tmp_path / "a.tar.gz", [_file("top/x.txt"), _file("top/sub/y.txt"), _file("z.txt")], "w:gz")
    dest = tmp_path / "out"
    got = safe_extract(arc, dest)
    assert got == [dest / "top", dest / "z.txt"]
    assert (dest / "top" / "sub" / "y.txt").read_text() == "content of top/sub/y.txt"
    assert sorted(p.name for p in dest.iterdir()) == ["top", "z.txt"]  # no temporary folder left

    zpath = tmp_path / "b.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("folder/a.txt", "A")
        zf.writestr("folder/b/c.txt", "C")
    got = safe_extract(zpath, tmp_path / "zout")
    assert got == [tmp_path / "zout" / "folder"]
    assert (tmp_path / "zout" / "folder" / "b" / "c.txt").read_text() == "C"


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.bz2", "w:bz2"), (".tar.xz", "w:xz")])
def test_safe_extract_other_tar_flavours(tmp_path, suffix, mode):
    arc = _tar(tmp_path / f"a{suffix}", [_file("d/f.txt")], mode)
    assert safe_extract(arc, tmp_path / "o") == [tmp_path / "o" / "d"]


def _assert_rejected(arc: Path, tmp_path: Path):
    dest = tmp_path / "dest"
    before = _snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError):
        safe_extract(arc, dest)
    after = _snapshot(tmp_path)
    assert after - before <= {"dest"}  # nothing written anywhere (an empty dest folder at most)
    assert not dest.exists() or list(dest.iterdir()) == []


def test_tar_parent_traversal_rejected(tmp_path):
    arc = _tar(tmp_path / "evil.tar", [_file("ok.txt"), _file("../evil.txt")])
    _assert_rejected(arc, tmp_path)
    assert not (tmp_path / "evil.txt").exists()


def test_tar_absolute_path_rejected(tmp_path):
    target = tmp_path / "abs_target.txt"
    arc = _tar(tmp_path / "abs.tar.gz", [_file("ok.txt"), _file(str(target))], "w:gz")
    _assert_rejected(arc, tmp_path)
    assert not target.exists()


def test_zip_parent_traversal_rejected(tmp_path):
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../evil.txt", "bad")
    _assert_rejected(zpath, tmp_path)
    assert not (tmp_path / "evil.txt").exists()


def test_tar_symlink_outside_rejected(tmp_path):
    link = tarfile.TarInfo("etc_link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc"
    _assert_rejected(_tar(tmp_path / "sym.tar", [_file("ok.txt"), (link, None)]), tmp_path)
    rel = tarfile.TarInfo("a/up")
    rel.type, rel.linkname = tarfile.SYMTYPE, "../../outside"
    (tmp_path / "sym.tar").unlink()
    _assert_rejected(_tar(tmp_path / "sym2.tar", [(rel, None)]), tmp_path)
    hard = tarfile.TarInfo("h")
    hard.type, hard.linkname = tarfile.LNKTYPE, "../secret"
    (tmp_path / "sym2.tar").unlink()
    _assert_rejected(_tar(tmp_path / "hard.tar", [(hard, None)]), tmp_path)


def test_tar_device_file_rejected(tmp_path):
    dev = tarfile.TarInfo("null")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
    _assert_rejected(_tar(tmp_path / "dev.tar", [(dev, None)]), tmp_path)


def test_tar_symlink_inside_allowed(tmp_path):
    link = tarfile.TarInfo("d/link")
    link.type, link.linkname = tarfile.SYMTYPE, "f.txt"
    got = safe_extract(_tar(tmp_path / "ok.tar", [_file("d/f.txt"), (link, None)]), tmp_path / "o")
    assert got == [tmp_path / "o" / "d"]
    assert (tmp_path / "o" / "d" / "link").read_text() == "content of d/f.txt"


def test_truncated_tar_gz_raises_clear_error(tmp_path):
    rng = __import__("random").Random(0)
    entries = [(tarfile.TarInfo(f"data/f{i}.bin"), rng.randbytes(20_000)) for i in range(5)]
    arc = _tar(tmp_path / "cut.tar.gz", entries, "w:gz")
    data = arc.read_bytes()
    arc.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "out"
    with pytest.raises(CorruptArchiveError) as info:
        safe_extract(arc, dest)
    assert isinstance(info.value, RuntimeError)
    msg = str(info.value)
    assert str(arc) in msg and "elete" in msg
    assert not dest.exists() or list(dest.iterdir()) == []


def test_truncated_zip_raises_clear_error(tmp_path):
    zpath = tmp_path / "cut.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", os.urandom(50_000))
    zpath.write_bytes(zpath.read_bytes()[:20_000])
    with pytest.raises(CorruptArchiveError, match="cut.zip"):
        safe_extract(zpath, tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_unsupported_archive(tmp_path):
    f = tmp_path / "thing.bin"
    f.write_bytes(b"not an archive at all")
    with pytest.raises(ValueError, match="unsupported"):
        safe_extract(f, tmp_path / "o")


# --------------------------------------------------------------------------------------------------
# RAR (external tools)
# --------------------------------------------------------------------------------------------------

def test_extract_rar_without_tool(tmp_path, monkeypatch):
    arc = tmp_path / "Train.rar"
    arc.write_bytes(b"Rar!\x1a\x07\x00")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(MissingToolError) as info:
        extract_rar(arc, tmp_path / "out")
    msg = str(info.value)
    assert "libarchive-tools" in msg and "bsdtar" in msg and "unrar" in msg
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def _fake_bsdtar(tmp_path: Path, script_body: str) -> str:
    """A stand-in 'bsdtar' (python script) that writes into its -C folder."""
    script = tmp_path / "fake_bsdtar.py"
    script.write_text(
        "import os, sys\n"
        "out = sys.argv[sys.argv.index('-C') + 1]\n" + script_body)
    exe = tmp_path / "bsdtar"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


@pytest.mark.skipif(os.name != "posix", reason="fake tool is a shell script")
def test_extract_rar_with_fake_tool(tmp_path, monkeypatch):
    arc = tmp_path / "Train.rar"
    arc.write_bytes(b"Rar!\x1a\x07\x00")
    exe = _fake_bsdtar(tmp_path, "os.makedirs(os.path.join(out, 'Train', 'Basophil'))\n"
                                 "open(os.path.join(out, 'Train', 'Basophil', 'a.jpg'), 'w').write('x')\n")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: exe if name == "bsdtar" else None)
    got = extract_rar(arc, tmp_path / "out")
    assert got == [tmp_path / "out" / "Train"]
    assert (tmp_path / "out" / "Train" / "Basophil" / "a.jpg").read_text() == "x"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["Train"]


@pytest.mark.skipif(os.name != "posix", reason="fake tool is a shell script")
def test_extract_rar_escaping_link_deleted(tmp_path, monkeypatch):
    arc = tmp_path / "Evil.rar"
    arc.write_bytes(b"Rar!\x1a\x07\x00")
    exe = _fake_bsdtar(tmp_path, "open(os.path.join(out, 'fine.txt'), 'w').write('x')\n"
                                 "os.symlink('/etc', os.path.join(out, 'etc'))\n")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: exe if name == "bsdtar" else None)
    with pytest.raises(UnsafeArchiveError):
        extract_rar(arc, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="fake tool is a shell script")
def test_extract_rar_tool_failure(tmp_path, monkeypatch):
    arc = tmp_path / "Bad.rar"
    arc.write_bytes(b"junk")
    exe = _fake_bsdtar(tmp_path, "open(os.path.join(out, 'partial.txt'), 'w').write('x')\n"
                                 "sys.stderr.write('Truncated RAR file data\\n'); sys.exit(1)\n")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: exe if name == "bsdtar" else None)
    with pytest.raises(CorruptArchiveError, match="Truncated RAR"):
        extract_rar(arc, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_extract_rar_real_tool_present():
    tools = [t for t in dl.RAR_TOOLS if shutil.which(t)]
    if not tools:
        pytest.skip("no RAR extractor (bsdtar, unar, 7z, unrar) on PATH")
    assert dl._rar_command(tools[0], "x", Path("a.rar"), Path("o"))[0] == "x"
