"""The graphed training step (RunConfig.cuda_graphs, oecl_core/step_graph.py). The capture itself needs CUDA; on
the CPU the same object runs the same static step uncaptured, and these tests compare it with the eager engine
step: same losses, parameters to float rounding, through the whole engine loop and a resumption."""
import pytest
import torch

from oecl_core import train as train_module
from oecl_core.augment import SimCLRAugment
from oecl_core.methods import get_method
from oecl_core.models import build_model
from oecl_core.optim import build_optimizer, set_lr
from oecl_core.step_graph import WARMUP_STEPS, GraphedStep
from oecl_core.train import epoch_generator, epoch_seed, load_checkpoint, train, training_step

from test_train import cfg, tiny_split


def _setup(optimizer="lars_csi", device="cpu"):
    torch.manual_seed(0)
    model = build_model("cifar", 0.125).to(device)
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (4, 2, 8, 3, 16, 16), generator=g, dtype=torch.uint8).to(device)  # step, id/oe
    return model, build_optimizer(model, optimizer, 0.1, 0.9, 1e-6), images


def _close(a, b, atol=2e-4):
    # after one step the graphed and eager parameters differ by 4e-9 at most (0.02% of them, last-bit rounding of
    # the lr product); BatchNorm over 8-image batches and LARS's trust ratios amplify that to ~1e-5 in four steps
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-3, atol=atol)


@pytest.mark.parametrize("method", ["simclr", "oecl"])
def test_static_step_computes_the_eager_step(method, one_torch_thread):
    """Four steps with a learning rate that changes every step: the graphed object's static step (uncaptured on
    the CPU) against training_step. The first loss is the same number (nothing has been updated yet); the lr
    tensor's update rounds in two operations where the float one fuses them, so later steps agree to rounding."""
    runs, first = [], []
    for graphed in (False, True):
        model, opt, images = _setup()
        gen = epoch_generator(0, 0, "cpu")
        step = GraphedStep(model, get_method(method), opt, SimCLRAugment(), gen, capture=False) if graphed else None
        losses = []
        for i in range(4):
            set_lr(opt, 0.1 * (1 - i / 8))
            if step is None:
                loss, n = training_step(model, get_method(method), opt, SimCLRAugment(), gen, images[i, 0],
                                        images[i, 1], 1.0, 0.5)
            else:
                loss, n = step(images[i, 0], images[i, 1], 1.0, 0.5)
            losses.append(loss)
            if i == 0:
                first.append([p.detach().clone() for p in model.parameters()])
        runs.append((torch.stack(losses), [p.detach().clone() for p in model.parameters()], n, gen.get_state()))
    (eager_loss, eager_params, eager_n, eager_gen), (graph_loss, graph_params, graph_n, graph_gen) = runs
    assert torch.equal(graph_loss[0], eager_loss[0])
    _close(first[1], first[0], atol=1e-8)
    torch.testing.assert_close(graph_loss, eager_loss, rtol=1e-5, atol=0)
    _close(graph_params, eager_params)
    assert graph_n == eager_n >= 16  # two views of 8 ID images (and the OE views)
    assert torch.equal(graph_gen, eager_gen)  # the same draws were taken from the generator


def test_the_learning_rate_lives_in_one_device_tensor_that_set_lr_fills():
    model, opt, _ = _setup()
    step = GraphedStep(model, get_method("simclr"), opt, SimCLRAugment(), torch.Generator(), capture=False)
    assert all(group["lr"] is step.lr for group in opt.param_groups)
    set_lr(opt, 0.025)
    assert step.lr.item() == pytest.approx(0.025)
    assert train_module.optimizer_state(opt)["param_groups"][0]["lr"] == pytest.approx(0.025)  # a float, saved


def test_graphed_step_refuses_what_it_cannot_record():
    model, sgd, images = _setup(optimizer="sgd")
    with pytest.raises(ValueError, match="captures the LARS optimisers.*uses SGD"):
        GraphedStep(model, get_method("simclr"), sgd, SimCLRAugment(), torch.Generator(), capture=False)
    model, opt, images = _setup()
    step = GraphedStep(model, get_method("simclr"), opt, SimCLRAugment(), torch.Generator(), capture=False)
    step(images[0, 0], None, 1.0, 0.5)
    with pytest.raises(ValueError, match="batches of one shape"):
        step(images[0, 0, :4], None, 1.0, 0.5)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        GraphedStep(model, get_method("simclr"), opt, SimCLRAugment(), torch.Generator(), capture=True)
    with pytest.raises(ValueError, match="choose one of them"):
        train_module.compiled_for_training(model, cfg(cuda_graphs=True, compile=True), torch.device("cuda"))


