"""Download -> verify -> prepare -> benchmark split -> training, through the real code paths, with an official-format
CIFAR-10 archive served from a local HTTP server."""
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
from oecl_core.data.download import ChecksumError, RemoteFile
from oecl_core.runner import run_experiment
from test_prepare_classic import CIFAR10_NAMES, add_member, py2_pickle


def write_cifar10_archive(path, per_batch=4, per_test=10):
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tf:
        add_member(tf, "cifar-10-batches-py/batches.meta", py2_pickle({b"label_names": [n.encode() for n in CIFAR10_NAMES]}))
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
    monkeypatch.setitem(catalog.SOURCES, "cifar10", [RemoteFile("cifar-10-python.tar.gz", url, md5=md5)])
    # the preparer checks the published md5 of the real archive; our small archive has its own
    monkeypatch.setitem(catalog.PREPARERS, "cifar10", functools.partial(catalog.PREPARERS["cifar10"], verify=False))


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
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("cifar10 "))
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
