"""The 224-px data sets (one file each in oecl_core/data/sets/) on tiny files laid out as the official releases are."""
import json
import random
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oecl_core.data.core import ImageSet, read_image
from oecl_core.data.fetch import ManualDownloadRequired
from oecl_core.data.prep import EXTRACTED
from oecl_core.data.sets import SETS, dior, ham10000, imagenet30, imagenet_oe, mvtec, raabin
from oecl_core.data.prepared import load_prepared
from oecl_core.config import resolve_config
from oecl_core.experiments import Run, run_config

SIZE = 32


def jpeg(path: Path, size=(48, 40), color=(128, 128, 128), boxes=()):
    """A JPEG of `size` (w, h) in `color`, with each (box, colour) of `boxes` painted solid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, color)
    for (x0, y0, x1, y1), c in boxes:
        im.paste(c, (x0, y0, x1, y1))
    im.save(path, quality=95)
    return path


def garbage(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a jpeg" * 10)
    return path


def zip_folder(folder: Path, archive: Path):
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(folder.parent).as_posix())


def centre_colour(image: np.ndarray) -> np.ndarray:
    c = image.shape[-1] // 2
    return image[:, c - 8:c + 8, c - 8:c + 8].reshape(3, -1).mean(1)


def assert_nothing_written(out: Path):
    assert not out.exists()
    if out.parent.exists():
        assert not list(out.parent.glob(f".{out.name}*"))


# --------------------------------------------------------------------------------------------- DIOR

def voc_xml(path: Path, objects):
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"<object><name>{n}</name><pose>Unspecified</pose><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                   f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects)
    path.write_text(f"<annotation><filename>{path.stem}.jpg</filename><size><width>400</width><height>400</height>"
                    f"<depth>3</depth></size>{body}</annotation>")


# image id -> (split folder, [(class as in the XML, box, colour)])
DIOR_IMAGES = {
    "00001": ("trainval", [("airplane", (10, 10, 150, 150), (230, 20, 20)),
                           ("Expressway-Service-area", (200, 10, 390, 140), (20, 230, 20)),
                           ("airplane", (10, 200, 100, 390), (20, 20, 230)),       # 90 px wide: dropped
                           ("vehicle", (200, 200, 321, 320), (230, 230, 20))]),  # 121 x 120: dropped
    "00002": ("trainval", [("airplane", (0, 0, 130, 200), (20, 230, 230)),
                           ("Expressway-Service-area", (150, 210, 300, 390), (230, 20, 230)),
                           ("vehicle", (250, 0, 399, 140), (120, 60, 0))]),        # 1 big crop: class dropped
    "00003": ("trainval", [("airplane", (50, 50, 200, 200), (0, 60, 120)),
                           ("expressway-service-area", (210, 210, 380, 390), (60, 120, 0))]),
    "00004": ("test", [("airplane", (20, 20, 180, 180), (250, 140, 0)),
                       ("vehicle", (200, 200, 390, 390), (0, 140, 250)),            # class not kept
                       ("airplane", (300, 10, 390, 100), (140, 0, 250))]),          # small
    "00005": ("test", [("Expressway-Service-area", (100, 100, 300, 300), (250, 0, 140))]),
}


def make_dior(raw: Path, annotations_as_zip: bool):
    for i, (group, objects) in DIOR_IMAGES.items():
        jpeg(raw / f"JPEGImages-{group}" / f"{i}.jpg", (400, 400), (90, 90, 90), [(b, c) for _, b, c in objects])
        voc_xml(raw / "Annotations" / "Horizontal Bounding Boxes" / f"{i}.xml", [(n, b) for n, b, _ in objects])
        # oriented boxes must be ignored: a big 'ship' there would otherwise be a class
        voc_xml(raw / "Annotations" / "Oriented Bounding Boxes" / f"{i}.xml", [("ship", (0, 0, 399, 399))])
    if annotations_as_zip:
        zip_folder(raw / "Annotations", raw / dior.ANNOTATIONS)
        for p in sorted((raw / "Annotations").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (raw / "Annotations").rmdir()


def test_dior_crops_filters_and_pixels(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out" / "dior"
    make_dior(raw, annotations_as_zip=True)
    m = dior.prepare_dior(raw, out, size=SIZE, min_crops=2, workers=2)
    assert m["class_names"] == ["expresswayservicearea", "airplane"]  # the authors' ImageFolder order
    assert m["splits"]["train"]["per_class"] == {"airplane": 3, "expresswayservicearea": 3}
    assert m["splits"]["test"]["per_class"] == {"airplane": 1, "expresswayservicearea": 1}
    assert "vehicle (1 training crops)" in m["notes"] and "ship" not in m["notes"]
    assert dior.ANNOTATIONS in m["sources"] and len(m["sources"][dior.ANNOTATIONS]["sha256"]) == 64
    assert m["sources"]["JPEGImages-trainval/"] == {"files": 3}
    assert "paper" in m["notes"] and "1,890" in m["notes"]
    train = load_prepared(out, "train")
    assert tuple(train.images.shape) == (6, 3, SIZE, SIZE)
    # crops in image order, then object order; each crop is its box's colour
    expected = [(c, 1 if n == "airplane" else 0) for i in ("00001", "00002", "00003")
                for n, b, c in DIOR_IMAGES[i][1] if b[2] - b[0] > 120 and b[3] - b[1] > 120 and n != "vehicle"]
    assert train.labels.tolist() == [lab for _, lab in expected]
    for img, (colour, _) in zip(train.images.numpy(), expected):
        assert np.abs(centre_colour(img) - colour).max() < 8, (centre_colour(img), colour)
    test = load_prepared(out, "test")
    assert np.abs(centre_colour(test.images[0].numpy()) - (250, 140, 0)).max() < 8
    # second run: the annotations archive is not extracted again
    marker = raw / EXTRACTED / dior.ANNOTATIONS / ".complete"
    assert marker.exists()
    before = marker.stat().st_mtime_ns
    dior.prepare_dior(raw, out, size=SIZE, min_crops=2, crop_mode="stretch", workers=1, verify=False)
    assert marker.stat().st_mtime_ns == before


def test_dior_default_threshold_drops_all_tiny_classes(tmp_path):
    raw = tmp_path / "raw"
    make_dior(raw, annotations_as_zip=False)
    with pytest.raises(ValueError, match="more than 50 training crops"):
        dior.prepare_dior(raw, tmp_path / "out", size=SIZE, workers=1)
    assert not (tmp_path / "out").exists()


def test_dior_needs_test_annotations(tmp_path):
    raw = tmp_path / "raw"
    make_dior(raw, annotations_as_zip=False)
    for i in ("00004", "00005"):
        (raw / "Annotations" / "Horizontal Bounding Boxes" / f"{i}.xml").unlink()
    with pytest.raises(ValueError, match="none of the 2 test images has an annotation"):
        dior.prepare_dior(raw, tmp_path / "out", size=SIZE, min_crops=2)
    assert not (tmp_path / "out").exists()


def test_dior_lists_option_needs_imagesets(tmp_path):
    raw = tmp_path / "raw"
    make_dior(raw, annotations_as_zip=False)
    with pytest.raises(ManualDownloadRequired, match="ImageSets"):
        dior.prepare_dior(raw, tmp_path / "out", size=SIZE, min_crops=0, train_lists=("train",))
    main = raw / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("00001\n00003\n")
    (main / "val.txt").write_text("00002\n")
    (main / "test.txt").write_text("00004\n00005\n")
    m = dior.prepare_dior(raw, tmp_path / "out", size=SIZE, min_crops=1, train_lists=("train",), workers=1)
    assert m["splits"]["train"]["per_class"] == {"airplane": 2, "expresswayservicearea": 2}


# The class folders of the authors' prepared DIOR (real_OECL, OECL/src/data/datasets.py, DIOR.CLASSES)
AUTHORS_DIOR_FOLDERS = ["ship", "tenniscourt", "baseballfield", "groundtrackfield", "dam", "bridge", "trainstation",
                        "harbor", "golffield", "Expressway-toll-station", "overpass", "basketballcourt", "airport",
                        "airplane", "storagetank", "Expressway-Service-area", "stadium", "windmill", "chimney"]


def test_dior_class_numbers_are_the_authors_imagefolder_numbers():
    """torchvision's ImageFolder numbers class folders in sorted (case-sensitive) order: the capitalised Expressway
    folders are classes 0 and 1 there, and must be here."""
    authors = sorted(AUTHORS_DIOR_FOLDERS)  # what ImageFolder.find_classes does
    assert [dior._dior_class(f) for f in authors] == list(dior.CLASSES) == list(SETS["dior"].class_names)
    assert dior.CLASSES[:2] == ("expresswayservicearea", "expresswaytollstation") and dior.CLASSES[2] == "airplane"
    shuffled = {c: 60 for c in reversed(dior.CLASSES)} | {"vehicle": 10}
    assert dior.dior_select_classes(shuffled) == list(dior.CLASSES)


def test_dior_class_selection_and_report():
    counts = {"windmill": 1890, "baseballfield": 116, "vehicle": 50, "ship": 51, "chimney": 0}
    assert dior.dior_select_classes(counts) == ["baseballfield", "ship", "windmill"]
    assert dior.dior_select_classes(counts, min_crops=116) == ["windmill"]
    report = dior.dior_count_report(counts)
    assert "paper 116 (smallest)" in report and "paper 1890 (largest)" in report
    assert "smallest chimney 0" in report and "average 649" in report
    manifest = {"splits": {"train": {"per_class": {"a": 3, "b": 5}}}}
    assert "2 classes, smallest a 3, largest b 5, average 4" in dior.dior_count_report(manifest)


def test_dior_crop_is_stored_as_read_image_stores_a_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)).save(path)
    with Image.open(path) as im:
        for size in (24, 96):  # a square at 32-px sizes, the aspect ratio kept at 224-px sizes
            assert np.array_equal(dior._store_crop(im, size), read_image(path, size))
        assert read_image(path, 24).shape == (3, 24, 24) and read_image(path, 96).shape == (3, 96, 129)
        assert dior._store_crop(im, 96, "stretch").shape == (3, 96, 96)


# --------------------------------------------------------------------------------------------- Raabin-WBC

def test_raabin_folders_and_unreadable_image(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out" / "raabin"
    for split, n in (("Train", 2), ("TestA", 1)):
        for k, c in enumerate(["Basophil", "Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil"]):
            for j in range(n):
                jpeg(raw / split / c / f"{c}_{j}.jpg", (60 + 10 * j, 50), (40 * k, 100, 200))
    garbage(raw / "Train" / "Eosinophil" / "broken.jpg")
    m = raabin.prepare_raabin(raw, out, size=SIZE, workers=2)
    assert m["class_names"] == list(raabin.RAABIN_CLASSES)
    assert m["splits"]["train"]["count"] == 10 and m["splits"]["test"]["count"] == 5
    assert m["splits"]["train"]["per_class"]["eosinophil"] == 2
    assert len(m["skipped"]) == 1 and "broken.jpg" in m["skipped"][0]
    assert "Skipped 1 unreadable" in m["notes"]
    assert m["sources"] == {"Train/": {"files": 11}, "TestA/": {"files": 5}}
    test = load_prepared(out, "test")
    assert test.labels.tolist() == [0, 1, 2, 3, 4]
    assert np.abs(centre_colour(test.images[4].numpy()) - (160, 100, 200)).max() < 8


def test_raabin_missing_class_folder(tmp_path):
    raw = tmp_path / "raw"
    jpeg(raw / "Train" / "Basophil" / "a.jpg")
    jpeg(raw / "TestA" / "Basophil" / "a.jpg")
    with pytest.raises(ValueError, match="eosinophil"):
        raabin.prepare_raabin(raw, tmp_path / "out", size=SIZE)
    assert_nothing_written(tmp_path / "out")


# --------------------------------------------------------------------------------------------- ImageNet-30

def test_imagenet30_tree_tar_and_stray_file(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out" / "in30"
    for c in ("airliner", "banjo"):
        jpeg(raw / imagenet30.IN30_TRAIN / c / "1.JPEG", (70, 50))
        jpeg(raw / imagenet30.IN30_TRAIN / c / "nested" / "2.JPEG", (50, 70))
        jpeg(tmp_path / "t" / imagenet30.IN30_TEST / c / "3.JPEG")
    garbage(raw / imagenet30.IN30_TRAIN / "airliner" / "._1.JPEG")
    with tarfile.open(raw / (imagenet30.IN30_TEST + ".tar"), "w") as tf:  # the test half as the Drive archive
        tf.add(tmp_path / "t" / imagenet30.IN30_TEST, arcname=imagenet30.IN30_TEST)
    m = imagenet30.prepare_imagenet30(raw, out, size=SIZE, workers=1)
    assert m["class_names"] == ["airliner", "banjo"]
    assert m["splits"]["train"]["per_class"] == {"airliner": 2, "banjo": 2}
    assert m["splits"]["test"]["count"] == 2
    assert len(m["skipped"]) == 1 and "._1.JPEG" in m["skipped"][0] and "metadata" in m["skipped"][0]
    assert len(m["sources"][imagenet30.IN30_TEST + ".tar"]["sha256"]) == 64
    assert "1 macOS metadata file(s)" in m["notes"]


# --------------------------------------------------------------------------------------------- HAM10000

HAM_COLUMNS = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
HAM_DX = {"MEL": "mel", "NV": "nv", "BCC": "bcc", "AKIEC": "akiec", "BKL": "bkl", "DF": "df", "VASC": "vasc"}


def ham_csv(path: Path, rows: dict[str, int]):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["image," + ",".join(HAM_COLUMNS)]
    for image, k in rows.items():
        lines.append(image + "," + ",".join("1.0" if j == k else "0.0" for j in range(7)))
    path.write_text("\n".join(lines) + "\n")


def ham_metadata(path: Path, rows: dict[str, str], tab: bool):
    """A table in HAM10000's metadata format: as Dataverse serves it (.tab: tab-separated, strings quoted) or as
    the uploaded CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"]
    lines = []
    for n, (image, dx) in enumerate(rows.items()):
        cells = [f"HAM_{n:07d}", image, dx, "histo", "45.0", "female", "back", "vidir_modern"]
        lines.append("\t".join(f'"{c}"' if c != "45.0" else c for c in cells) if tab else ",".join(cells))
    path.write_text(("\t".join(f'"{h}"' for h in header) if tab else ",".join(header)) + "\n" + "\n".join(lines) + "\n")