def _train(tmp_path, name, graphed, monkeypatch, **kw):
    if graphed:
        monkeypatch.setattr(train_module, "GRAPH_DEVICES", ("cuda", "cpu"))
    result = train(cfg(optimizer="lars_csi", cuda_graphs=graphed, **kw), tiny_split(), tmp_path / name,
                   progress=False)
    monkeypatch.setattr(train_module, "GRAPH_DEVICES", ("cuda",))
    return result


def test_the_graphed_engine_path_trains_the_eager_run(tmp_path, monkeypatch, one_torch_thread):
    """train() with cuda_graphs (uncaptured on the CPU) against the eager run: every epoch's loss, the final weights
    to rounding; the epochs re-seed the one generator to the eager epochs' streams."""
    eager = _train(tmp_path, "eager", False, monkeypatch)
    graphed = _train(tmp_path, "graphed", True, monkeypatch)
    assert [r["epoch"] for r in graphed.log] == [1, 2, 3, 4]
    torch.testing.assert_close(torch.tensor([r["loss"] for r in graphed.log]),
                               torch.tensor([r["loss"] for r in eager.log]), rtol=1e-4, atol=0)
    _close(list(graphed.model.parameters()), list(eager.model.parameters()))
    assert epoch_seed(0, 1) != epoch_seed(0, 0)


def test_a_graphed_run_resumes_as_if_never_stopped(tmp_path, monkeypatch, one_torch_thread):
    whole = _train(tmp_path, "whole", True, monkeypatch)
    monkeypatch.setattr(train_module, "GRAPH_DEVICES", ("cuda", "cpu"))
    first = train(cfg(optimizer="lars_csi", cuda_graphs=True), tiny_split(), tmp_path / "parts", progress=False,
                  stop_after_epoch=2)
    assert first.epochs_done == 2
    state = load_checkpoint(tmp_path / "parts", cfg(optimizer="lars_csi", cuda_graphs=True))
    assert all(isinstance(g["lr"], float) for g in state["optimizer"]["param_groups"])
    rest = train(cfg(optimizer="lars_csi", cuda_graphs=True), tiny_split(), tmp_path / "parts", progress=False)
    assert [r["loss"] for r in rest.log] == [r["loss"] for r in whole.log]
    for a, b in zip(rest.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: records and replays a CUDA graph")
@pytest.mark.parametrize("method", ["simclr", "oecl"])
def test_recorded_graph_replays_the_eager_steps_on_cuda(method):
    """Eight steps on a GPU, eager against WARMUP_STEPS eager steps then replays: losses and parameters agree to
    bf16 rounding (kernels of both runs may differ; cudnn picks its algorithms)."""
    runs = []
    for graphed in (False, True):
        model, opt, images = _setup(device="cuda")
        model = model.to(memory_format=torch.channels_last)
        gen = epoch_generator(0, 0, "cuda")
        step = GraphedStep(model, get_method(method), opt, SimCLRAugment(), gen) if graphed else None
        losses = []
        for i in range(8):
            set_lr(opt, 0.1 * (1 - i / 16))
            x_id, x_oe = images[i % 4, 0], images[i % 4, 1]
            if step is None:
                loss, _ = training_step(model, get_method(method), opt, SimCLRAugment(), gen, x_id, x_oe, 1.0, 0.5,
                                        autocast_cache=False)
            else:
                loss, _ = step(x_id, x_oe, 1.0, 0.5)
            losses.append(loss)
        if graphed:
            assert step.graphs and step.eager_steps == WARMUP_STEPS
        runs.append((torch.stack(losses).cpu(), [p.detach().float().cpu() for p in model.parameters()],
                     gen.get_state()))
    (eager_loss, eager_params, eager_gen), (graph_loss, graph_params, graph_gen) = runs
    torch.testing.assert_close(graph_loss, eager_loss, rtol=2e-2, atol=0)
    for a, b in zip(graph_params, eager_params):
        torch.testing.assert_close(a, b, rtol=5e-2, atol=1e-3)
    assert torch.equal(graph_gen, eager_gen)
