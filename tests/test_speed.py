"""The speed switches of the training step (RunConfig precision / compile / cuda_graphs / score_batch_views): each
changes only how fast a step runs, not what it computes (within the precision's rounding)."""
import shutil

import pytest
import torch

from oecl_core.augment import SimCLRAugment
from oecl_core.config import resolve_config
from oecl_core.methods import get_method
from oecl_core.models import build_model
from oecl_core.optim import build_optimizer
from oecl_core.train import CHECKPOINT, ResumeMismatch, compiled_for_training, load_checkpoint, train, training_step
from oecl_core.io import save_torch

from test_train import cfg, tiny_split


def _batches(n=16, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8),
            torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8))


def _steps(model, steps=2, precision="auto", method="oecl", optimizer="sgd", batch=8, aug_seed=1):
    """`steps` OECL training steps from a fixed generator; returns the losses and the trained parameters."""
    x_id, x_oe = _batches(2 * batch)
    opt = build_optimizer(model, optimizer, 0.1, 0.9, 5e-4)
    gen = torch.Generator().manual_seed(aug_seed)
    losses = []
    for step in range(steps):
        part = slice(step * batch, (step + 1) * batch)
        loss, _ = training_step(model, get_method(method), opt, SimCLRAugment(), gen, x_id[part], x_oe[part], 1.0,
                                0.5, precision=precision)
        losses.append(loss)
    return torch.stack(losses), [p.detach().clone() for p in model.parameters()]


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model("cifar", 0.25)


def test_bf16_step_stays_close_to_the_float32_step(one_torch_thread):
    """One SGD step on the same views under bf16 autocast and in float32. Measured here (ResNet-18 x0.25, 16 px,
    8 + 8 images): losses within 0.1%, updates with cosine 0.95 and norms within 2%, where a float32 step on other
    augmentations of the same images has a cosine well below that: bf16 changes the step by rounding only."""
    start = torch.cat([p.detach().flatten() for p in _model().parameters()])
    update = lambda params: torch.cat([p.flatten() for p in params]) - start
    loss32, params32 = _steps(_model(), steps=1, precision="fp32")
    loss16, params16 = _steps(_model(), steps=1, precision="bf16")
    _, params_other = _steps(_model(), steps=1, precision="fp32", aug_seed=2)
    assert not torch.equal(loss32, loss16)  # bf16 autocast really ran on the CPU
    torch.testing.assert_close(loss16, loss32, rtol=1e-2, atol=0)
    u32, u16, u_other = update(params32), update(params16), update(params_other)
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(u16, u32, dim=0) > 0.9
    assert abs(u16.norm() / u32.norm() - 1) < 0.05
    assert cosine(u16, u32, dim=0) > cosine(u_other, u32, dim=0) + 0.2


def test_precision_auto_is_float32_on_the_cpu(one_torch_thread):
    auto, _ = _steps(_model(), precision="auto")
    fp32, _ = _steps(_model(), precision="fp32")
    assert torch.equal(auto, fp32)


def _float64_steps(model, steps=2):
    """Two OECL steps (LARS as the paper preset runs it) in float64 on the same views."""
    from oecl_core.augment import to_float

    method, opt = get_method("oecl"), build_optimizer(model, "lars_csi", 0.1, 0.9, 1e-6)
    x_id, x_oe = _batches(16)
    gen = torch.Generator().manual_seed(1)
    for step in range(steps):
        part = slice(step * 8, (step + 1) * 8)
        v = method.views(to_float(x_id[part]), to_float(x_oe[part]), SimCLRAugment(), gen)
        z = model(torch.cat([v.id1, v.id2, v.oe]).double())
        opt.zero_grad()
        method.loss(z[:8], z[8:16], z[16:], 1.0, 0.5).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")),
                    reason="torch.compile on the CPU (inductor) needs a C++ compiler")
def test_compiled_step_agrees_with_the_eager_step(one_torch_thread):
    """torch.compile (inductor, C++ on the CPU; 40-60 s per compilation here, two here). In float64 the compiled and
    eager steps give the same parameters after two LARS steps to 1e-10: the compiled network computes the same
    function and gradient. In float32 inductor's CPU kernels round differently (gradients measured 1e-4 to 1e-2
    apart from eager's, eager's being 1e-6 from float64's), so there the losses of two steps are compared."""
    eager = _float64_steps(_model().double())
    network = _model().double()
    compiled = compiled_for_training(network, resolve_config("smoke", "digits", "oecl", compile=True),
                                     torch.device("cpu"))
    assert compiled is not network
    for a, b in zip(_float64_steps(compiled), eager):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # the compiled module trains the network's own parameters (checkpoints and scoring use the network)
    for a, b in zip(network.parameters(), eager):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)

    eager_loss, _ = _steps(_model(), optimizer="lars_csi")
    compiled32 = compiled_for_training(_model(), resolve_config("smoke", "digits", "oecl", compile=True),
                                       torch.device("cpu"))
    compiled_loss, _ = _steps(compiled32, optimizer="lars_csi")
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-3, atol=0)


def test_cuda_graphs_on_the_cpu_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device"):
        train(cfg(cuda_graphs=True), tiny_split(), tmp_path, progress=False)


