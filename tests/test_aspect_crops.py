"""224-px images keep their aspect ratio (docs/fidelity.md, "224-px images"): stored on a canvas with a box per image,
training crops over the whole image, the test view the authors' Resize(256) + CenterCrop(224)."""
import json

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from oecl_core.augment import Canvas, CropFlipAugment, SimCLRAugment, cat_images, rotate90, to_float
from oecl_core.data.core import (MAX_ASPECT, CanvasStore, aspect_image, load_image_folder, read_image, resize_uint8,
                                 stack_images)
from oecl_core.data.prepared import (MANIFEST, OutdatedPreparation, is_prepared, load_prepared, read_manifest,
                                     write_prepared)
from oecl_core.methods import METHODS
from oecl_core.scores import center_crop

S, CROP = 256, 224
NO_COLOUR = dict(jitter_p=0.0, grayscale_p=0.0)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """A smooth random RGB image of w x h pixels (resampling it is well behaved)."""
    small = np.random.default_rng(seed).integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.BILINEAR)


def coordinates(w: int, h: int) -> Image.Image:
    """An image that says where each pixel is: red = its column, green = its row (scaled to 0..250), blue = 255, so
    that a crop shows which part of the image it came from, and blue < 255 would show that it read the zero canvas
    around the image."""
    x = np.linspace(0, 250, w).round().astype(np.uint8)
    y = np.linspace(0, 250, h).round().astype(np.uint8)
    rgb = np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y[:, None], (h, w)), np.full((h, w), 255, np.uint8)], 2)
    return Image.fromarray(np.ascontiguousarray(rgb))


def canvas_of(images, size=S, copies=1) -> Canvas:
    """The images stored at `size` (each `copies` times) on a Canvas."""
    arrays = [aspect_image(im, size) for im in images] * copies
    store = CanvasStore.new(len(arrays), size)
    for i, a in enumerate(arrays):
        store[i] = a
    out = store.tensor()
    assert isinstance(out, Canvas)  # (images that all fill the canvas come as a plain tensor)
    return out


def own_images(canvas: Canvas) -> list[torch.Tensor]:
    """Each image of a Canvas as its own (C, h, w) tensor, in its own orientation."""
    out = []
    for image, (rows, cols, transposed) in zip(canvas.images, canvas.boxes.tolist()):
        x = image[:, :rows, :cols]
        out.append(x.transpose(1, 2) if transposed else x)
    return out


# ------------------------------------------------------------------------------------------------ storage

def test_stored_image_is_torchvisions_resize_and_the_canvas_holds_each_whole():
    shapes = [(512, 256), (256, 512), (400, 300), (300, 300), (900, 300)]  # (w, h): 2:1, 1:2, 4:3, square, 3:1
    ims = [photo(w, h, i) for i, (w, h) in enumerate(shapes)]
    for im in ims:  # the same PIL call as torchvision's Resize(256): identical bytes
        assert np.array_equal(aspect_image(im, S), np.asarray(T.Resize(S)(im)).transpose(2, 0, 1))
    canvas = canvas_of(ims)
    width = int(S * MAX_ASPECT)
    assert tuple(canvas.shape) == (5, 3, S, width)  # one landscape canvas: portrait images stored transposed
    assert canvas.boxes.tolist() == [[S, 512, 0], [S, 512, 1], [S, 341, 0], [S, S, 0], [S, width, 0]]
    for i, x in enumerate(own_images(canvas)[:4]):
        assert torch.equal(x, torch.from_numpy(aspect_image(ims[i], S).copy()))
    # the 3:1 image keeps its centre 2:1 (CenterCrop of the resized image to the cap)
    assert torch.equal(own_images(canvas)[4], torch.from_numpy(np.asarray(T.CenterCrop((S, width))(T.Resize(S)(ims[4])))
                                                               .transpose(2, 0, 1).copy()))
    images, boxes, info = stack_images([aspect_image(im, S) for im in ims], S).finish()
    assert info == {"aspect_ratio": "kept", "max_aspect": MAX_ASPECT, "canvas": [S, width], "transposed": 1,
                    "capped": 1, "boxes": True}
    # the canvas around each image is zero
    assert int(canvas.images[2, :, :, 341:].abs().sum()) == 0


