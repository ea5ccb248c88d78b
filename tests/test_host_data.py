"""No tensor made from host data and no value read back inside a training step or a scoring forward, for every
method of the registry: on CUDA each would make the host wait for the device (oecl_core/syncs.py counts them on
any device; tests/test_speed.py counts the synchronisations themselves on CUDA)."""
import pytest
import torch

from oecl_core.augment import Canvas, CropFlipAugment, SimCLRAugment, rotate90
from oecl_core.config import resolve_config
from oecl_core.device import place_network
from oecl_core.methods import METHODS, get_method
from oecl_core.methods.gt_plus import shift_images
from oecl_core.optim import OPTIMIZER_CHOICES, build_optimizer
from oecl_core.syncs import count_cuda_syncs, count_host_tensors
from oecl_core.train import build_network, training_step

# More test images than any method scores in one batch (256 at most), so that scoring runs several batches.
MANY = 300


@pytest.fixture
def stand_in_clip(monkeypatch):
    """The CLIP methods get test_clip's small random CLIP (never the download) where open_clip is installed."""
    try:
        import open_clip  # noqa: F401
    except ImportError:
        return
    from oecl_core.methods import clip as clip_method
    from test_clip import tiny_clip

    monkeypatch.setattr(clip_method, "clip_backbone", tiny_clip)


def _images(n, seed, size=16):
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _built(name, device="cpu"):
    """The method configured as a small smoke run (16 px, tiny widths), its network and its training images."""
    cfg = resolve_config("smoke", "digits", name, batch_size=8, oe_batch_size=8, width=0.0625, n_aug=2,
                         log_samples=8, device=device)
    method = get_method(name)
    method.configure(cfg)
    try:
        model = place_network(build_network(cfg, method), torch.device(device))
    except ImportError as err:  # the CLIP methods without open_clip
        pytest.skip(f"{name}: its network needs a package not installed here ({err})")
    train_images = _images(16, 0).to(device)
    method.on_start(model, train_images, cfg)  # eoe's normalisation statistics, DSVDD's centre
    method.bind(model)
    return method, cfg, model, train_images


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_training_step_makes_no_tensor_from_host_data_and_reads_nothing_back(name, stand_in_clip,
                                                                                 one_torch_thread):
    method, cfg, model, train_images = _built(name)
    if not method.trains:
        pytest.skip(f"{name} has no training step (Method.trains is False: it is scored as built)")
    optimizer = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    augment, gen = method.train_augment(cfg), torch.Generator().manual_seed(0)
    x_id = train_images[:8]
    x_oe = _images(8, 1) if method.uses_external_oe else None
    y_id = torch.arange(8) % 2 if method.needs_train_labels else None
    model.train()

    def step():  # alpha 1: the OE terms run too
        return training_step(model, method, optimizer, augment, gen, x_id, x_oe, 1.0, cfg.temperature, y_id)

    step()  # the first step fills the caches (and the optimiser's state)
    with count_host_tensors() as counts:
        loss, _ = step()
    assert counts.total == 0, f"{name}: {counts}"
    assert torch.isfinite(loss)


@pytest.mark.parametrize("optimizer", OPTIMIZER_CHOICES)
def test_every_optimiser_steps_without_host_data(optimizer, one_torch_thread):
    """The presets above use a few of the optimisers; each of them, in an OECL step (torch's own keep their step
    counts on the host, which syncs.HOST_STATE_CODE leaves out)."""
    method, cfg, model, train_images = _built("oecl")
    opt = build_optimizer(model, optimizer, 0.1, 0.9, 1e-4)
    gen = torch.Generator().manual_seed(0)
    step = lambda: training_step(model, method, opt, method.train_augment(cfg), gen, train_images[:8],  # noqa: E731
                                 _images(8, 1), 1.0, 0.5)
    step()
    with count_host_tensors() as counts:
        step()
    assert counts.total == 0, f"{optimizer}: {counts}"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_scoring_batch_makes_no_tensor_from_host_data_and_reads_nothing_back(name, stand_in_clip,
                                                                                 one_torch_thread):
    """Scoring MANY images runs more batches (more forwards) than scoring 4, and makes exactly the same host
    tensors and reads: only those of the scores' final conversion to numpy, none per batch."""
    method, cfg, model, train_images = _built(name)
    test_images = _images(MANY, 2)
    forwards = []
    model.register_forward_hook(lambda *args: forwards.append(1))

    def score(n):
        forwards.clear()
        with count_host_tensors() as counts:
            method.score(model, test_images[:n], cfg, train_images=train_images)
        return counts, len(forwards)

    score(4)  # fills the caches
    (few, few_forwards), (many, many_forwards) = score(4), score(MANY)
    assert many_forwards > few_forwards, f"{name} scores {MANY} images in one batch: raise MANY"
    assert many.sites == few.sites, f"{name}: {few.total} with 4 images ({few}), {many.total} with {MANY} ({many})"