def test_defaults_are_the_eager_step():
    c = resolve_config("paper", "digits", "oecl")
    assert (c.precision, c.compile, c.cuda_graphs, c.score_batch_views) == ("auto", False, False, 2048)
    model = _model()
    assert compiled_for_training(model, c, torch.device("cpu")) is model


def test_bad_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp32"):
        resolve_config("smoke", "digits", "oecl", precision="fp16")


_SYNCING = ("item", "tolist", "__bool__", "__float__", "__int__", "numpy")


@pytest.mark.parametrize("method", ["oecl", "simclr", "self_oecl"])
def test_training_step_never_reads_a_value_back_to_the_host(monkeypatch, method, one_torch_thread):
    """Any of these calls would make the host wait for the device (a sync per step on CUDA); the loss of each
    step stays on the device and the engine reads the losses once per epoch."""
    model = _model()
    x_id, x_oe = _batches(8)
    opt = build_optimizer(model, "lars_csi", 0.1, 0.9, 1e-6)
    gen = torch.Generator().manual_seed(0)
    for name in _SYNCING:
        def refuse(*args, _name=name, **kwargs):
            raise AssertionError(f"Tensor.{_name} called inside a training step")
        monkeypatch.setattr(torch.Tensor, name, refuse)
    for _ in range(2):  # the second step also updates the momentum buffers
        loss, _ = training_step(model, get_method(method), opt, SimCLRAugment(), gen, x_id, x_oe, 1.0, 0.5)
    monkeypatch.undo()
    assert torch.isfinite(loss).item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: torch.cuda.set_sync_debug_mode")
def test_cuda_training_steps_make_no_synchronising_call():
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model("cifar", 0.25).to(device).to(memory_format=torch.channels_last)
    x_id, x_oe = (x.to(device) for x in _batches(8))
    opt = build_optimizer(model, "lars_csi", 0.1, 0.9, 1e-6)
    gen = torch.Generator(device=device).manual_seed(0)
    training_step(model, get_method("oecl"), opt, SimCLRAugment(), gen, x_id, x_oe, 1.0, 0.5)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            training_step(model, get_method("oecl"), opt, SimCLRAugment(), gen, x_id, x_oe, 1.0, 0.5)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: torch.cuda.set_sync_debug_mode")
def test_cuda_scoring_forwards_make_no_synchronising_call():
    """One scoring forward as feature_stats runs it (n_aug augmented views of a batch, then the network), on
    device-resident images: no synchronising call once the constants are cached."""
    from oecl_core.augment import to_float

    device = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model("cifar", 0.25).to(device).to(memory_format=torch.channels_last).eval()
    x = to_float(_batches(64)[0].to(device))
    gen = torch.Generator(device=device).manual_seed(0)
    augment = SimCLRAugment()

    @torch.no_grad()
    def forward():
        return model(torch.cat([augment(x, gen) for _ in range(4)])).float()

    forward()  # warm-up: the cached constants, cuDNN's choice of algorithms
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        forward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: torch.cuda.set_sync_debug_mode")
def test_count_cuda_syncs_counts_each_synchronising_call():
    from oecl_core.syncs import count_cuda_syncs

    x = torch.ones(4, device="cuda")
    assert count_cuda_syncs(lambda: x * 2) == 0
    assert count_cuda_syncs(lambda: [x.sum().item() for _ in range(3)]) == 3
    assert count_cuda_syncs(lambda: x.new_tensor([1.0, 2.0])) >= 1  # a host->device copy that waits
    assert torch.cuda.get_sync_debug_mode() == 0  # restored


def test_a_checkpoint_from_before_the_switches_resumes(tmp_path):
    """config.json / checkpoint.pt written before precision, compile, cuda_graphs and score_batch_views existed:
    the run resumes (those settings were at their defaults), and the switches that do not change the result may
    differ on resumption."""
    c = cfg(epochs=2)
    result = train(c, tiny_split(), tmp_path, stop_after_epoch=1, progress=False)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=False)
    state["config"] = {k: v for k, v in state["config"].items()
                       if k not in ("precision", "compile", "cuda_graphs", "score_batch_views")}
    save_torch(tmp_path / CHECKPOINT, state)
    assert load_checkpoint(tmp_path, c)["epoch"] == 1
    assert load_checkpoint(tmp_path, cfg(epochs=2, score_batch_views=64, compile=True))["epoch"] == 1
    with pytest.raises(ResumeMismatch, match="precision"):  # bf16 instead of float32 changes the run
        load_checkpoint(tmp_path, cfg(epochs=2, precision="bf16"))
    assert result.epochs_done == 1


def test_score_batch_views_does_not_change_the_scores(one_torch_thread):
    from oecl_core.scores import score_images

    model = _model().eval()
    images = _batches(12)[0]
    small = score_images(model, images, SimCLRAugment(), n_aug=4, batch_size=4, forward_batch=4)
    large = score_images(model, images, SimCLRAugment(), n_aug=4, batch_size=4, forward_batch=16)
    for name in small:
        assert small[name] == pytest.approx(large[name], rel=1e-5)