def test_squares_need_no_boxes_and_32px_reading_stays_square(tmp_path):
    store = stack_images([aspect_image(photo(300, 300, i), S) for i in range(3)], S)
    images, boxes, info = store.finish()
    assert boxes is None and images.shape == (3, 3, S, S) and not info["boxes"]
    assert isinstance(store.tensor(), torch.Tensor)  # all squares: a plain tensor, as before
    path = tmp_path / "wide.png"
    photo(64, 32).save(path)
    assert read_image(path, 32).shape == (3, 32, 32)  # the 32-px pipeline: the centre square, as before
    assert read_image(path, 96).shape == (3, 96, 192)


def test_image_folders_are_read_the_same_way(tmp_path):
    for cls, (w, h) in (("a", (120, 60)), ("b", (60, 90))):
        (tmp_path / "root" / cls).mkdir(parents=True)
        photo(w, h).save(tmp_path / "root" / cls / "x.png")
    small = load_image_folder(tmp_path / "root", 32)
    assert isinstance(small.images, torch.Tensor) and tuple(small.images.shape) == (2, 3, 32, 32)
    big = load_image_folder(tmp_path / "root", 96)
    assert isinstance(big.images, Canvas) and big.images.boxes.tolist() == [[96, 192, 0], [96, 144, 1]]


# ------------------------------------------------------------------------------------------------ the test view