def make_ham(root: Path, train: dict[str, int], test: dict[str, int], truth_skip: str | None = None):
    """The ISIC 2018 challenge layout: Training_Input / Test_Input folders and one-hot ground-truth CSVs."""
    for key, rows in (("train", train), ("test", test)):
        kind = "Training" if key == "train" else "Test"
        folder = root / f"ISIC2018_Task3_{kind}_Input"
        for image, k in rows.items():
            jpeg(folder / f"{image}.jpg", (60, 45), (30 * k, 50, 90))
        (folder / "LICENSE.txt").write_text("CC-BY-NC")
        truth = f"ISIC2018_Task3_{kind}_GroundTruth"
        ham_csv(root / truth / f"{truth}.csv", {i: k for i, k in rows.items() if i != truth_skip})


def make_ham_dataverse(root: Path, train: dict[str, str], test: dict[str, str], tab: bool = True):
    """The Harvard Dataverse layout: two training image folders, HAM10000_metadata, the 1,511-image test folder
    (with the __MACOSX resource forks its zip carries) and its ground truth in the metadata format; rows name dx."""
    ext = ".tab" if tab else ".csv"
    for n, (image, dx) in enumerate(train.items()):
        jpeg(root / f"HAM10000_images_part_{1 + n % 2}" / f"{image}.jpg", (60, 45), (30 * HAM_DX_INDEX[dx], 50, 90))
    ham_metadata(root / f"HAM10000_metadata{ext}", train, tab)
    for image, dx in test.items():
        jpeg(root / "ISIC2018_Task3_Test_Images" / f"{image}.jpg", (60, 45), (30 * HAM_DX_INDEX[dx], 50, 90))
        (root / "__MACOSX" / "ISIC2018_Task3_Test_Images").mkdir(parents=True, exist_ok=True)
        (root / "__MACOSX" / "ISIC2018_Task3_Test_Images" / f"._{image}.jpg").write_bytes(b"\x00\x05\x16\x07")
    ham_metadata(root / f"ISIC2018_Task3_Test_GroundTruth{ext}", test, tab)


