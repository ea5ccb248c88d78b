"""`python -m oecl_core data prepare NAME --from PATH`, for every data set and every layout its `data how` text names:
each case makes tiny files in the official format and layout, gives them to the command line as a user would, and
checks what was prepared, that nothing was downloaded and that nothing was written into the user's folder."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from oecl_core.cli import main
from oecl_core.data import catalog
from oecl_core.data.prepared import load_prepared, read_manifest
from oecl_core.data.sets import SETS, imagenet30, imagenet_oe, mvtec
from test_sets_224px import (DV_TEST, DV_TRAIN, centre_colour, jpeg, make_dior, make_ham, make_ham_dataverse,
                             make_mvtec, zip_folder)
from test_sets_32px import CIFAR10_NAMES, add_member, jpeg_bytes, py2_pickle, random_images

SIZE = 32  # the 224-px data sets are prepared at 32 px here: the layout is under test, not the resolution
UNREACHABLE = "http://127.0.0.1:9/"  # nothing listens on port 9


# ------------------------------------------------------------------------------------------- official formats

def write_stored_rar(path: Path, members: dict[str, bytes]) -> None:
    """A RAR 4.x archive of uncompressed (stored) files, block by block as RARLAB's format description lays it out:
    the marker block, the archive header, one file header (followed by the file's bytes) per member, the end block.
    Each block starts with the low 16 bits of the CRC-32 of the rest of its header. rarfile reads stored members
    itself, so extracting it needs no unrar."""
    def block(head_type: int, flags: int, body: bytes) -> bytes:
        rest = struct.pack("<BHH", head_type, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(rest) & 0xFFFF) + rest

    dos_time = (2020 - 1980) << 25 | 1 << 21 | 1 << 16  # 2020-01-01 00:00:00
    out = bytearray(b"Rar!\x1a\x07\x00") + block(0x73, 0, bytes(6))
    for name, data in members.items():
        raw_name = name.encode()
        # packed and unpacked size, host OS 3 (Unix), CRC-32, time, version 2.0, method 0x30 (store), name, mode
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 3, zlib.crc32(data), dos_time, 20, 0x30, len(raw_name),
                           0o100644) + raw_name
        out += block(0x74, 0x8000, body) + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out + block(0x7B, 0x4000, b"")))


def cifar_archive(path: Path, folder: str, batches: dict[str, int], meta: str, meta_key: str, label_key: str,
                  n_classes: int) -> None:
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = CIFAR10_NAMES if n_classes == 10 else [f"class{i:02d}" for i in range(n_classes)]
    with tarfile.open(path, "w:gz") as tf:
        add_member(tf, f"{folder}/{meta}", py2_pickle({meta_key.encode(): [n.encode() for n in names]}))
        for batch, n in batches.items():
            add_member(tf, f"{folder}/{batch}", py2_pickle({label_key.encode(): [i % n_classes for i in range(n)],
                                                            b"data": random_images(rng, n).reshape(n, 3072)}))


def cifar10(path: Path) -> None:
    batches = {**{f"data_batch_{i}": 2 for i in range(1, 6)}, "test_batch": 4}  # 10 / 4 images
    cifar_archive(path, "cifar-10-batches-py", batches, "batches.meta", "label_names", "labels", 10)


def cifar100(path: Path) -> None:
    cifar_archive(path, "cifar-100-python", {"train": 6, "test": 3}, "meta", "fine_label_names", "fine_labels", 100)


def dtd_archive(path: Path) -> None:
    """dtd/images/<class>/*.jpg and dtd/labels/{train,val,test}<fold>.txt, as dtd-r1.0.1.tar.gz holds them: 2 classes,
    2 train, 1 val and 1 test image each, in fold 1."""
    lists = {"train": [], "val": [], "test": []}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for c in ("banded", "zigzagged"):
            for i, part in enumerate(("train", "train", "val", "test")):
                rel = f"{c}/{c}_{i:04d}.jpg"
                add_member(tf, f"dtd/images/{rel}", jpeg_bytes(np.full((40, 48, 3), 60 * i, np.uint8)))
                lists[part].append(rel)
        for fold in range(1, 11):
            for part, rels in lists.items():
                add_member(tf, f"dtd/labels/{part}{fold}.txt", ("\n".join(rels) + "\n").encode())


def svhn_mats(folder: Path) -> None:
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for split, n in (("train", 3), ("test", 2)):  # X[row, col, channel, n], y (N, 1) with 10 for the digit 0
        savemat(folder / f"{split}_32x32.mat", {"X": random_images(rng, n).transpose(2, 3, 1, 0),
                                                "y": np.array([[10], [1], [9]][:n], dtype=np.uint8)})


def tiny300k_npy(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, random_images(np.random.default_rng(2), 5).transpose(0, 2, 3, 1).copy())  # NHWC, as the file


def tiny80m_files(folder: Path) -> None:
    """tiny_images.bin (10 images of 3,072 bytes) and 80mn_cifar_idxs.txt (1-based indices: images 1 and 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny_images.bin").write_bytes(random_images(np.random.default_rng(3), 10).tobytes())
    (folder / "80mn_cifar_idxs.txt").write_text("1\n2\n")


def dior_files(folder: Path, layout: str) -> None:
    """make_dior's 5 images (3 trainval, 2 test) as the three Drive zips or extracted."""
    staging = folder.parent / "staging"
    make_dior(staging, annotations_as_zip=False)
    if layout == "lists":
        main_lists = staging / "ImageSets" / "Main"
        main_lists.mkdir(parents=True)
        for part, ids in (("train", "00001\n00003\n"), ("val", "00002\n"), ("test", "00004\n00005\n")):
            (main_lists / f"{part}.txt").write_text(ids)
    if layout == "flat":  # Annotations/*.xml, without the Horizontal / Oriented Bounding Boxes folders
        horizontal = staging / "Annotations" / "Horizontal Bounding Boxes"
        for p in sorted(horizontal.iterdir()):
            p.rename(staging / "Annotations" / p.name)
        for d in (horizontal, staging / "Annotations" / "Oriented Bounding Boxes"):
            for p in d.iterdir():
                p.unlink()
            d.rmdir()
    if layout == "zips":
        folder.mkdir(parents=True)
        for part in ("JPEGImages-trainval", "JPEGImages-test", "Annotations"):
            zip_folder(staging / part, folder / f"{part}.zip")
    else:
        staging.rename(folder)


def ham_files(folder: Path, layout: str) -> None:
    staging = folder.parent / "staging"
    if layout.startswith("dataverse"):
        tab = layout != "dataverse-csv"
        make_ham_dataverse(folder if layout == "dataverse-extracted" else staging, DV_TRAIN, DV_TEST, tab=tab)
        if layout == "dataverse-extracted":
            return
        folder.mkdir(parents=True)
        for part in ("HAM10000_images_part_1", "HAM10000_images_part_2", "ISIC2018_Task3_Test_Images"):
            with zipfile.ZipFile(folder / f"{part}.zip", "w") as zf:  # the part zips hold their images at the top
                for f in sorted((staging / part).iterdir()):
                    zf.write(f, f"{part}/{f.name}" if part.startswith("ISIC") else f.name)
        for table in staging.glob("*.tab" if tab else "*.csv"):
            (folder / table.name).write_bytes(table.read_bytes())
    else:
        train = {"ISIC_0024306": 1, "ISIC_0024307": 0, "ISIC_0024308": 4, "ISIC_0024309": 1}
        test = {"ISIC_0034524": 6, "ISIC_0034525": 1}
        make_ham(folder if layout == "isic-extracted" else staging, train, test)
        if layout == "isic-zips":
            folder.mkdir(parents=True)
            for part in sorted(staging.iterdir()):
                zip_folder(part, folder / f"{part.name}.zip")


def imagenet30_files(folder: Path, layout: str) -> None:
    """one_class_train/<class>/... and one_class_test/<class>/... (2 classes; the train half nested as the Drive
    archive nests it, with a macOS ._ file), extracted or as the two Drive tars."""
    staging = folder if layout == "extracted" else folder.parent / "staging"
    for c in ("airliner", "banjo"):
        jpeg(staging / imagenet30.IN30_TRAIN / c / "images" / "1.JPEG", (60, 40))
        jpeg(staging / imagenet30.IN30_TRAIN / c / "images" / "2.JPEG", (40, 60))
        jpeg(staging / imagenet30.IN30_TEST / c / "3.JPEG")
    jpeg(staging / imagenet30.IN30_TRAIN / "airliner" / "._1.JPEG")
    if layout == "tars":
        folder.mkdir(parents=True)
        for part in (imagenet30.IN30_TRAIN, imagenet30.IN30_TEST):
            with tarfile.open(folder / f"{part}.tar", "w") as tf:
                tf.add(staging / part, arcname=part)


def mvtec_files(folder: Path, layout: str) -> Path:
    """make_mvtec's 15 categories (2 train, 2 test images each), extracted, or as mvtec_anomaly_detection.tar.xz."""
    if layout == "extracted":
        make_mvtec(folder)
        return folder
    staging = folder.parent / "staging"
    make_mvtec(staging)
    folder.mkdir(parents=True)
    with tarfile.open(folder / mvtec.ARCHIVE, "w:xz") as tf:
        for c in mvtec.CATEGORIES:
            tf.add(staging / c, arcname=c)
    return folder / mvtec.ARCHIVE if layout == "archive" else folder


RAABIN_FOLDERS = ("Basophil", "Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil")


def raabin_files(folder: Path, layout: str) -> None:
    """Train/<Class>/*.jpg and TestA/<Class>/*.jpg, one image per class, extracted (class folders in any letter
    case) or as Train.rar and TestA.rar."""
    if layout == "extracted":
        for split in ("Train", "TestA"):
            for c in RAABIN_FOLDERS:
                jpeg(folder / split / (c.upper() if split == "TestA" else c) / "1.jpg")
        return
    image = jpeg_bytes(np.full((40, 40, 3), 90, np.uint8))
    for split in ("Train", "TestA"):
        write_stored_rar(folder / f"{split}.rar", {f"{split}/{c}/1.jpg": image for c in RAABIN_FOLDERS})


IN1K = imagenet_oe.imagenet1k_wnids()
IN30 = imagenet_oe.imagenet30_wnids()
# class folder -> colour: two ImageNet-1k synsets that are not ImageNet-30 classes, two ImageNet-30 classes, and two
# ids outside ImageNet-1k (as ImageNet-22k holds them)
IMAGENET_FOLDERS = {IN1K[0]: (250, 0, 0), IN1K[1]: (0, 250, 0), IN30["acorn"]: (0, 0, 250),
                    IN30["rotary_dial_telephone"]: (250, 250, 0), "n09999991": (0, 250, 250),
                    "n09999992": (250, 0, 250)}


def imagenet_folders(folder: Path, layout: str) -> None:
    """<wnid>/*.JPEG, two images per class folder, directly in the folder given or in the subfolder `layout`."""
    base = folder if layout == "<wnid>" else folder / layout.split("/")[0]
    for wnid, colour in IMAGENET_FOLDERS.items():
        for j in range(2):
            jpeg(base / wnid / f"{wnid}_{j}.JPEG", (50 + 7 * j, 40), colour)


def colours_of(prepared: Path) -> set[tuple]:
    images = load_prepared(prepared, "train").images.numpy()
    return {tuple(int(round(v / 50)) * 50 for v in centre_colour(img)) for img in images}


# ------------------------------------------------------------------------------------------- the cases

@dataclasses.dataclass
class Case:
    layout: str  # a phrase of the data set's `data how` text naming this layout
    build: object  # build(folder) -> the path given to --from (None: the folder itself)
    counts: dict  # split -> images prepared
    options: dict = dataclasses.field(default_factory=dict)
    colours: set | None = None  # the colours of an OE pool's images: the class folders read


def _given(build):
    """build(folder) that makes the files and returns what --from gets."""
    def run(folder: Path) -> Path:
        return build(folder) or folder
    return run


def _file(build, name: str):
    """Make the one source file under another name (a renamed copy): --from gets the file itself."""
    def run(folder: Path) -> Path:
        build(folder / name)
        return folder / name
    return run


IMAGE_OPTIONS = {"size": SIZE, "workers": 1}
OE_OPTIONS = {"count": 100, **IMAGE_OPTIONS}
KEPT_BY = {  # the colours left in each ImageNet pool (IMAGENET_FOLDERS)
    "imagenet1k": set(IMAGENET_FOLDERS.values()),
    "imagenet1k_minus_30": {c for w, c in IMAGENET_FOLDERS.items() if w not in IN30.values()},
    "imagenet22k_minus_1k": {c for w, c in IMAGENET_FOLDERS.items() if w not in IN1K},
}


def imagenet_cases(name: str, subfolders) -> list[Case]:
    kept = KEPT_BY[name]
    return [Case(layout, _given(functools.partial(imagenet_folders, layout=layout)), {"train": 2 * len(kept)},
                 OE_OPTIONS, kept) for layout in ["<wnid>", *(f"{s}/" for s in subfolders)]]


CASES = {
    "cifar10": [Case("archive", _file(cifar10, "my-cifar10-copy.tar.gz"), {"train": 10, "test": 4}),
                Case("folder", _given(lambda d: cifar10(d / "cifar-10-python.tar.gz")), {"train": 10, "test": 4})],
    "cifar100": [Case("archive", _file(cifar100, "cifar-100-python.tar.gz"), {"train": 6, "test": 3}),
                 Case("folder", _given(lambda d: cifar100(d / "cifar-100-python.tar.gz")), {"train": 6, "test": 3})],
    "dtd": [Case("archive", _file(dtd_archive, "dtd-r1.0.1.tar.gz"), {"train": 6, "test": 2}),
            Case("folder", _given(lambda d: dtd_archive(d / "dtd-r1.0.1.tar.gz")), {"train": 6, "test": 2})],
    "dtd224": [Case("archive", _file(dtd_archive, "dtd-r1.0.1.tar.gz"), {"train": 4, "test": 2}, {"size": SIZE}),
               Case("folder", _given(lambda d: dtd_archive(d / "dtd-r1.0.1.tar.gz")), {"train": 4, "test": 2},
                    {"size": SIZE})],
    "svhn": [Case("folder", _given(svhn_mats), {"train": 3, "test": 2})],
    "tiny300k": [Case("archive", _file(tiny300k_npy, "300K_random_images.npy"), {"train": 5}),
                 Case("folder", _given(lambda d: tiny300k_npy(d / "300K_random_images.npy")), {"train": 5})],
    "tiny80m": [Case("the folder holding them", _given(tiny80m_files), {"train": 5}, {"count": 5})],
    "dior": [Case(layout, _given(functools.partial(dior_files, layout=key)), counts,
                  {"min_crops": 1 if key == "lists" else 2, **IMAGE_OPTIONS, **extra})
             for layout, key, counts, extra in [
                 ("JPEGImages-trainval.zip", "zips", {"train": 6, "test": 2}, {}),
                 ("Annotations/Horizontal Bounding Boxes/*.xml", "extracted", {"train": 6, "test": 2}, {}),
                 ("Annotations/*.xml", "flat", {"train": 6, "test": 2}, {}),
                 ("ImageSets/Main/{train,val,test}.txt", "lists", {"train": 4, "test": 2}, {"train_lists": "train"})]],
    "ham10000": [Case(layout, _given(functools.partial(ham_files, layout=key)), counts, IMAGE_OPTIONS)
                 for layout, key, counts in [
                     ("HAM10000_metadata.tab", "dataverse-tab", {"train": 8, "test": 3}),
                     ("original CSV", "dataverse-csv", {"train": 8, "test": 3}),
                     ("Extracted folders work too", "dataverse-extracted", {"train": 8, "test": 3}),
                     ("ISIC2018_Task3_Training_Input.zip", "isic-zips", {"train": 4, "test": 2}),
                     ("(or extracted: the image folders", "isic-extracted", {"train": 4, "test": 2})]],
    "imagenet30": [Case("one_class_train.tar", _given(functools.partial(imagenet30_files, layout="tars")),
                        {"train": 4, "test": 2}, IMAGE_OPTIONS),
                   Case("one_class_train/<class>/.../*.JPEG",
                        _given(functools.partial(imagenet30_files, layout="extracted")), {"train": 4, "test": 2},
                        IMAGE_OPTIONS)],
    "mvtec": [Case(layout, _given(functools.partial(mvtec_files, layout=key)), {"train": 30, "test": 30}, IMAGE_OPTIONS)
              for layout, key in [("--from mvtec_anomaly_detection.tar.xz", "archive"), ("folder", "folder"),
                                  ("<category>/train/good/*.png", "extracted")]],
    "raabin": [Case("Train.rar", _given(functools.partial(raabin_files, layout="rar")), {"train": 5, "test": 5},
                    IMAGE_OPTIONS),
               Case("Train/<Class>/*.jpg", _given(functools.partial(raabin_files, layout="extracted")),
                    {"train": 5, "test": 5}, IMAGE_OPTIONS)],
    "imagenet1k": imagenet_cases("imagenet1k", ("train", "ILSVRC2012_img_train")),
    "imagenet1k_minus_30": imagenet_cases("imagenet1k_minus_30", ("train", "ILSVRC2012_img_train")),
    "imagenet22k_minus_1k": imagenet_cases("imagenet22k_minus_1k",
                                           ("imagenet22k", "imagenet21k", "fall11_whole", "winter21_whole")),
}


def test_every_data_set_has_its_from_layouts_tested():
    assert set(CASES) == set(SETS)
    for name, cases in CASES.items():  # each case is a layout the data set's instructions name
        for case in cases:
            assert case.layout in SETS[name].instructions, (name, case.layout)


def trust_our_files(monkeypatch, name: str, given: Path) -> None:
    """Our tiny files stand in for the real ones: where a checksum is published, the record is given theirs (and
    a URL nothing answers), and the preparer does not check its own copy of the published one."""
    e = SETS[name]
    files = {r.filename: given if given.is_file() else given / r.filename for r in e.sources}
    if not any(r.md5 or r.sha256 for r in e.sources) or not any(f.is_file() for f in files.values()):
        return  # no published checksum, or extracted folders (read as they are, never checked against one)

    def ours(r):
        return dataclasses.replace(r, url=UNREACHABLE + r.filename, mirrors=(), gdrive_id=None,
                                   md5=hashlib.md5(files[r.filename].read_bytes()).hexdigest(), sha256=None)

    monkeypatch.setitem(SETS, name, dataclasses.replace(e, sources=tuple(ours(r) for r in e.sources),
                                                        prepare=functools.partial(e.prepare, verify=False)))


def listing(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name, k", [(n, k) for n, cases in CASES.items() for k in range(len(cases))],
                         ids=[f"{n}-{c.layout}" for n, cases in CASES.items() for c in cases])
def test_prepare_from_each_layout_the_instructions_name(tmp_path, monkeypatch, capsys, name, k):
    case = CASES[name][k]
    mine, root = tmp_path / "mine", tmp_path / "data"
    given = case.build(mine)
    trust_our_files(monkeypatch, name, given)
    real_fetch = catalog.fetch

    def verify_only(remote, dest_dir, **kw):  # a file given with --from is verified where it is linked; no download
        assert (Path(dest_dir) / remote.filename).exists(), f"{name}: {remote.filename} would be downloaded"
        return real_fetch(remote, dest_dir, **kw)

    monkeypatch.setattr(catalog, "fetch", verify_only)
    before = listing(mine)
    options = [a for key, value in case.options.items() for a in ("--option", f"{key}={value}")]
    code = main(["data", "prepare", name, "--root", str(root), "--from", str(given), *options])
    assert code == 0, capsys.readouterr().err[-3000:]
    m = read_manifest(root / name)
    assert {split: info["count"] for split, info in m["splits"].items()} == case.counts
    if case.colours is not None:  # the class folders an OE pool was drawn from
        assert colours_of(root / name) == case.colours
    assert listing(mine) == before  # nothing written into, or removed from, the user's folder


def test_imagenet_from_a_folder_without_class_folders_says_where_it_looked(tmp_path, capsys):
    (tmp_path / "mine" / "train" / "not_a_wnid").mkdir(parents=True)
    assert main(["data", "prepare", "imagenet1k", "--root", str(tmp_path / "data"), "--from",
                 str(tmp_path / "mine")]) == 2
    err = capsys.readouterr().err
    assert "class folders named by WordNet id" in err and f"given with --from ({(tmp_path / 'mine').resolve()})" in err
    assert not (tmp_path / "data" / "imagenet1k").exists()