def test_test_view_is_resize_256_then_center_crop_224():
    shapes = [(512, 256), (256, 512), (500, 375), (375, 500), (333, 500), (643, 301), (300, 300)]
    ims = [photo(w, h, i) for i, (w, h) in enumerate(shapes)]
    canvas = canvas_of(ims)
    views = center_crop(canvas, CROP)  # what scoring and the norm probes feed the network
    reference = T.Compose([T.Resize(S), T.CenterCrop(CROP)])
    for im, view in zip(ims, views):
        # exact: the stored image is torchvision's own PIL resize, and both crops take the same whole pixels
        # (torchvision rounds the offset half to even, as Canvas.centre does)
        assert torch.equal(view, torch.from_numpy(np.asarray(reference(im)).transpose(2, 0, 1).copy()))
    # and on the float batch the scores use
    torch.testing.assert_close(center_crop(to_float(canvas), CROP), to_float(views), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------ training crops

def horizontal_extent(crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The leftmost and rightmost image column (0..1 of the image's width) each crop of a coordinates() image shows."""
    red = crops[:, 0] * 255 / 250
    return red.flatten(1).min(1).values, red.flatten(1).max(1).values


@pytest.mark.parametrize("with_square", [False, True])
def test_training_crops_reach_outside_the_centre_square_of_a_2_to_1_image(with_square):
    wide = coordinates(1024, 512)  # stored 512 x 256: its centre square spans columns 0.25 .. 0.75
    n = 128
    store = stack_images([aspect_image(wide, S)] * n + [aspect_image(coordinates(300, 300), S)] * with_square, S)
    x = to_float(store.tensor())  # 2:1 images alone fill their tensor; with a square one they are a Canvas
    assert isinstance(x, Canvas) == with_square
    for augment in (SimCLRAugment(output_size=CROP, **NO_COLOUR), CropFlipAugment(CROP)):
        crops = augment(x, gen(0))[:n]
        assert crops.shape == (n, 3, CROP, CROP)
        lo, hi = horizontal_extent(crops)
        assert (lo < 0.2).sum() > 5 and (hi > 0.8).sum() > 5, augment  # well outside the centre square
        assert float(lo.min()) < 0.01 and float(hi.max()) > 0.99, augment  # up to both ends of the image
        torch.testing.assert_close(crops[:, 2], torch.ones_like(crops[:, 2]), rtol=0, atol=1e-5)  # no zero canvas
    # the former storage (the centre square) could not: every crop stays inside it
    square = to_float(torch.from_numpy(np.asarray(T.CenterCrop(S)(T.Resize(S)(wide))).transpose(2, 0, 1).copy()))
    lo, hi = horizontal_extent(SimCLRAugment(output_size=CROP, **NO_COLOUR)(square.expand(n, -1, -1, -1), gen(0)))
    assert float(lo.min()) > 0.24 and float(hi.max()) < 0.76


def test_crops_never_read_the_canvas_around_an_image():
    # elongated, portrait (stored transposed) and square images share one canvas, most of each row padding
    ims = [coordinates(w, h) for w, h in ((260, 520), (520, 260), (256, 256), (300, 256))]
    x = to_float(canvas_of(ims, copies=8))
    augments = [SimCLRAugment(output_size=CROP, **NO_COLOUR), SimCLRAugment(crop_scale_min=1.0, output_size=CROP,
                                                                               **NO_COLOUR),
                SimCLRAugment(crop_scale_min=0.08, crop_scale_max=0.08, output_size=CROP, **NO_COLOUR),
                CropFlipAugment(CROP), CropFlipAugment(CROP, stretch=S)]
    for augment in augments:
        for seed in range(2):
            blue = augment(x, gen(seed))[:, 2]
            torch.testing.assert_close(blue, torch.ones_like(blue), rtol=0, atol=1e-5, msg=repr(augment))
    blue = center_crop(x, CROP)[:, 2]
    assert torch.equal(blue, torch.ones_like(blue))


def test_a_canvas_crop_is_the_crop_of_the_image_alone():
    ims = [photo(520, 260, 1), photo(260, 390, 2), photo(300, 300, 3)]
    canvas = to_float(canvas_of(ims))
    alone = [to_float(x[None]) for x in own_images(canvas_of(ims))]
    for augment in (SimCLRAugment(output_size=CROP),
                    SimCLRAugment(crop_scale_min=0.5, flip_p=1.0, output_size=CROP, **NO_COLOUR)):
        for seed in range(2):
            u = torch.rand(len(ims), SimCLRAugment._N_DRAWS, generator=gen(seed))
            out = augment(canvas, gen(seed))
            for i, x in enumerate(alone):  # the plain path on the image as its own tensor, with the same draws
                expected = augment._photometric(augment._crop_flip(x, u[i:i + 1, 0:5]), u[i:i + 1, 5:11])
                torch.testing.assert_close(out[i:i + 1], expected, rtol=0, atol=1e-5)
    crop = CropFlipAugment(CROP, noise=0.001)
    for i, x in enumerate(alone):  # whole-pixel crops: exact
        for seed in range(3):
            assert torch.equal(crop(canvas[i], gen(seed)), crop(x, gen(seed)))


def test_random_crop_positions_cover_the_whole_image_uniformly():
    # 64 px on the shorter side, crops of 56 (the geometry of 256 / 224, smaller); a square image forces a Canvas
    canvas = to_float(canvas_of([coordinates(128, 64), coordinates(64, 64)], size=64, copies=1000))
    lo, _ = horizontal_extent(CropFlipAugment(56, flip_p=0.0)(canvas, gen(0))[0::2])
    left = (lo * 127).round()  # RandomCrop's left edge: uniform over 0 .. 128 - 56
    assert int(left.min()) == 0 and int(left.max()) == 72
    counts = torch.histc(left, bins=4, min=0, max=72)
    assert float(counts.min()) > 0.8 * 250, counts


def test_stretch_crop_is_eoes_clip_crop():
    im = photo(512, 256, 7)  # eoe's CLIP at 224 px: Resize((256, 256)), RandomCrop(224)
    canvas = to_float(canvas_of([im, photo(300, 300)]))[0]
    stretched = to_float(
        torch.from_numpy(np.asarray(im.resize((S, S), Image.BILINEAR)).transpose(2, 0, 1).copy())[None])
    for seed in range(5):
        u = torch.rand(1, 8, generator=gen(seed))
        top, left = (int(v * (S - CROP + 1)) for v in u[0, :2].tolist())
        out = CropFlipAugment(CROP, flip_p=0.0, stretch=S)(canvas, gen(seed))
        expected = stretched[..., top:top + CROP, left:left + CROP]
        # one bilinear resampling against PIL's antialiased resize then a whole-pixel crop
        assert (out - expected).abs().mean() < 0.01


# ------------------------------------------------------------------------------------------------ Canvas operations

def test_rotations_indexing_cat_and_resize_of_a_canvas():
    ims = [photo(400, 200, 1), photo(200, 300, 2), photo(256, 256, 3)]
    canvas = canvas_of(ims, 64)
    for k in range(5):
        for x, original in zip(own_images(rotate90(canvas, k)), own_images(canvas)):
            assert torch.equal(x, torch.rot90(original, k, (1, 2)))
    picked = canvas[torch.tensor([2, 0])]
    assert picked.boxes.tolist() == [canvas.boxes[2].tolist(), canvas.boxes[0].tolist()] and len(canvas[1]) == 1
    both = cat_images([canvas, torch.zeros(2, 3, 80, 80, dtype=torch.uint8)])
    assert tuple(both.shape) == (5, 3, 80, 128) and both.boxes[3:].tolist() == [[80, 80, 0]] * 2
    assert torch.equal(own_images(both)[1], own_images(canvas)[1])
    smaller = resize_uint8(canvas, 32)
    assert smaller.boxes.tolist() == [[32, 64, 0], [32, 48, 1], [32, 32, 0]]
    assert resize_uint8(canvas, 64) is canvas
    with pytest.raises(ValueError, match="at least"):
        center_crop(canvas, 65)


# ------------------------------------------------------------------------------------------------ prepared data

def test_prepared_canvas_round_trip_and_old_format_refused(tmp_path):
    ims = [photo(512, 256, 1), photo(256, 384, 2)]
    store = stack_images([aspect_image(im, 96) for im in ims], 96)
    m = write_prepared(tmp_path / "x", "x", {"train": (store, np.array([0, 1]))}, ["a", "b"])
    assert m["format"] == 2 and m["splits"]["train"]["storage"]["transposed"] == 1
    assert m["splits"]["train"]["image_size"] == [96, 192] and (tmp_path / "x" / "train_boxes.npy").exists()
    loaded = load_prepared(tmp_path / "x", "train").images
    assert isinstance(loaded, Canvas) and loaded.boxes.tolist() == [[96, 192, 0], [96, 144, 1]]
    # a folder written by the former code (no format, 224-px images as squares) is refused, never read as squares
    manifest = json.loads((tmp_path / "x" / MANIFEST).read_text())
    del manifest["format"]
    (tmp_path / "x" / MANIFEST).write_text(json.dumps(manifest))
    assert not is_prepared(tmp_path / "x")
    with pytest.raises(OutdatedPreparation, match="python -m oecl_core data prepare x"):
        load_prepared(tmp_path / "x", "train")
    # 32-px data of the former code is laid out as now: still read
    write_prepared(tmp_path / "y", "y", {"train": (np.zeros((2, 3, 32, 32), np.uint8), np.array([0, 1]))}, ["a", "b"])
    manifest = json.loads((tmp_path / "y" / MANIFEST).read_text())
    del manifest["format"]
    (tmp_path / "y" / MANIFEST).write_text(json.dumps(manifest))
    assert is_prepared(tmp_path / "y") and read_manifest(tmp_path / "y")["name"] == "y"


# ------------------------------------------------------------------------------------------------ every method

def canvas_split(n_train=8, n_test=6, n_oe=8):
    """A 224-px split whose images are landscape, portrait and square, on one canvas each part."""
    from oecl_core.data import Split

    shapes = [(512, 256), (256, 384), (256, 256), (384, 256)]

    def part(n, seed):
        return canvas_of([photo(w, h, seed + i) for i, (w, h) in enumerate(shapes)], copies=n // len(shapes) + 1)[:n]

    return Split(part(n_train, 0), part(n_test, 10), torch.arange(n_test) < n_test // 2,
                 torch.zeros(n_test, dtype=torch.long), part(n_oe, 20), description="canvas")


def nan_outside(canvas: Canvas) -> Canvas:
    """A float copy of a Canvas whose canvas around each image is NaN."""
    x = canvas.images.float().clone()
    rows, cols, _ = canvas.boxes.long().unbind(1)
    r = torch.arange(x.shape[2]).view(1, -1, 1)
    c = torch.arange(x.shape[3]).view(1, 1, -1)
    outside = (r >= rows.view(-1, 1, 1)) | (c >= cols.view(-1, 1, 1))
    x[outside.unsqueeze(1).expand_as(x)] = float("nan")
    return Canvas(x, canvas.boxes)


def views_stay_in_boxes(monkeypatch):
    """Makes every crop of a Canvas in the run (resampled, whole-pixel and centre crops) check that it reads none
    of the canvas around an image: the same crop of a copy that is NaN there must hold no NaN."""
    from oecl_core import augment as aug

    resample, crop = aug._sample_canvas, Canvas.crop

    def checked_resample(images, theta, size):
        assert not torch.isnan(resample(nan_outside(images), theta, size)).any(), "a crop read the canvas"
        return resample(images, theta, size)

    def checked_crop(self, top, left, size, pad=0):
        if pad == 0:  # (with padding the zeros around an image are read on purpose: RandomCrop's padding)
            assert not torch.isnan(crop(nan_outside(self), top, left, size)).any(), "a crop read the canvas"
        return crop(self, top, left, size, pad)

    monkeypatch.setattr(aug, "_sample_canvas", checked_resample)
    monkeypatch.setattr(Canvas, "crop", checked_crop)


# every method that trains from scratch without class labels (SupCLR's labels and CLIP's weights: below / test_clip)
TRAINED = [m for m, cls in METHODS.items() if cls.from_scratch and cls.trains and not cls.needs_train_labels]


@pytest.mark.filterwarnings("ignore:.*under-trained")
@pytest.mark.parametrize("method", TRAINED)
def test_every_method_trains_and_scores_on_aspect_true_images(method, tmp_path, monkeypatch, one_torch_thread):
    from oecl_core.config import resolve_config
    from oecl_core.runner import score_run
    from oecl_core.train import train

    views_stay_in_boxes(monkeypatch)
    cfg = resolve_config("paper", "dior", method, epochs=1, batch_size=4, oe_batch_size=4, width=0.0625, n_aug=1,
                         log_samples=4, device="cpu")
    assert (cfg.image_size, cfg.stored_size) == (CROP, S)
    split = canvas_split()
    result = train(cfg, split, tmp_path, progress=False)
    assert result.finished and np.isfinite(result.log[-1]["loss"])
    assert np.isfinite([result.log[-1][k] for k in ("norm_id", "norm_ood")]).all()
    metrics = score_run(cfg, tmp_path, split=split, model=result.model, progress=False)
    assert all(0.0 <= v <= 1.0 for v in metrics["auroc"].values()), metrics["auroc"]


def test_csi_at_224_px_crops_each_view_once_then_rotates_it():
    from oecl_core.config import resolve_config
    from oecl_core.methods import get_method

    cfg = resolve_config("paper", "dior", "csi")
    csi = get_method("csi")
    csi.configure(cfg)
    x = to_float(canvas_of([coordinates(512, 256), coordinates(256, 256)]))
    views = csi.views(x, None, csi.train_augment(cfg), gen(0))
    assert views.id1.shape == (8, 3, CROP, CROP) and views.targets.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    # colours are off here for the check: one crop per view in its four rotations (CSI's ImageNet loader crops before
    # its GPU rotations)
    plain = type(csi.train_augment(cfg))(crop_scale_min=cfg.crop_scale_min, flip_p=0.5, output_size=CROP, **NO_COLOUR)
    v = csi.views(x, None, plain, gen(0)).id1
    for k in range(4):
        assert torch.equal(v[2 * k:2 * k + 2], rotate90(v[0:2], k))
    # images of different shapes read at the training size itself: crop, then the random flip CSI puts first
    at_size = resolve_config("paper", "dior", "csi", stored_size=0)
    csi.configure(at_size)
    assert csi.train_augment(at_size).flip_p == 0.0
    flips = [csi.views(x, None, csi.train_augment(at_size), gen(seed)).id1 for seed in range(2)]
    assert flips[0].shape == (8, 3, CROP, CROP) and not torch.equal(flips[0], flips[1])


@pytest.mark.filterwarnings("ignore:.*under-trained")
def test_clip_at_224_px_stretches_for_training_and_scores_the_centre_square(tmp_path, monkeypatch, one_torch_thread):
    pytest.importorskip("open_clip")
    from test_clip import tiny_clip

    from oecl_core.config import resolve_config
    from oecl_core.methods import clip as clip_method
    from oecl_core.runner import score_run
    from oecl_core.train import train

    monkeypatch.setattr(clip_method, "clip_backbone", tiny_clip)
    views_stay_in_boxes(monkeypatch)
    cfg = resolve_config("paper", "dior", "bce_cl", epochs=1, batch_size=4, oe_batch_size=4, log_samples=4,
                         device="cpu")
    assert clip_method.BCECLIP().train_augment(cfg).stretch == S
    x = canvas_of([photo(512, 256, 1), photo(256, 300, 2)])
    assert torch.equal(clip_method.BCECLIP().test_view(x, cfg), center_crop(x, S))  # CLIP's own CenterCrop
    split = canvas_split()
    result = train(cfg, split, tmp_path, progress=False)
    metrics = score_run(cfg, tmp_path, split=split, model=result.model, progress=False)
    assert 0.0 <= metrics["auroc"]["p_class_prompt"] <= 1.0


@pytest.mark.filterwarnings("ignore:.*under-trained")
def test_a_224_px_data_set_prepared_aspect_true_runs_end_to_end(tmp_path, monkeypatch, one_torch_thread):
    from oecl_core.config import resolve_config
    from oecl_core.data import build_split
    from oecl_core.data.sets import imagenet30, imagenet_oe
    from oecl_core.runner import run_experiment

    raw, data = tmp_path / "raw", tmp_path / "data"
    for split, n in ((imagenet30.IN30_TRAIN, 4), (imagenet30.IN30_TEST, 2)):
        for k, c in enumerate(("airliner", "banjo")):
            for i in range(n):
                w, h = ((300, 150), (150, 225), (200, 200), (260, 195))[i]
                (raw / "in30" / split / c).mkdir(parents=True, exist_ok=True)
                photo(w, h, 10 * k + i).save(raw / "in30" / split / c / f"{i}.JPEG")
    m = imagenet30.prepare_imagenet30(raw / "in30", data / "imagenet30", workers=1)
    storage = m["splits"]["train"]["storage"]
    assert m["format"] == 2 and storage["canvas"] == [S, 2 * S] and storage["transposed"] == 2
    assert "aspect ratio kept" in m["notes"]
    for i, wnid in enumerate(("n09999991", "n09999992")):  # an OE pool of ImageNet-22k minus 1k, also aspect-true
        (raw / "oe" / wnid).mkdir(parents=True)
        for j, (w, h) in enumerate(((400, 200), (200, 260))):
            photo(w, h, 50 + 2 * i + j).save(raw / "oe" / wnid / f"{j}.JPEG")
    oe = imagenet_oe.prepare_imagenet22k_minus_1k(raw / "oe", data / "imagenet22k_minus_1k", count=4)
    assert oe["splits"]["train"]["storage"]["transposed"] == 2
    monkeypatch.setenv("OECL_DATA", str(data))
    split = build_split("imagenet30", "one_vs_rest", 1, size=S)
    assert isinstance(split.train, Canvas) and isinstance(split.test, Canvas) and isinstance(split.oe, Canvas)
    assert len(split.train) == 4 and len(split.test) == 4 and len(split.oe) == 4
    cfg = resolve_config("paper", "imagenet30", "oecl", cls=1, epochs=1, batch_size=4, oe_batch_size=4, width=0.0625,
                         n_aug=1, log_samples=4, device="cpu")
    metrics = run_experiment(cfg, tmp_path / "run", progress=False)
    assert metrics["split"]["n_oe"] == 4 and 0.0 <= metrics["auroc"]["s_mu"] <= 1.0


def test_the_planner_says_what_the_aspect_true_images_cost(tmp_path, monkeypatch):
    from oecl_core import plan

    monkeypatch.setenv("OECL_DATA", str(tmp_path / "nothing"))
    upper = plan.footprint("imagenet30", S)  # not prepared: ImageNet-30's split at the widest canvas
    assert upper.counts == (39_000, 3_000) and not upper.measured
    assert (upper.square_bytes, upper.bytes()) == (3 * S * S, 3 * S * 2 * S)
    assert plan.footprint("imagenet22k_minus_1k", S).counts == (50_000,)  # the OE preparers' default count
    assert plan.footprint("cifar10", 32) is None  # stored square
    store = stack_images([aspect_image(photo(600, 450, i), S) for i in range(3)], S)  # HAM10000's 600 x 450
    write_prepared(tmp_path / "ham10000", "ham10000", {"train": (store, np.zeros(3)), "test": (store[:1], np.zeros(1))},
                   ["a"])
    measured = plan.footprint("ham10000", S, tmp_path)
    assert measured.measured and measured.widths == (341, 341) and measured.total() == 4 * 3 * S * 341


def test_the_plan_command_prints_the_memory_of_the_224_px_data(capsys, monkeypatch, tmp_path):
    from oecl_core.cli import main

    monkeypatch.setenv("OECL_DATA", str(tmp_path))  # nothing prepared: upper bounds

    assert main(["plan", "table7", "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    assert "images that keep their aspect ratio" in out and "mvtec" in out and "imagenet22k_minus_1k" in out
    assert "196,608 -> <= 393,216" in out and "largest on the GPU" in out


def test_an_old_224_px_preparation_is_listed_and_refused_with_what_to_run(tmp_path, monkeypatch):
    from oecl_core.data import build_split, catalog

    folder = tmp_path / "mvtec"
    write_prepared(folder, "mvtec", {"train": (np.zeros((2, 3, S, S), np.uint8), np.array([0, 1])),
                                     "test": (np.zeros((2, 3, S, S), np.uint8), np.array([0, 1]))}, ["a", "b"])
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["format"]  # as the former code wrote it
    (folder / MANIFEST).write_text(json.dumps(manifest))
    status = catalog.status("mvtec", tmp_path)
    assert status.outdated and not status.prepared
    assert "prepared in an old format" in catalog.status_table(tmp_path)
    monkeypatch.setenv("OECL_DATA", str(tmp_path))
    with pytest.raises(OutdatedPreparation, match=r"centre square.*data prepare mvtec"):
        build_split("mvtec", "defect_detection", 0, oe="none")


def test_dior_keeps_each_whole_crop(tmp_path):
    from test_sets_224px import DIOR_IMAGES, make_dior

    from oecl_core.data.sets import dior

    raw = tmp_path / "raw"
    make_dior(raw, annotations_as_zip=False)
    m = dior.prepare_dior(raw, tmp_path / "dior", size=96, min_crops=2, workers=1)
    train = load_prepared(tmp_path / "dior", "train").images
    assert isinstance(train, Canvas)
    # the kept training crops in order, each cut from its image as the preparer cuts it (PIL box, clipped)
    expected = []
    for i in ("00001", "00002", "00003"):
        with Image.open(raw / "JPEGImages-trainval" / f"{i}.jpg") as im:
            expected += [aspect_image(im.convert("RGB").crop(b), 96) for n, b, _ in DIOR_IMAGES[i][1]
                         if b[2] - b[0] > 120 and b[3] - b[1] > 120 and n != "vehicle"]
    assert [tuple(x.shape) for x in own_images(train)] == [e.shape for e in expected]
    for x, e in zip(own_images(train), expected):
        assert torch.equal(x, torch.from_numpy(e.copy()))
    portrait = sum(e.shape[1] > e.shape[2] for e in expected)
    assert portrait == m["splits"]["train"]["storage"]["transposed"] == 3  # 130 x 200, 150 x 180, 170 x 180
    assert "aspect ratio kept" in m["notes"]