HAM_DX_INDEX = {dx: HAM_COLUMNS.index(c) for c, dx in HAM_DX.items()}
DV_TRAIN = {"ISIC_0024306": "nv", "ISIC_0024307": "mel", "ISIC_0024308": "bkl", "ISIC_0024309": "nv",
            "ISIC_0024310": "akiec", "ISIC_0024311": "vasc", "ISIC_0024312": "df", "ISIC_0024313": "bcc"}
DV_TEST = {"ISIC_0034524": "vasc", "ISIC_0034525": "nv", "ISIC_0034526": "mel"}


def test_ham10000_dataverse_layout_is_the_default_and_maps_every_diagnosis(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out" / "ham"
    make_ham_dataverse(raw, DV_TRAIN, DV_TEST, tab=True)
    m = ham10000.prepare_ham10000(raw, out, size=SIZE, workers=2)
    assert m["layout"] == {"train": "dataverse", "test": "dataverse"}
    assert m["class_names"] == HAM_COLUMNS == list(SETS["ham10000"].class_names)
    assert m["splits"]["train"]["per_class"] == {"MEL": 1, "NV": 2, "BCC": 1, "AKIEC": 1, "BKL": 1, "DF": 1, "VASC": 1}
    assert m["splits"]["test"]["count"] == 3  # the __MACOSX resource forks are not images
    tr, te = load_prepared(out, "train"), load_prepared(out, "test")
    assert tr.labels.tolist() == [HAM_DX_INDEX[DV_TRAIN[i]] for i in sorted(DV_TRAIN)]  # both parts, sorted by id
    assert te.labels.tolist() == [6, 1, 0]  # vasc, nv, mel: VASC = 6, NV = 1, MEL = 0
    for img, i in zip(tr.images.numpy(), sorted(DV_TRAIN)):  # each image keeps its own label
        assert np.abs(centre_colour(img) - (30 * HAM_DX_INDEX[DV_TRAIN[i]], 50, 90)).max() < 8
    assert "Harvard Dataverse" in m["notes"] and "metadata / metadata format" in m["notes"]
    assert {"HAM10000_metadata.tab", "ISIC2018_Task3_Test_GroundTruth.tab"} <= set(m["sources"])


def test_ham10000_dataverse_zips_given_with_from(tmp_path):
    """The five Dataverse files as downloaded (zips, the tables as the original CSV), in a folder given with --from."""
    from oecl_core.data import catalog

    staging, mine = tmp_path / "staging", tmp_path / "mine"
    make_ham_dataverse(staging, DV_TRAIN, DV_TEST, tab=False)
    mine.mkdir()
    for part in ("HAM10000_images_part_1", "HAM10000_images_part_2", "ISIC2018_Task3_Test_Images"):
        with zipfile.ZipFile(mine / f"{part}.zip", "w") as zf:
            test = part.startswith("ISIC")  # the test zip: one folder, and __MACOSX/ forks under the same names
            for f in sorted((staging / part).iterdir()):
                zf.write(f, f"{part}/{f.name}" if test else f.name)
            for f in sorted((staging / "__MACOSX" / part).iterdir()) if test else ():
                zf.write(f, f"__MACOSX/{part}/{f.name}")
    for table in ("HAM10000_metadata.csv", "ISIC2018_Task3_Test_GroundTruth.csv"):
        (mine / table).write_bytes((staging / table).read_bytes())
    m = catalog.prepare("ham10000", tmp_path / "data", local=mine, size=SIZE, workers=1)
    assert m["layout"] == {"train": "dataverse", "test": "dataverse"}
    assert m["splits"]["train"]["count"] == len(DV_TRAIN) and m["splits"]["test"]["count"] == len(DV_TEST)
    assert load_prepared(tmp_path / "data" / "ham10000", "test").labels.tolist() == [6, 1, 0]
    assert all(len(m["sources"][f"from/{z}"]["sha256"]) == 64 for z in
               ("HAM10000_images_part_1.zip", "ISIC2018_Task3_Test_Images.zip", "HAM10000_metadata.csv"))
    recorded = json.loads((tmp_path / "data" / "raw" / "ham10000" / "CHECKSUMS.json").read_text())
    assert {"HAM10000_images_part_2.zip", "ISIC2018_Task3_Test_GroundTruth.csv"} <= set(recorded)
    assert sorted(p.name for p in mine.iterdir() if not p.is_dir()) == sorted(  # nothing written into the user's folder
        ["HAM10000_images_part_1.zip", "HAM10000_images_part_2.zip", "ISIC2018_Task3_Test_Images.zip",
         "HAM10000_metadata.csv", "ISIC2018_Task3_Test_GroundTruth.csv"])


def test_ham10000_isic_challenge_layout_from_zips(tmp_path):
    staging, raw, out = tmp_path / "staging", tmp_path / "raw", tmp_path / "out" / "ham"
    train = {"ISIC_0024306": 1, "ISIC_0024307": 0, "ISIC_0024308": 4, "ISIC_0024309": 1}
    test = {"ISIC_0034524": 6, "ISIC_0034525": 1}
    make_ham(staging, train, test)
    raw.mkdir()
    for folder in sorted(staging.iterdir()):
        zip_folder(folder, raw / f"{folder.name}.zip")
    m = ham10000.prepare_ham10000(raw, out, size=SIZE, workers=2)
    assert m["layout"] == {"train": "isic_challenge", "test": "isic_challenge"}
    assert m["class_names"] == HAM_COLUMNS
    assert m["splits"]["train"]["per_class"] == {"MEL": 1, "NV": 2, "BKL": 1}
    assert set(m["sources"]) == {f.filename for f in ham10000.ISIC_SOURCES}
    assert "melanocytic nevi" in m["notes"] and "ISIC 2018 challenge" in m["notes"]
    tr = load_prepared(out, "train")
    assert tr.labels.tolist() == [1, 0, 4, 1]  # sorted by image id
    assert np.abs(centre_colour(tr.images[2].numpy()) - (120, 50, 90)).max() < 8
    assert load_prepared(out, "test").labels.tolist() == [6, 1]
    # the same four archives in a folder given with --from: linked as raw/ham10000/from/, found there
    from oecl_core.data import catalog

    again = catalog.prepare("ham10000", tmp_path / "data", local=raw, size=SIZE, workers=1)
    assert again["layout"] == m["layout"] and again["splits"] == m["splits"]
    assert (tmp_path / "data" / "raw" / "ham10000" / "from").is_symlink()


def test_ham10000_one_hot_columns_are_read_by_name(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("image,NV,MEL,BCC,AKIEC,BKL,DF,VASC\nISIC_1,0,1,0,0,0,0,0\nISIC_2,1.0,0,0,0,0,0,0\n")
    assert ham10000.ham_labels(path) == ("one-hot", {"ISIC_1": 0, "ISIC_2": 1})


def test_ham10000_prefers_the_papers_test_set_and_mixes_per_split(tmp_path):
    """ISIC's training images with Dataverse's test set is the paper's data too; with both test sets present, the
    Dataverse one (the paper's) is read."""
    raw = tmp_path / "raw"
    make_ham(raw, {"ISIC_0024306": 1, "ISIC_0024307": 0}, {"ISIC_0034524": 6, "ISIC_0034599": 1})
    make_ham_dataverse(tmp_path / "dv", DV_TRAIN, DV_TEST)
    for f in ("ISIC2018_Task3_Test_Images", "ISIC2018_Task3_Test_GroundTruth.tab"):
        (tmp_path / "dv" / f).rename(raw / f)
    m = ham10000.prepare_ham10000(raw, tmp_path / "out", size=SIZE, workers=1)
    assert m["layout"] == {"train": "isic_challenge", "test": "dataverse"}
    assert m["splits"]["test"]["count"] == len(DV_TEST) and m["splits"]["train"]["count"] == 2


def test_ham10000_missing_ground_truth_row(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    make_ham(raw, {"ISIC_0024306": 1, "ISIC_0024307": 0}, {"ISIC_0034524": 6}, truth_skip="ISIC_0024307")
    with pytest.raises(ValueError, match="ISIC_0024307"):
        ham10000.prepare_ham10000(raw, out, size=SIZE)
    assert_nothing_written(out)


def test_ham10000_truth_must_be_one_hot(tmp_path):
    raw = tmp_path / "raw"
    make_ham(raw, {"ISIC_0024306": 1}, {"ISIC_0034524": 6})
    csv_path = raw / "ISIC2018_Task3_Test_GroundTruth" / "ISIC2018_Task3_Test_GroundTruth.csv"
    csv_path.write_text("image," + ",".join(HAM_COLUMNS) + "\nISIC_0034524,1.0,1.0,0,0,0,0,0\n")
    with pytest.raises(ValueError, match="ISIC_0034524 is not labelled one-hot"):
        ham10000.prepare_ham10000(raw, tmp_path / "out", size=SIZE)


@pytest.mark.parametrize("header, body, expected", [
    ("image_id,diagnosis", "ISIC_0034524,nv", r"neither ISIC 2018 Task 3's one-hot .* nor HAM10000's metadata format"),
    ("lesion_id,image_id,dx", "HAM_1,ISIC_0034524,scc", r"diagnosis 'scc'; expected one of akiec, bcc"),
    ("image,MEL,NV", "ISIC_0034524,1,0", "expected the class columns MEL, NV, BCC"),
])
def test_ham10000_unreadable_tables_say_what_was_expected(tmp_path, header, body, expected):
    raw, out = tmp_path / "raw", tmp_path / "out"
    make_ham_dataverse(raw, DV_TRAIN, DV_TEST)
    (raw / "ISIC2018_Task3_Test_GroundTruth.tab").write_text(f"{header}\n{body}\n")
    with pytest.raises(ValueError, match=expected):
        ham10000.prepare_ham10000(raw, out, size=SIZE)
    assert_nothing_written(out)


def test_ham10000_without_files_names_both_layouts(tmp_path):
    raw = tmp_path / "raw"
    (raw / "ISIC2018_Task3_Test_Images").mkdir(parents=True)  # a test set, but no ground truth and no training set
    with pytest.raises(ManualDownloadRequired) as err:
        ham10000.prepare_ham10000(raw, tmp_path / "out", size=SIZE)
    text = str(err.value)
    assert "HAM10000_images_part_1" in text and "ISIC2018_Task3_Training_Input" in text and ham10000.DATAVERSE in text
    assert not SETS["ham10000"].automatic  # no citable Dataverse download link: `data prepare` stops with HOW


# --------------------------------------------------------------------------------------------- ImageNet OE

FOLDER_COLOURS = {"n01440764": (250, 0, 0), "n01443537": (0, 250, 0),  # ImageNet-1k synsets
                  "n09999991": (0, 0, 250), "n09999992": (250, 250, 0), "n09999993": (0, 250, 250)}


def make_imagenet(root: Path, per_folder: int = 3):
    for wnid, colour in FOLDER_COLOURS.items():
        for j in range(per_folder):
            jpeg(root / wnid / f"{wnid}_{j}.JPEG", (50 + 7 * j, 40), colour)


def stored_colours(out: Path) -> list[tuple]:
    images = load_prepared(out, "train").images.numpy()
    return [tuple(int(round(v / 50)) * 50 for v in centre_colour(img)) for img in images]


def test_imagenet22k_minus_1k_excludes_and_samples(tmp_path):
    raw = tmp_path / "raw"
    make_imagenet(raw)
    garbage(raw / "n09999991" / "n09999991_bad.JPEG")
    jpeg(raw / "n09999991" / "._n09999991_0.JPEG")  # never sampled
    allowed = {FOLDER_COLOURS["n09999991"], FOLDER_COLOURS["n09999992"]}
    m = imagenet_oe.prepare_imagenet22k_minus_1k(raw, tmp_path / "a", count=4, seed=1, exclude_wnids=["n09999993"],
                                                 size=SIZE)
    assert m["class_names"] == [] and m["splits"]["train"]["count"] == 4
    assert m["splits"]["train"]["per_class"] == {"-1": 4}
    assert set(stored_colours(tmp_path / "a")) <= allowed
    assert "2 ImageNet-1k synset folders present" in m["notes"] and "7 image files" in m["notes"]
    again = imagenet_oe.prepare_imagenet22k_minus_1k(raw, tmp_path / "b", count=4, seed=1, exclude_wnids="n09999993",
                                            size=SIZE, workers=1)
    assert np.array_equal(np.load(tmp_path / "a" / "train_images.npy"), np.load(tmp_path / "b" / "train_images.npy"))
    assert again["skipped"] == m["skipped"]
    # asking for every readable image: an unreadable draw is replaced, so exactly 6 are stored
    full = imagenet_oe.prepare_imagenet22k_minus_1k(raw, tmp_path / "c", count=6, seed=3, exclude_wnids=["n09999993"],
                                           size=SIZE)
    assert full["splits"]["train"]["count"] == 6 and len(full["skipped"]) <= 1
    assert sorted(stored_colours(tmp_path / "c")) == sorted([FOLDER_COLOURS["n09999991"]] * 3
                                                            + [FOLDER_COLOURS["n09999992"]] * 3)
    more = imagenet_oe.prepare_imagenet22k_minus_1k(raw, tmp_path / "d", count=100, size=SIZE)
    assert more["splits"]["train"]["count"] == 9 and "only 10 available" in more["notes"]


def test_imagenet1k_minus_30_leaves_out_imagenet30_by_default(tmp_path, capsys):
    """`data prepare imagenet1k_minus_30 --from DIR` with no option: the class folders of ImageNet-30's 30 wnids
    (imagenet30_wnids.txt) are left out, every other class folder is read."""
    from oecl_core.cli import main
    from oecl_core.data.prepared import read_manifest

    in30 = imagenet_oe.imagenet30_wnids()
    left_out = {in30["acorn"]: (0, 0, 250), in30["rotary_dial_telephone"]: (250, 250, 0),
                in30["volcano"]: (250, 0, 250)}
    kept = {"n01440764": (250, 0, 0), "n01443537": (0, 250, 0)}  # tench, goldfish: ImageNet-1k, not ImageNet-30
    mine = tmp_path / "ILSVRC2012"
    for wnid, colour in {**left_out, **kept}.items():
        for j in range(2):
            jpeg(mine / "train" / wnid / f"{wnid}_{j}.JPEG", (50 + 7 * j, 40), colour)
    root = tmp_path / "data"
    assert main(["data", "prepare", "imagenet1k_minus_30", "--root", str(root), "--from", str(mine),
                 "--option", f"size={SIZE}", "--option", "workers=1"]) == 0, capsys.readouterr().err
    m = read_manifest(root / "imagenet1k_minus_30")
    assert m["splits"]["train"]["count"] == 4
    assert set(stored_colours(root / "imagenet1k_minus_30")) == set(kept.values())
    assert "minus 30 class folders (ImageNet-30's 30 classes" in m["notes"]
    assert "5 class folders" in m["notes"] and "3 excluded, 2 used" in m["notes"]
    assert str((mine / "train").resolve()) in m["notes"]  # the user's folder, not the link to it


def test_imagenet1k_minus_30_exclude_wnids_replaces_the_list(tmp_path):
    raw = tmp_path / "raw"
    make_imagenet(raw / "train", per_folder=2)
    with pytest.raises(ValueError, match="exclude_wnids is empty"):
        imagenet_oe.prepare_imagenet1k_minus_30(raw, tmp_path / "out", exclude_wnids="", size=SIZE)
    m = imagenet_oe.prepare_imagenet1k_minus_30(raw, tmp_path / "out", exclude_wnids="n01440764,n09999991 n09999992",
                                       count=10, size=SIZE)
    assert m["splits"]["train"]["count"] == 4 and "(exclude_wnids" in m["notes"]
    assert set(stored_colours(tmp_path / "out")) == {FOLDER_COLOURS["n01443537"], FOLDER_COLOURS["n09999993"]}


def test_imagenet30_wnids_file():
    """30 pairs (wnid, ImageNet-30 folder), the folders those of ImageNet-30, each wnid an ImageNet-1k synset whose
    ImageNet-1k name is the folder's (timm's imagenet_synset_to_lemma.txt, where timm is installed)."""
    pairs = imagenet_oe.imagenet30_wnids()
    assert tuple(pairs) == imagenet30.CLASSES == SETS["imagenet30"].class_names
    assert len(set(pairs.values())) == 30 and set(pairs.values()) <= set(imagenet_oe.imagenet1k_wnids())
    assert pairs["acorn"] == "n12267677" and pairs["rotary_dial_telephone"] == "n03187595"
    header = imagenet_oe.IMAGENET30_FILE.read_text()
    assert "hendrycks/ss-ood" in header and "one_class_train/symlink_to_data.py" in header
    assert dict(SETS["imagenet1k_minus_30"].pipeline_options)["exclude_wnids"] == ",".join(pairs.values())
    timm_data = pytest.importorskip("timm.data")
    lemmas = {}
    for line in (Path(timm_data.__file__).parent / "_info" / "imagenet_synset_to_lemma.txt").read_text().splitlines():
        wnid, _, lemma = line.partition("\t")
        lemmas[wnid] = [n.strip().lower().replace(" ", "_") for n in lemma.split(",")]
    for folder, wnid in pairs.items():
        expected = "dial_telephone" if folder == "rotary_dial_telephone" else folder  # ImageNet-1k: "dial telephone"
        assert expected in lemmas[wnid], (folder, wnid, lemmas[wnid])


def test_reservoir_sample_is_uniform():
    rng = random.Random(0)
    hits = np.zeros(6)
    for _ in range(3000):
        sample = imagenet_oe.reservoir_sample(iter(range(6)), 2, rng)
        assert len(set(sample)) == 2
        hits[sample] += 1
    assert np.abs(hits - 1000).max() < 120, hits
    assert sorted(imagenet_oe.reservoir_sample(range(3), 5, rng)) == [0, 1, 2]


def test_imagenet1k_synsets_file():
    lines = imagenet_oe.SYNSETS_FILE.read_text().splitlines()
    assert len(lines) == 1000 and len(set(lines)) == 1000
    assert all(re.fullmatch(r"n\d{8}", w) for w in lines)
    assert lines[0] == "n01440764" and imagenet_oe.imagenet1k_wnids() == lines


# --------------------------------------------------------------------------------------------- MVTec-AD

def make_mvtec(root: Path, categories=mvtec.CATEGORIES):
    """Each category: 2 good training images (grey), test/good 1 image (grey), test/<defect> 1 image (red)."""
    for c in categories:
        for i in range(2):
            jpeg(root / c / "train" / "good" / f"00{i}.png", (40, 40))
        jpeg(root / c / "test" / "good" / "000.png", (40, 40))
        jpeg(root / c / "test" / "crack" / "000.png", (40, 40), color=(250, 0, 0))
        jpeg(root / c / "ground_truth" / "crack" / "000_mask.png", (40, 40), color=(255, 255, 255))


def test_mvtec_from_the_archive_flags_defects(tmp_path):
    src, raw, out = tmp_path / "src", tmp_path / "raw", tmp_path / "out"
    make_mvtec(src)
    garbage(src / "cable" / "test" / "crack" / "001.png")
    raw.mkdir()
    with tarfile.open(raw / mvtec.ARCHIVE, "w:xz") as tf:
        for c in mvtec.CATEGORIES:
            tf.add(src / c, arcname=c)
    m = mvtec.prepare_mvtec(raw, out, size=SIZE, workers=2, verify=False)
    assert m["class_names"] == list(mvtec.CATEGORIES) and len(m["class_names"]) == 15
    train, test = load_prepared(out, "train"), load_prepared(out, "test")
    assert len(train) == 30 and not train.defective.any()
    assert len(test) == 30 and m["splits"]["test"]["defective"] == 15 == int(test.defective.sum())
    assert len(m["skipped"]) == 1 and "cable/test/crack/001.png" in m["skipped"][0]
    # the flags follow the pixels: every defective test image is the red one, every good one grey
    red = np.array([centre_colour(im)[0] > 200 and centre_colour(im)[1] < 60 for im in test.images.numpy()])
    assert red.tolist() == test.defective.tolist()
    assert test.labels.tolist() == [k for k in range(15) for _ in range(2)]


def test_mvtec_needs_every_category(tmp_path):
    make_mvtec(tmp_path / "raw", categories=mvtec.CATEGORIES[:3])
    with pytest.raises(ValueError, match="carpet"):
        mvtec.prepare_mvtec(tmp_path / "raw", tmp_path / "out", size=SIZE, verify=False)
    assert_nothing_written(tmp_path / "out")


def test_defects_benchmark_and_table7_facts(tmp_path, monkeypatch):
    from oecl_core.data import build_split
    from oecl_core.data.benchmarks import defect_detection

    make_mvtec(tmp_path / "raw", categories=mvtec.CATEGORIES)
    mvtec.prepare_mvtec(tmp_path / "raw", tmp_path / "data" / "mvtec", size=SIZE, verify=False)
    monkeypatch.setenv("OECL_DATA", str(tmp_path / "data"))
    split = build_split("mvtec", "defect_detection", 3, oe="none", size=SIZE)  # carpet: its own images only
    assert len(split.train) == 2 and len(split.test) == 2 and set(split.test_labels.tolist()) == {3}
    assert split.test_is_normal.tolist() == [False, True]  # test/crack/ sorts before test/good/
    train = load_prepared(tmp_path / "data" / "mvtec", "train")
    unflagged = ImageSet(train.images, train.labels, train.class_names)  # a data set without its own anomalies
    with pytest.raises(ValueError, match="defect flags"):
        defect_detection(train, unflagged, 0)
    # Table VII's OE: ImageNet-22k minus 1k (the text, eoe's DTD / MVTec-AD runners); ImageNet-1k stays a variant
    assert SETS["mvtec"].default_oe == SETS["dtd224"].default_oe == "imagenet22k_minus_1k"
    assert resolve_config("paper", "mvtec", "oecl", benchmark="defect_detection", cls=0).oe == "imagenet22k_minus_1k"
    variant = run_config("paper", Run("defect_detection~oe=imagenet1k", "mvtec", "oecl", 0, 0))
    assert variant.oe == "imagenet1k" and "imagenet1k" in SETS


# --------------------------------------------------------------------------------------------- missing input

@pytest.mark.parametrize("name, expected", [
    ("dior", "JPEGImages-trainval"), ("raabin", "TestA"), ("imagenet30", "one_class_train"),
    ("ham10000", "HAM10000_images_part_1"), ("imagenet22k_minus_1k", "<wnid>"),
    ("imagenet1k_minus_30", "<wnid>"), ("imagenet1k", "<wnid>"), ("mvtec", "bottle"),
])
def test_missing_input_names_the_folder_and_writes_nothing(tmp_path, name, expected):
    raw, out = tmp_path / "raw", tmp_path / "prepared" / name
    raw.mkdir()
    if name == "raabin":
        jpeg(raw / "Train" / "Basophil" / "a.jpg")  # only the test half is missing
    with pytest.raises(ManualDownloadRequired) as err:
        SETS[name].prepare(raw, out)
    assert expected in str(err.value) and SETS[name].instructions in str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert_nothing_written(out)
    assert not (tmp_path / "prepared").exists()


def test_registry_contract():
    assert all(f.gdrive_id for f in SETS["imagenet30"].sources + SETS["dior"].sources)
    assert [f.filename for f in SETS["raabin"].sources] == ["Train.rar", "TestA.rar"]
    assert all(f.url.startswith("https://isic-challenge-data.s3.amazonaws.com/2018/") for f in ham10000.ISIC_SOURCES)
    assert all(not f.locations and f.filename in SETS["ham10000"].instructions for f in SETS["ham10000"].sources)
    assert SETS["imagenet22k_minus_1k"].sources == () and SETS["imagenet1k"].sources == ()
    for name in ("imagenet30", "dior"):
        for f in SETS[name].sources:
            assert f.gdrive_id in SETS[name].instructions