def test_the_224_px_paths_make_no_tensor_from_host_data(one_torch_thread):
    """The crops of images of different shapes (a Canvas: SimCLR's, eoe's stretched and padded ones), their
    rotation, and GT+'s shifts (its 224-px translation heads), on small images."""
    images = _images(4, 3, size=24).float() / 255
    boxes = torch.tensor([[24, 20, 0], [18, 24, 0], [24, 16, 1], [20, 20, 0]], dtype=torch.int32)
    canvas = Canvas(images, boxes)
    gen = torch.Generator().manual_seed(0)
    augments = [SimCLRAugment(output_size=16), CropFlipAugment(16, jitter=0.01, noise=0.001, stretch=24),
                CropFlipAugment(16, pad=2)]
    tx, ty = torch.randint(0, 3, (2, 4), generator=gen)

    def run():
        for augment in augments:
            augment(canvas, gen)
            augment(rotate90(canvas, 1), gen)
        shift_images(images, tx, ty, 6)

    run()
    with count_host_tensors() as counts:
        run()
    assert counts.total == 0, str(counts)


def test_the_counter_sees_each_kind_and_restores_torch():
    """Every kind the counter names, counted once at its call site; torch is as it was afterwards."""
    before = dict(torch.Tensor.__dict__)
    where = torch.where
    x = torch.arange(4.0)
    with count_host_tensors() as counts:
        torch.tensor([1.0])
        x.new_tensor([1.0])
        torch.as_tensor(x)  # a tensor: no copy from the host, not counted
        torch.as_tensor([1.0])
        (x.sum().item(), x.tolist(), bool(x[0]), float(x[0]), int(x[0]), x.numpy(), x.cpu())
        x[x > 1]
        x[[0, 1]]
        torch.where(x > 1)
        torch.where(x > 1, x, 0.0)  # elementwise: not counted
        x.repeat_interleave(2)  # repeats from the host: not counted
    assert dict(counts) == {"tensor": 1, "new_tensor": 1, "as_tensor": 1, "item": 1, "tolist": 1, "__bool__": 1,
                            "__float__": 1, "__int__": 1, "numpy": 1, "cpu": 1, "mask_index": 1, "host_index": 1,
                            "nonzero": 1}
    assert torch.where is where and dict(torch.Tensor.__dict__) == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: counts the synchronisations CUDA reports")
@pytest.mark.parametrize("name", sorted(METHODS))
def test_cuda_training_steps_and_scoring_batches_make_no_synchronising_call(name, stand_in_clip):
    """On CUDA (count_cuda_syncs): a training step makes no synchronising call, and scoring MANY images makes as
    many as scoring 4 (the final copies of the scores only)."""
    method, cfg, model, train_images = _built(name, "cuda")
    if method.trains:
        optimizer = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
        augment, gen = method.train_augment(cfg), torch.Generator(device="cuda").manual_seed(0)
        x_oe = _images(8, 1).cuda() if method.uses_external_oe else None
        y_id = (torch.arange(8) % 2).cuda() if method.needs_train_labels else None
        model.train()

        def step():
            training_step(model, method, optimizer, augment, gen, train_images[:8], x_oe, 1.0, cfg.temperature, y_id)

        step()
        assert count_cuda_syncs(step) == 0, name
    test_images = _images(MANY, 2)  # on the host, as runner.score_run passes the split's
    score = lambda n: method.score(model, test_images[:n], cfg, train_images=train_images)  # noqa: E731
    score(4)
    assert count_cuda_syncs(score, MANY) == count_cuda_syncs(score, 4), name
