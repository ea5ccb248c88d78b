"""The 32-px data sets (one file each in oecl_core/data/sets/) on small files built in each official format."""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from oecl_core.data.core import read_image
from oecl_core.data.fetch import ChecksumError, ManualDownloadRequired, RemoteFile, UnsafeArchiveError
from oecl_core.data.sets import SETS, cifar, dtd, svhn, tiny
from oecl_core.data.prepared import load_prepared, read_manifest

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ------------------------------------------------------------------------------------------- builders


def py2_pickle(obj) -> bytes:
    """A pickle as the CIFAR files hold it: protocol 2, numpy arrays via numpy.core.multiarray (numpy 1.x)."""
    return pickle.dumps(obj, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def add_member(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def random_images(rng, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def red_top_left(images: np.ndarray) -> np.ndarray:
    """Image 0: black but a red pixel at (row 0, col 0) and a green one at (row 0, col 5); image 1: a red
    horizontal gradient (value 8 * column) that tells rows from columns."""
    images[0] = 0
    images[0, 0, 0, 0] = 255
    images[0, 1, 0, 5] = 255
    images[1] = 0
    images[1, 0] = (np.arange(32, dtype=np.uint8) * 8)[None, :]
    return images


def check_pattern(prepared: np.ndarray) -> None:
    assert prepared[0, :, 0, 0].tolist() == [255, 0, 0]
    assert prepared[0, :, 0, 5].tolist() == [0, 255, 0]
    assert prepared[0, :, 5, 0].tolist() == [0, 0, 0]
    assert int(prepared[0].sum()) == 2 * 255
    assert (prepared[1, 0] == (np.arange(32) * 8)[None, :]).all()  # constant down each column
    assert not prepared[1, 1:].any()


@pytest.fixture
def cifar10_raw(tmp_path):
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw"
    raw.mkdir()
    batches = {}
    with tarfile.open(raw / "cifar-10-python.tar.gz", "w:gz") as tf:
        add_member(tf, "cifar-10-batches-py/batches.meta",
                   py2_pickle({b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_vis": 3072}))
        for name, n in [(f"data_batch_{i}", 3) for i in range(1, 6)] + [("test_batch", 4)]:
            images = random_images(rng, n)
            if name == "data_batch_1":
                red_top_left(images)
            labels = [int(x) for x in rng.integers(0, 10, n)]  # a list, as in the real files
            batches[name] = (images, labels)
            add_member(tf, f"cifar-10-batches-py/{name}",
                       py2_pickle({b"batch_label": name.encode(), b"labels": labels,
                                   b"data": images.reshape(n, 3072), b"filenames": [b"x.png"] * n}))
        add_member(tf, "cifar-10-batches-py/readme.html", b"<html></html>")
    return raw, batches


def write_cifar100(raw: Path, rng, str_keys: bool = True):
    """CIFAR-100's archive; with str keys, as a Python 2 pickle reads under encoding='latin1'."""
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    fine_names = [f"fine{i:02d}" for i in range(100)]
    coarse_names = [f"coarse{i:02d}" for i in range(20)]
    splits = {}
    with tarfile.open(raw / "cifar-100-python.tar.gz", "w:gz") as tf:
        add_member(tf, "cifar-100-python/meta",
                   py2_pickle({key("fine_label_names"): fine_names, key("coarse_label_names"): coarse_names}))
        for split, n in (("train", 6), ("test", 3)):
            images = random_images(rng, n)
            fine = [int(x) for x in rng.integers(0, 100, n)]
            coarse = [f // 5 for f in fine]
            splits[split] = (images, fine)
            add_member(tf, f"cifar-100-python/{split}",
                       py2_pickle({key("data"): images.reshape(n, 3072), key("fine_labels"): fine,
                                   key("coarse_labels"): coarse}))
    return splits, fine_names


def jpeg_bytes(array_hwc: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array_hwc).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


DTD_CLASSES = ["banded", "blotchy", "zigzagged"]


@pytest.fixture
def dtd_raw(tmp_path):
    """A DTD archive: 3 classes x 4 images (2 train, 1 val, 1 test), plus a corrupt listed image, a listed
    image absent from the archive, and an unlisted one."""
    raw = tmp_path / "raw"
    raw.mkdir()
    lists = {"train": [], "val": [], "test": []}
    images = {}
    with tarfile.open(raw / dtd.ARCHIVE, "w:gz") as tf:
        for ci, cls in enumerate(DTD_CLASSES):
            for i in range(4):
                img = np.zeros((48, 64, 3), np.uint8)  # 64 wide, 48 high
                img[:, :32, 0] = 255  # left half red
                img[:, 32:, 2] = 255  # right half blue
                img[:, :, 1] = 40 * ci + 10 * i  # tells the images apart
                rel = f"{cls}/{cls}_{i:04d}.jpg"
                images[rel] = img
                add_member(tf, f"dtd/images/{rel}", jpeg_bytes(img))
                lists[["train", "train", "val", "test"][i]].append(rel)
        add_member(tf, "dtd/images/banded/banded_bad.jpg", b"this is not a JPEG")
        lists["train"].append("banded/banded_bad.jpg")
        lists["test"].append("zigzagged/zigzagged_gone.jpg")
        add_member(tf, "dtd/images/blotchy/blotchy_unlisted.jpg", jpeg_bytes(np.zeros((40, 40, 3), np.uint8)))
        for part, rels in lists.items():
            add_member(tf, f"dtd/labels/{part}1.txt", ("\n".join(rels) + "\n").encode())
        add_member(tf, "dtd/labels/train2.txt", b"banded/banded_0000.jpg\n")
    return raw, lists, images


# ------------------------------------------------------------------------------------------- contract


def test_contract_of_the_32px_entries():
    for name in ("cifar10", "cifar100", "svhn", "dtd", "tiny300k"):
        for f in SETS[name].sources:
            assert f.url.startswith("http") and len(f.md5) == 32
            assert f.filename in SETS[name].instructions
    assert SETS["tiny80m"].sources == ()
    assert SETS["cifar10"].sources[0].md5 == "c58f30108f718f92721af3b95e74349a"
    how = SETS["tiny80m"].instructions
    assert "tiny_images.bin" in how and "80mn_cifar_idxs.txt" in how and "archive.org" in how


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn", "dtd", "tiny300k", "tiny80m"])
def test_missing_input_is_a_clear_error_and_writes_nothing(tmp_path, name):
    raw = tmp_path / "raw"
    raw.mkdir()
    out = tmp_path / "prepared" / name
    with pytest.raises(ManualDownloadRequired) as err:
        SETS[name].prepare(raw, out)
    assert isinstance(err.value, FileNotFoundError)
    assert SETS[name].instructions in str(err.value)
    assert not out.exists() and not (tmp_path / "prepared").exists()


def test_tiny80m_missing_index_file_only(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / tiny.TINY80M_BIN).write_bytes(bytes(3072 * 4))
    with pytest.raises(ManualDownloadRequired, match="80mn_cifar_idxs.txt"):
        tiny.prepare_tiny80m(raw, tmp_path / "out", count=2)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- CIFAR


def test_cifar10(cifar10_raw, tmp_path):
    raw, batches = cifar10_raw
    out = tmp_path / "cifar10"
    manifest = cifar.prepare_cifar10(raw, out, verify=False)
    train, test = load_prepared(out, "train"), load_prepared(out, "test")
    expected_train = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    expected_labels = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert train.images.numpy().tolist() == expected_train.tolist()
    assert train.labels.tolist() == expected_labels
    assert test.images.numpy().tolist() == batches["test_batch"][0].tolist()
    assert train.class_names == CIFAR10_NAMES
    check_pattern(train.images.numpy())
    assert manifest == read_manifest(out)
    assert manifest["splits"]["train"]["count"] == 15 and manifest["splits"]["test"]["count"] == 4
    assert manifest["splits"]["train"]["image_size"] == [32, 32]
    per_class = manifest["splits"]["train"]["per_class"]
    assert per_class == {CIFAR10_NAMES[c]: expected_labels.count(c) for c in set(expected_labels)}
    src = manifest["sources"]["cifar-10-python.tar.gz"]
    assert src["sha256"] == sha256(raw / "cifar-10-python.tar.gz") and src["verified"] is False


def test_cifar10_checks_the_published_md5(cifar10_raw, tmp_path):
    raw, _ = cifar10_raw
    with pytest.raises(ChecksumError, match="c58f30108f718f92721af3b95e74349a"):
        cifar.prepare_cifar10(raw, tmp_path / "cifar10")  # verify=True by default; a home-made archive fails
    assert not (tmp_path / "cifar10").exists()


def test_cifar10_records_a_verified_md5(cifar10_raw, tmp_path, monkeypatch):
    raw, _ = cifar10_raw
    archive = raw / "cifar-10-python.tar.gz"
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(cifar, "CIFAR10_SOURCES", (RemoteFile(archive.name, "https://example.org/x", md5=md5),))
    manifest = cifar.prepare_cifar10(raw, tmp_path / "cifar10")
    assert manifest["sources"][archive.name] == {"md5": md5, "sha256": sha256(archive),
                                                 "bytes": archive.stat().st_size, "verified": "md5"}


def test_cifar100_fine_labels_and_coarse_notes(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    splits, fine_names = write_cifar100(raw, np.random.default_rng(1))
    out = tmp_path / "cifar100"
    manifest = cifar.prepare_cifar100(raw, out, verify=False)
    for split, (images, fine) in splits.items():
        loaded = load_prepared(out, split)
        assert loaded.images.numpy().tolist() == images.tolist()
        assert loaded.labels.tolist() == fine
    assert manifest["class_names"] == fine_names
    assert "fine_to_coarse=[" in manifest["notes"] and "coarse00" in manifest["notes"]
    mapping = json.loads(manifest["notes"].split("fine_to_coarse=")[1].split(";")[0])
    assert len(mapping) == 100
    for f in splits["train"][1]:
        assert mapping[f] == f // 5


def test_cifar100_with_bytes_keys(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    splits, fine_names = write_cifar100(raw, np.random.default_rng(2), str_keys=False)
    manifest = cifar.prepare_cifar100(raw, tmp_path / "cifar100", verify=False)
    assert manifest["class_names"] == fine_names and manifest["splits"]["test"]["count"] == 3


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar_pickle_cannot_run_code(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    with tarfile.open(raw / "cifar-100-python.tar.gz", "w:gz") as tf:
        add_member(tf, "cifar-100-python/meta", pickle.dumps({"fine_label_names": ["a"]}, protocol=2))
        add_member(tf, "cifar-100-python/train", pickle.dumps({"data": _Evil()}, protocol=2))
        add_member(tf, "cifar-100-python/test", pickle.dumps({"data": []}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="getcwd"):
        cifar.prepare_cifar100(raw, tmp_path / "out", verify=False)
    assert not (tmp_path / "out").exists()


def test_archive_with_unsafe_member_is_refused(cifar10_raw, tmp_path):
    raw, _ = cifar10_raw
    archive = raw / "cifar-10-python.tar.gz"
    with tarfile.open(archive) as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]
    with tarfile.open(archive, "w:gz") as tf:
        for m, data in members:
            tf.addfile(m, io.BytesIO(data))
        add_member(tf, "../outside.txt", b"x")
    with pytest.raises(UnsafeArchiveError, match="outside.txt"):
        cifar.prepare_cifar10(raw, tmp_path / "out", verify=False)
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "out").exists()


def test_wrong_archive_is_a_clear_error(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    with tarfile.open(raw / "cifar-10-python.tar.gz", "w:gz") as tf:
        add_member(tf, "cifar-10-batches-bin/data_batch_1.bin", b"x")
    with pytest.raises(ValueError, match="data_batch_1"):
        cifar.prepare_cifar10(raw, tmp_path / "out", verify=False)


# ------------------------------------------------------------------------------------------- SVHN


def test_svhn(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(3)
    raw = tmp_path / "raw"
    raw.mkdir()
    expected = {}
    for split, n in (("train", 5), ("test", 3)):
        nchw = red_top_left(random_images(rng, n))
        x = np.ascontiguousarray(nchw.transpose(2, 3, 1, 0))  # official layout: X[row, col, channel, n]
        y = np.array([[10], [1], [9], [10], [5]][:n], dtype=np.uint8)  # (N, 1), 10 = digit 0
        savemat(raw / f"{split}_32x32.mat", {"X": x, "y": y})
        expected[split] = (nchw, [0, 1, 9, 0, 5][:n])
    out = tmp_path / "svhn"
    manifest = svhn.prepare_svhn(raw, out, verify=False)
    for split, (images, labels) in expected.items():
        loaded = load_prepared(out, split)
        assert loaded.images.numpy().tolist() == images.tolist()
        assert loaded.labels.tolist() == labels
        check_pattern(loaded.images.numpy())
    assert manifest["class_names"] == [str(d) for d in range(10)]
    assert manifest["splits"]["train"]["per_class"] == {"0": 2, "1": 1, "5": 1, "9": 1}
    assert set(manifest["sources"]) == {"train_32x32.mat", "test_32x32.mat"}
    assert manifest["sources"]["test_32x32.mat"]["sha256"] == sha256(raw / "test_32x32.mat")


# ------------------------------------------------------------------------------------------- DTD


def test_dtd(dtd_raw, tmp_path):
    raw, lists, images = dtd_raw
    out = tmp_path / "dtd"
    manifest = dtd.prepare_dtd(raw, out, verify=False)
    assert manifest["class_names"] == DTD_CLASSES
    train, test = load_prepared(out, "train"), load_prepared(out, "test")
    train_rels = [r for r in lists["train"] + lists["val"] if "bad" not in r]
    assert len(train) == 9 and len(test) == 3
    assert train.labels.tolist() == [DTD_CLASSES.index(r.split("/")[0]) for r in train_rels]
    assert test.labels.tolist() == [0, 1, 2]
    assert manifest["splits"]["train"]["per_class"] == {c: 3 for c in DTD_CLASSES}
    assert manifest["splits"]["test"]["image_size"] == [32, 32]
    # The corrupt image and the missing one are listed, never dropped silently; the unlisted one is ignored.
    assert len(manifest["skipped"]) == 2
    assert any("banded_bad.jpg" in s for s in manifest["skipped"])
    assert any("zigzagged_gone.jpg" in s and "not in the archive" in s for s in manifest["skipped"])
    # Same pixels as core.read_image on the same file: shorter side to 32, centre square.
    first = tmp_path / "first.jpg"
    first.write_bytes(jpeg_bytes(images[train_rels[0]]))
    assert (train.images[0].numpy() == read_image(first, 32)).all()
    # 64x48 -> 43x32 -> centre 32 columns: red on the left edge, blue on the right edge, in every row.
    img = train.images[0].numpy().astype(int)
    assert (img[0, :, 0] > 200).all() and (img[2, :, 0] < 60).all()
    assert (img[2, :, -1] > 200).all() and (img[0, :, -1] < 60).all()
    assert manifest["sources"][dtd.ARCHIVE]["sha256"] == sha256(raw / dtd.ARCHIVE)


def test_dtd_size_and_fold_options(dtd_raw, tmp_path):
    raw, _, _ = dtd_raw
    with pytest.raises(ValueError, match="labels/val2.txt"):
        dtd.prepare_dtd(raw, tmp_path / "dtd2", fold=2, verify=False)  # train2 exists, val2 / test2 not
    with pytest.raises(ValueError, match="fold"):
        dtd.prepare_dtd(raw, tmp_path / "dtd11", fold=11, verify=False)
    manifest = dtd.prepare_dtd(raw, tmp_path / "dtd16", size=16, verify=False)
    assert manifest["splits"]["train"]["image_size"] == [16, 16]
    assert load_prepared(tmp_path / "dtd16", "test").images.shape == (3, 3, 16, 16)


def test_dtd224_trains_on_the_train_list_only(dtd_raw, tmp_path):
    """Table VII's DTD (eoe: torchvision's split 'train' of fold 1) reads the same archive as dtd."""
    raw, lists, _ = dtd_raw
    manifest = dtd.prepare_dtd224(raw, tmp_path / "dtd224", size=24, verify=False)
    assert manifest["name"] == "dtd224" and "train = train1 (in list order)" in manifest["notes"]
    train = load_prepared(tmp_path / "dtd224", "train")
    assert len(train) == len([r for r in lists["train"] if "bad" not in r]) and train.images.shape[-1] == 24
    assert SETS["dtd224"].raw_name == "dtd" and SETS["dtd224"].image_size == 224
    with pytest.raises(ValueError, match="train_parts"):
        dtd.prepare_dtd(raw, tmp_path / "x", train_parts=("test",), verify=False)


# ------------------------------------------------------------------------------------------- 300K


@pytest.fixture
def tiny300k_raw(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    nchw = red_top_left(random_images(np.random.default_rng(4), 20))
    np.save(raw / tiny.TINY300K_FILE, np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)))  # NHWC, as the official file
    return raw, nchw


def test_tiny300k_all(tiny300k_raw, tmp_path):
    raw, nchw = tiny300k_raw
    out = tmp_path / "tiny300k"
    manifest = tiny.prepare_tiny300k(raw, out, verify=False)
    loaded = load_prepared(out, "train")
    assert loaded.images.numpy().tolist() == nchw.tolist()
    check_pattern(loaded.images.numpy())
    assert (loaded.labels == -1).all() and loaded.class_names == []
    assert manifest["splits"] == {"train": {"count": 20, "image_size": [32, 32], "per_class": {"-1": 20}}}
    assert manifest["sources"][tiny.TINY300K_FILE]["sha256"] == sha256(raw / tiny.TINY300K_FILE)


def test_tiny300k_limit(tiny300k_raw, tmp_path, monkeypatch):
    raw, nchw = tiny300k_raw
    calls = []
    real_load = np.load
    monkeypatch.setattr(tiny.np, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    tiny.prepare_tiny300k(raw, tmp_path / "first", limit=5, verify=False)
    assert calls and all(k.get("mmap_mode") == "r" for k in calls)  # never loaded whole
    assert load_prepared(tmp_path / "first", "train").images.numpy().tolist() == nchw[:5].tolist()
    picked = []
    for run in ("a", "b"):
        tiny.prepare_tiny300k(raw, tmp_path / run, limit=6, seed=7, verify=False)
        got = load_prepared(tmp_path / run, "train").images.numpy()
        rows = [next(i for i in range(20) if (nchw[i] == g).all()) for g in got]
        picked.append(rows)
    assert picked[0] == picked[1] == sorted(set(picked[0])) and len(picked[0]) == 6
    assert picked[0] != list(range(6))  # a random subset, not the first images
    manifest = tiny.prepare_tiny300k(raw, tmp_path / "big", limit=1000, verify=False)
    assert manifest["splits"]["train"]["count"] == 20


# ------------------------------------------------------------------------------------------- 80M Tiny Images


def write_tiny80m(raw: Path, nchw: np.ndarray, cifar_1based: list[int]) -> None:
    """tiny_images.bin from known CHW images by the inverse of reshape(32, 32, 3, order="F")."""
    with open(raw / tiny.TINY80M_BIN, "wb") as f:
        for img in nchw:
            f.write(img.transpose(1, 2, 0).ravel(order="F").tobytes())
    (raw / tiny.TINY80M_IDX).write_text("".join(f"{i}\n" for i in cifar_1based))


@pytest.fixture
def tiny80m_raw(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    nchw = random_images(np.random.default_rng(5), 50)
    red_top_left(nchw[2:4])  # images 2 and 3: the first two non-CIFAR images
    cifar = [1, 2, 10, 50, 2]  # 1-based: images 0, 1, 9, 49 are CIFAR (a duplicate is harmless)
    write_tiny80m(raw, nchw, cifar)
    return raw, nchw, [i for i in range(50) if i not in (0, 1, 9, 49)]


def test_tiny80m_record_layout():
    img = random_images(np.random.default_rng(6), 1)[0]
    record = img.transpose(1, 2, 0).ravel(order="F").tobytes()
    hwc = np.frombuffer(record, np.uint8).reshape(32, 32, 3, order="F")  # the reference loader's reading
    assert (hwc.transpose(2, 0, 1) == img).all()
    assert (tiny.tiny80m_decode(np.frombuffer(record, np.uint8)[None]) == img).all()
    # Column-major: byte 1 is the pixel below the top-left one, byte 32 the one to its right.
    assert record[1] == img[0, 1, 0] and record[32] == img[0, 0, 1] and record[1024] == img[1, 0, 0]


def test_tiny80m_excludes_cifar_1based(tiny80m_raw, tmp_path):
    raw, nchw, allowed = tiny80m_raw
    out = tmp_path / "tiny80m"
    manifest = tiny.prepare_tiny80m(raw, out, count=len(allowed), verify=False)
    loaded = load_prepared(out, "train")
    assert loaded.images.numpy().tolist() == nchw[allowed].tolist()  # all non-CIFAR images, file order
    check_pattern(loaded.images.numpy())
    assert (loaded.labels == -1).all()
    assert manifest["splits"]["train"]["per_class"] == {"-1": 46}
    assert manifest["sources"][tiny.TINY80M_IDX]["sha256"] == sha256(raw / tiny.TINY80M_IDX)
    assert manifest["sources"][tiny.TINY80M_BIN]["bytes"] == 50 * 3072
    with pytest.raises(ValueError, match="only 46"):
        tiny.prepare_tiny80m(raw, tmp_path / "too_many", count=47, verify=False)


def test_tiny80m_seeded_sample(tiny80m_raw, tmp_path):
    raw, nchw, allowed = tiny80m_raw
    runs = []
    for run, seed in (("a", 1), ("b", 1), ("c", 2)):
        tiny.prepare_tiny80m(raw, tmp_path / run, count=10, seed=seed, chunk=3, verify=False)
        got = load_prepared(tmp_path / run, "train").images.numpy()
        runs.append([next(i for i in range(50) if (nchw[i] == g).all()) for g in got])
    assert runs[0] == runs[1] != runs[2]
    for rows in runs:
        assert rows == sorted(set(rows)) and len(rows) == 10 and set(rows) <= set(allowed)


def test_tiny80m_rejects_mismatched_files(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_tiny80m(raw, random_images(np.random.default_rng(7), 4), [5])  # index 5 of 4 images
    with pytest.raises(ValueError, match="1..4"):
        tiny.prepare_tiny80m(raw, tmp_path / "out", count=2, verify=False)
    (raw / tiny.TINY80M_IDX).write_text("1\n")
    with open(raw / tiny.TINY80M_BIN, "ab") as f:
        f.write(b"\0" * 100)
    with pytest.raises(ValueError, match="whole number"):
        tiny.prepare_tiny80m(raw, tmp_path / "out", count=2, verify=False)
    assert not (tmp_path / "out").exists()


def test_sample_excluding_is_exact_and_uniform():
    rng = np.random.default_rng(8)
    for _ in range(50):
        n = int(rng.integers(1, 60))
        excluded = np.unique(rng.integers(0, n, int(rng.integers(0, n))))
        allowed = sorted(set(range(n)) - set(excluded.tolist()))
        got = tiny.sample_excluding(n, excluded, len(allowed), rng)
        assert got.tolist() == allowed
        if allowed:
            part = tiny.sample_excluding(n, excluded, max(1, len(allowed) // 2), rng).tolist()
            assert part == sorted(set(part)) and set(part) <= set(allowed)
    excluded = np.array([0, 3, 4, 10, 19])
    counts = np.zeros(20, int)
    for _ in range(2000):
        counts[tiny.sample_excluding(20, excluded, 3, rng)] += 1
    assert counts[excluded].sum() == 0
    allowed_counts = np.delete(counts, excluded)
    assert allowed_counts.min() > 300 and allowed_counts.max() < 500  # 400 expected each
