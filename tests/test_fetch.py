"""oecl_core.data.fetch: downloads (through gdown) verified before they take their name, the trust-on-first-use
record, and all-or-nothing extraction. Downloads run against a local HTTP server on 127.0.0.1."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from oecl_core.data import fetch as fetch_module
from oecl_core.data.fetch import (CHECKSUMS_FILE, PARTIAL, ChecksumError, CorruptArchiveError, DownloadError,
                                  ManualDownloadRequired, MissingToolError, RemoteFile, UnsafeArchiveError, extract,
                                  fetch, file_record, record_checksum)

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
BIG = bytes(range(256)) * 16384  # 4 MiB: gdown writes in chunks, so half of it reaches the disk before a cut


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a cut-short body ends with a close

    def log_message(self, *args):
        pass

    def do_GET(self):
        state = self.server.state
        state["hits"].append((self.path, self.headers.get("Range")))
        body = state["files"].get(self.path)
        if body is None:
            return self.send_error(404)
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        cut = self.path in state["cut"]
        state["cut"].discard(self.path)  # cut short once, then served whole
        self.wfile.write(rest[: len(rest) // 2] if cut else rest)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = {"files": {}, "hits": [], "cut": set()}
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_download_is_verified_and_then_reused(server, tmp_path):
    server.state["files"]["/a.bin"] = PAYLOAD
    remote = RemoteFile("a.bin", server.base + "/a.bin", md5=MD5)
    path = fetch(remote, tmp_path, progress=False)
    assert path == tmp_path / "a.bin" and path.read_bytes() == PAYLOAD
    assert not any((tmp_path / PARTIAL).iterdir())
    assert fetch(remote, tmp_path, progress=False) == path  # present and verified: no second request
    assert len(server.state["hits"]) == 1


def test_checksum_mismatch_deletes_the_download(server, tmp_path):
    server.state["files"]["/a.bin"] = PAYLOAD
    with pytest.raises(ChecksumError, match="does not match the published 0{32}"):
        fetch(RemoteFile("a.bin", server.base + "/a.bin", md5="0" * 32), tmp_path, progress=False)
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / PARTIAL / "a.bin").exists()


def test_trust_on_first_use_then_a_changed_file_is_refused(server, tmp_path):
    server.state["files"]["/b.bin"] = PAYLOAD
    remote = RemoteFile("b.bin", server.base + "/b.bin")  # no published checksum
    fetch(remote, tmp_path, progress=False)
    assert json.loads((tmp_path / CHECKSUMS_FILE).read_text()) == {"b.bin": SHA256}
    (tmp_path / "b.bin").unlink()
    server.state["files"]["/b.bin"] = PAYLOAD[::-1]  # the server now sends other bytes
    with pytest.raises(ChecksumError, match="recorded"):
        fetch(remote, tmp_path, progress=False)
    assert not (tmp_path / "b.bin").exists()


def test_a_cut_transfer_is_resumed(server, tmp_path):
    server.state["files"]["/c.bin"] = BIG
    server.state["cut"].add("/c.bin")
    path = fetch(RemoteFile("c.bin", server.base + "/c.bin", sha256=hashlib.sha256(BIG).hexdigest()), tmp_path,
                 progress=False, retries=2)
    assert path.read_bytes() == BIG
    ranges = [r for p, r in server.state["hits"] if p == "/c.bin"]
    assert ranges[0] is None and ranges[-1].startswith("bytes=") and ranges[-1] != "bytes=0-"  # the rest only


def test_a_failed_download_keeps_its_part_for_the_next_attempt(server, tmp_path):
    server.state["files"]["/d.bin"] = BIG
    server.state["cut"].add("/d.bin")
    remote = RemoteFile("d.bin", server.base + "/d.bin", md5=hashlib.md5(BIG).hexdigest())
    with pytest.raises(DownloadError, match="resumed by the next attempt"):
        fetch(remote, tmp_path, progress=False, retries=0)
    [part] = list((tmp_path / PARTIAL).glob("d.bin*.part"))
    kept = part.stat().st_size
    assert 0 < kept < len(BIG) and not (tmp_path / "d.bin").exists()
    assert fetch(remote, tmp_path, progress=False).read_bytes() == BIG
    assert [r for p, r in server.state["hits"] if p == "/d.bin"][-1] == f"bytes={kept}-"


def test_not_found_and_no_source(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        fetch(RemoteFile("e.bin", server.base + "/e.bin"), tmp_path, progress=False, retries=0)
    with pytest.raises(ManualDownloadRequired, match="no download source"):
        fetch(RemoteFile("f.bin"), tmp_path, progress=False)


def test_sources_are_tried_in_order_until_one_serves_the_published_file(server, tmp_path):
    server.state["files"].update({"/wrong.bin": PAYLOAD[::-1], "/right.bin": PAYLOAD})
    remote = RemoteFile("m.bin", server.base + "/gone.bin", sha256=SHA256,
                        mirrors=(server.base + "/wrong.bin", server.base + "/right.bin"))
    path = fetch(remote, tmp_path, progress=False, retries=0)
    assert path.read_bytes() == PAYLOAD
    assert [p for p, _ in server.state["hits"]] == ["/gone.bin", "/wrong.bin", "/right.bin"]  # 404, refused, taken
    assert not any((tmp_path / PARTIAL).iterdir())  # the refused download was deleted
    assert not (tmp_path / CHECKSUMS_FILE).exists()  # a published checksum: nothing recorded
    from oecl_core.data.prep import download_instructions

    how = download_instructions("M", "m", [remote])  # a person is shown every source, in the same order
    assert how.index("/gone.bin") < how.index("/wrong.bin") < how.index("/right.bin")


def test_every_source_failing_names_each_url_and_what_went_wrong(server, tmp_path):
    server.state["files"]["/wrong.bin"] = PAYLOAD[::-1]
    gone, wrong = server.base + "/gone.bin", server.base + "/wrong.bin"
    with pytest.raises(DownloadError) as err:
        fetch(RemoteFile("m.bin", gone, sha256=SHA256, mirrors=(wrong,)), tmp_path, progress=False, retries=0)
    text = str(err.value)
    assert f"1. {gone}: " in text and "404" in text.split(wrong)[0]
    assert f"2. {wrong}: " in text and "does not match the published" in text.split(wrong)[1]
    assert not (tmp_path / "m.bin").exists()
    with pytest.raises(ChecksumError, match="no source served the expected file"):  # only wrong bytes anywhere
        fetch(RemoteFile("m.bin", wrong, sha256=SHA256, mirrors=(wrong,)), tmp_path, progress=False, retries=0)


def test_mvtec_lists_live_links_only_and_says_how_to_get_it_when_they_all_fail(server, tmp_path, monkeypatch):
    from oecl_core.data import catalog
    from oecl_core.data.sets import SETS, mvtec

    [record] = SETS["mvtec"].sources
    assert "3830184030e49fe74747669442f0f282" not in " ".join(record.locations)  # the dead link (anomalib #3121)
    assert record.sha256 == "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"
    assert all(u.endswith("/mvtec_anomaly_detection.tar.xz") for u in record.locations)
    assert "rotates its share links" in SETS["mvtec"].instructions
    server.state["files"]["/other.tar.xz"] = PAYLOAD
    urls = (server.base + "/gone.tar.xz", server.base + "/other.tar.xz")
    local = RemoteFile(record.filename, urls[0], sha256=record.sha256, mirrors=urls[1:])
    monkeypatch.setitem(SETS, "mvtec", dataclasses.replace(SETS["mvtec"], sources=(local,)))
    with pytest.raises(ManualDownloadRequired) as err:
        catalog.prepare("mvtec", tmp_path / "data", progress=False)
    text = str(err.value)
    assert all(u in text for u in urls) and "data prepare mvtec --from" in text
    assert not (tmp_path / "data" / "mvtec").exists()
    assert mvtec.SOURCES == (record,)


def test_google_drive_files_go_through_gdown_by_id(tmp_path, monkeypatch):
    import gdown

    calls = []

    def fake_download(**kwargs):
        calls.append(kwargs)
        Path(kwargs["output"]).write_bytes(PAYLOAD)
        return kwargs["output"]

    monkeypatch.setattr(gdown, "download", fake_download)
    fetch(RemoteFile("g.zip", gdrive_id="1AbC", md5=MD5), tmp_path, progress=False)
    assert calls[0]["id"] == "1AbC" and "url" not in calls[0] and calls[0]["resume"] is True
    assert (tmp_path / "g.zip").read_bytes() == PAYLOAD


def test_file_record_and_record_checksum(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(PAYLOAD)
    rec = file_record(path, RemoteFile("x.bin", md5=MD5, sha256=SHA256))
    assert rec == {"md5": MD5, "sha256": SHA256, "bytes": len(PAYLOAD), "verified": "sha256"}
    assert file_record(path, check=False)["verified"] is False and not (tmp_path / CHECKSUMS_FILE).exists()
    assert record_checksum(path) == SHA256 == record_checksum(path)
    path.write_bytes(b"changed")
    with pytest.raises(ChecksumError):
        record_checksum(path)


# ------------------------------------------------------------------------------------------------ extraction

def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"ok") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_extract_tar_and_zip(tmp_path):
    arc = _tar(tmp_path / "a.tar.gz", [_file("top/x.txt", b"x"), _file("top/sub/y.txt", b"y"), _link("top/l", "x.txt")])
    out = extract(arc, tmp_path / "out")
    assert (out / "top/x.txt").read_bytes() == b"x" and (out / "top/sub/y.txt").read_bytes() == b"y"
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as zf:
        zf.writestr("z/1.txt", "1")
    assert (extract(tmp_path / "b.zip", tmp_path / "zout") / "z/1.txt").read_text() == "1"


@pytest.mark.parametrize("member", [
    _file("../evil.txt"), _file("/abs/evil.txt"), _link("top/l", "../../outside"), _link("top/l", "/etc/passwd"),
    _link("top/h", "../outside", tarfile.LNKTYPE)])
def test_unsafe_tar_members_are_refused_and_nothing_is_extracted(tmp_path, member):
    arc = _tar(tmp_path / "bad.tar", [_file("top/fine.txt"), member], mode="w")
    with pytest.raises(UnsafeArchiveError):
        extract(arc, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar"]  # neither out/ nor a temporary folder


def test_tar_device_file_is_refused(tmp_path):
    info = tarfile.TarInfo("top/dev")
    info.type = tarfile.CHRTYPE
    with pytest.raises(UnsafeArchiveError):
        extract(_tar(tmp_path / "d.tar", [(info, None)], mode="w"), tmp_path / "out")


def test_zip_traversal_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("ok.txt", "1")
        zf.writestr("../evil.txt", "2")
    with pytest.raises(UnsafeArchiveError, match="evil"):
        extract(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_truncated_archives_are_a_clear_error(tmp_path, kind):
    arc = tmp_path / f"big.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("data.bin", bytes(range(256)) * 4000)
    else:
        _tar(arc, [_file("data.bin", hashlib.sha256(b"seed").digest() * 20000)])
    arc.write_bytes(arc.read_bytes()[: arc.stat().st_size // 2])
    with pytest.raises(CorruptArchiveError, match="Delete it and fetch it again"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_rar_without_an_extractor_says_what_to_install(tmp_path, monkeypatch):
    import rarfile

    class NoTool:
        def __init__(self, *a, **k):
            raise rarfile.RarCannotExec("Cannot find working tool")

    monkeypatch.setattr(rarfile, "RarFile", NoTool)
    (tmp_path / "x.rar").write_bytes(b"Rar!\x1a\x07\x01\x00")
    with pytest.raises(MissingToolError, match="apt-get install unar"):
        extract(tmp_path / "x.rar", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsafe_rar_member_is_refused_before_extraction(tmp_path, monkeypatch):
    import rarfile

    class Info:
        filename = "../evil.txt"

        def is_symlink(self):
            return False

    class FakeRar:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def infolist(self):
            return [Info()]

        def extractall(self, path):
            raise AssertionError("must not extract an unsafe archive")

    monkeypatch.setattr(rarfile, "RarFile", FakeRar)
    (tmp_path / "x.rar").write_bytes(b"Rar!")
    with pytest.raises(UnsafeArchiveError):
        extract(tmp_path / "x.rar", tmp_path / "out")
    assert fetch_module  # the module under test is importable without rarfile's tools
