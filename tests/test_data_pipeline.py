"""Download -> verify -> prepare -> benchmark split -> training, through the real code paths, with an official-format
CIFAR-10 archive served from a local HTTP server."""
import dataclasses
import functools
import hashlib
import http.server
import tarfile
import threading

import numpy as np
import pytest

from oecl_core.cli import main
from oecl_core.config import resolve_config
from oecl_core.data import build_split, catalog
from oecl_core.data.fetch import ChecksumError, ManualDownloadRequired, RemoteFile
from oecl_core.data.sets import SETS, cifar
from oecl_core.runner import run_experiment
from test_sets_32px import CIFAR10_NAMES, add_member, py2_pickle


def write_cifar10_archive(path, per_batch=4, per_test=10):
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tf:
        add_member(tf, "cifar-10-batches-py/batches.meta",
                   py2_pickle({b"label_names": [n.encode() for n in CIFAR10_NAMES]}))
        for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", per_test)]:
            labels = [i % 10 for i in range(n)]
            images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            add_member(tf, f"cifar-10-batches-py/{name}", py2_pickle({b"labels": labels, b"data": images}))


@pytest.fixture
def served(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    write_cifar10_archive(site / "cifar-10-python.tar.gz")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def point_cifar10_at(monkeypatch, url, md5):
    # the preparer checks the published md5 of the real archive; our small archive has its own
    monkeypatch.setitem(SETS, "cifar10", dataclasses.replace(
        SETS["cifar10"], sources=(RemoteFile("cifar-10-python.tar.gz", url, md5=md5),),
        prepare=functools.partial(cifar.prepare_cifar10, verify=False)))


def test_prepare_from_a_server_then_train(served, tmp_path, monkeypatch, capsys):
    site, base = served
    md5 = hashlib.md5((site / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    point_cifar10_at(monkeypatch, f"{base}/cifar-10-python.tar.gz", md5)
    root = tmp_path / "data"
    monkeypatch.setenv("OECL_DATA", str(root))

    assert main(["data", "prepare", "cifar10"]) == 0
    capsys.readouterr()
    manifest = catalog.prepare("cifar10", root)  # already prepared: read back, not redone
    assert manifest["splits"]["train"]["count"] == 20 and manifest["splits"]["test"]["count"] == 10
    assert manifest["class_names"] == list(CIFAR10_NAMES)
    main(["data", "status"])
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("cifar10 "))
    assert "prepared, verified" in line

    split = build_split("cifar10", "one_vs_rest", 3, oe="none")
    assert len(split.train) == 5 and int(split.test_is_normal.sum()) == 1 and split.train.shape[1:] == (3, 32, 32)
    cfg = resolve_config("smoke", "cifar10", "oecl", cls=3, oe="svhn", epochs=1, width=0.0625, n_aug=2, device="cpu")
    with pytest.raises(FileNotFoundError, match="data prepare svhn"):
        run_experiment(cfg, tmp_path / "run", progress=False)
    cfg = resolve_config("smoke", "cifar10", "simclr", cls=3, epochs=1, width=0.0625, n_aug=2, device="cpu")
    metrics = run_experiment(cfg, tmp_path / "run2", progress=False)
    assert set(metrics["auroc"]) == {"s_l2", "s_l2_ens", "s_mu", "sim_s_mu"}


def test_a_corrupted_download_is_deleted_and_nothing_is_prepared(served, tmp_path, monkeypatch):
    site, base = served
    point_cifar10_at(monkeypatch, f"{base}/cifar-10-python.tar.gz", "0" * 32)
    with pytest.raises(ChecksumError):
        catalog.prepare("cifar10", tmp_path / "data")
    assert not (tmp_path / "data" / "raw" / "cifar10" / "cifar-10-python.tar.gz").exists()
    assert not (tmp_path / "data" / "cifar10").exists()


def test_unprepared_data_set_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OECL_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="data prepare raabin"):
        build_split("raabin", "one_vs_rest", 0)
    # planning still knows the classes of an unprepared data set
    assert resolve_config("paper", "raabin", "oecl", cls=4).cls == 4
    with pytest.raises(ValueError, match="4=neutrophil"):
        resolve_config("paper", "raabin", "oecl", cls=5)


UNREACHABLE = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # nothing listens on port 9: any download would fail


@pytest.mark.parametrize("give", ["archive", "folder"])
def test_prepare_from_a_local_copy_needs_no_network(tmp_path, monkeypatch, give):
    mine = tmp_path / "mine"
    mine.mkdir()
    name = "my-cifar.tar.gz" if give == "archive" else "cifar-10-python.tar.gz"
    write_cifar10_archive(mine / name)
    point_cifar10_at(monkeypatch, UNREACHABLE, hashlib.md5((mine / name).read_bytes()).hexdigest())
    root = tmp_path / "data"
    source = mine / name if give == "archive" else mine
    assert main(["data", "prepare", "cifar10", "--root", str(root), "--from", str(source)]) == 0
    link = root / "raw" / "cifar10" / "cifar-10-python.tar.gz"
    assert link.is_symlink() and link.resolve() == (mine / name).resolve()
    assert catalog.prepare("cifar10", root)["splits"]["train"]["count"] == 20


def test_a_local_copy_is_checked_against_the_published_checksum(tmp_path, monkeypatch):
    write_cifar10_archive(tmp_path / "cifar-10-python.tar.gz")
    point_cifar10_at(monkeypatch, UNREACHABLE, "0" * 32)
    with pytest.raises(ChecksumError, match="does not match the published"):
        catalog.prepare("cifar10", tmp_path / "data", local=tmp_path / "cifar-10-python.tar.gz")
    assert (tmp_path / "cifar-10-python.tar.gz").exists()  # the user's file is never deleted
    assert not (tmp_path / "data" / "cifar10").exists()


def test_prepare_from_an_extracted_folder(tmp_path):
    from test_sets_224px import jpeg

    mine = tmp_path / "Raabin"
    for split in ("Train", "TestA"):
        for c in ("Basophil", "Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil"):
            jpeg(mine / split / c / "1.jpg")
    manifest = catalog.prepare("raabin", tmp_path / "data", local=mine, size=16, workers=1)
    assert manifest["splits"]["train"]["count"] == 5 and manifest["splits"]["test"]["count"] == 5
    assert (tmp_path / "data" / "raw" / "raabin" / "from").resolve() == mine.resolve()
    assert not (tmp_path / "data" / "raw" / "raabin" / "Train.rar").exists()  # nothing was downloaded


def test_prepare_from_a_missing_path_or_the_wrong_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        catalog.prepare("svhn", tmp_path / "data", local=tmp_path / "nowhere")
    (tmp_path / "x.mat").write_bytes(b"")
    with pytest.raises(ValueError, match="train_32x32.mat, test_32x32.mat"):
        catalog.prepare("svhn", tmp_path / "data", local=tmp_path / "x.mat")


def test_a_missing_manual_set_stops_with_its_instructions(tmp_path):
    with pytest.raises(ManualDownloadRequired, match="image-net.org") as err:
        catalog.prepare("imagenet1k", tmp_path / "data")
    assert "--from PATH" in str(err.value)
    assert not (tmp_path / "data" / "imagenet1k").exists()


def test_status_lists_every_data_set(tmp_path, capsys):
    assert main(["data", "status", "--root", str(tmp_path)]) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines()[3:]}
    assert names == set(SETS) and {"mvtec", "dtd224", "imagenet1k", "cifar10"} <= names
