"""Multi-process training (oecl_core/distributed.py) on the CPU: two processes with the Gloo backend train the global
batch exactly as one process does (loss, gradients, BatchNorm statistics, parameters), and a run resumes on another
process count."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from oecl_core import distributed
from oecl_core.augment import SimCLRAugment
from oecl_core.methods import get_method
from oecl_core.models import build_model
from oecl_core.optim import build_optimizer
from oecl_core.train import CHECKPOINT, train, training_step

from test_train import cfg, tiny_split

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch(n=8, size=16):
    """Smooth images, as the bench's. (On uniform noise, whose augmentations clamp into flat patches, one gradient of
    self_oecl came out 0.25% apart while the losses agreed to 1e-7: rounding-sensitive inputs, not a different
    computation.)"""
    from oecl_core.throughput import synthetic_images

    return synthetic_images(n, size, 0), synthetic_images(n, size, 1)


CPU = torch.device("cpu")


def _one_step(method: str, procs=distributed.SINGLE, device=CPU) -> dict:
    """Two training steps of `method` (LARS as the paper preset) on the same global batch: the losses, the first
    step's gradients (the second step's are ill-conditioned at this size: a 1e-6 relative change of the weights moves
    them by ~1%, in one process alone) and the parameters and BatchNorm statistics after both steps."""
    torch.manual_seed(0)
    model = build_model("cifar", 0.25)
    step_model = model
    if procs.active:
        model = distributed.global_batchnorm(model, device)
        step_model = distributed.wrap(model, procs, device)
    opt = build_optimizer(model, "lars_csi", 0.1, 0.9, 1e-6)
    gen = torch.Generator().manual_seed(1)
    x_id, x_oe = _batch()
    losses, grads = [], None
    for _ in range(2):  # the second step also uses momentum and the trust ratio of moved weights
        loss, views = training_step(step_model, get_method(method), opt, SimCLRAugment(), gen, x_id, x_oe, 1.0, 0.5,
                                    procs=procs)
        losses.append(loss)
        grads = grads or {n: p.grad.clone() for n, p in model.named_parameters()}
    return {"losses": torch.stack(losses), "views": views, "grads": grads,
            "state": {k: v.clone() for k, v in model.state_dict().items()}}


def _run_cfg():
    return cfg(epochs=2, image_size=16, width=0.25, optimizer="lars_csi")


def _smooth_split():
    """tiny_split's layout with smooth 16-px images (see _batch)."""
    from oecl_core.throughput import synthetic_images
    from oecl_core.data import Split

    labels = torch.arange(12) % 2
    return Split(train=synthetic_images(20, 16, 0), test=synthetic_images(12, 16, 1), test_is_normal=labels == 0,
                 test_labels=labels, oe=synthetic_images(30, 16, 2), description="smooth")


def _worker(rank: int, port: int, out_dir: str, task: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        if task == "steps":
            procs, device = distributed.setup("cpu")
            result = {m: _one_step(m, procs, device) for m in ("oecl", "self_oecl")}
            torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
        else:  # train: a full run of two epochs, and one stopped after its first epoch
            train(_run_cfg(), _smooth_split(), os.path.join(out_dir, "full"), progress=False)
            train(_run_cfg(), _smooth_split(), os.path.join(out_dir, "half"), stop_after_epoch=1, progress=False)
    finally:
        distributed.finish()


def _spawn(task: str, out_dir) -> None:
    mp.spawn(_worker, args=(_free_port(), str(out_dir), task), nprocs=WORLD, join=True)


def _close(a, b, what, tol=1e-4):
    """Equal up to float32 rounding (sums over the processes run in another order): per tensor, as a whole (single
    elements near 0 can differ relatively more)."""
    a, b = a.double(), b.double()
    assert a.shape == b.shape, what
    relative = ((a - b).norm() / b.norm()).item()
    assert (a - b).norm() <= tol * b.norm() + 1e-6, f"{what}: relative difference {relative:.2e}"


def test_two_processes_train_the_global_batch_as_one_process(tmp_path, one_torch_thread):
    _spawn("steps", tmp_path)
    for method in ("oecl", "self_oecl"):
        one = _one_step(method)
        for rank in range(WORLD):
            many = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)[method]
            assert many["views"] == one["views"]  # views of the whole job per step
            _close(many["losses"], one["losses"], f"{method} rank {rank} losses")
            for name, grad in one["grads"].items():
                _close(many["grads"][name], grad, f"{method} rank {rank} gradient of {name}")
            assert many["state"].keys() == one["state"].keys()  # global BN keeps BatchNorm's checkpoint keys
            for key, value in one["state"].items():  # parameters and BatchNorm running statistics
                _close(many["state"][key], value, f"{method} rank {rank} {key}")


def test_a_two_process_run_equals_the_one_process_run_and_resumes_on_one(tmp_path, one_torch_thread):
    """Whole runs (2 epochs of 2 steps, the paper's LARS, ResNet-18 at 1/4 width, 16 px) through train(): rank 0 alone
    writes, and a run stopped after its first epoch on two processes resumes on one. Rounding differences (1e-6) grow
    over the steps: in one process alone, a 1e-6 relative change of the initial weights moves the final weights by up
    to 2e-3 (measured), so whole runs are compared at 1e-2; the step itself is compared tightly above."""
    _spawn("train", tmp_path)
    single = train(_run_cfg(), _smooth_split(), tmp_path / "single", progress=False)
    # the two-process run stopped after epoch 1 goes on with one process
    resumed = train(_run_cfg(), _smooth_split(), tmp_path / "half", progress=False)
    full = torch.load(tmp_path / "full" / CHECKPOINT, weights_only=False)
    for other, name in ((full, "two processes"), (torch.load(tmp_path / "half" / CHECKPOINT, weights_only=False),
                                                 "two processes, then one")):
        assert other["epoch"] == 2
        for key, value in single.model.state_dict().items():
            _close(other["model"][key], value, f"{name}: {key}", tol=1e-2)
        for row, ref in zip(other["log"], single.log):
            assert row["loss"] == pytest.approx(ref["loss"], rel=1e-4)
            assert row["norm_id"] == pytest.approx(ref["norm_id"], rel=1e-3)
    assert [r["epoch"] for r in resumed.log] == [1, 2]
    assert (tmp_path / "full" / "log.csv").read_text().count("\n") == 3  # header + 2 epochs, written by rank 0


def test_batches_must_divide_among_the_processes():
    procs = distributed.Processes(rank=0, world_size=3)
    with pytest.raises(ValueError, match="ID batch 8 not divisible by the 3 processes"):
        distributed.check_batch(procs, 8, 6, needs_oe=True)
    with pytest.raises(ValueError, match="OE batch 4 not divisible"):
        distributed.check_batch(procs, 9, 4, needs_oe=True)
    distributed.check_batch(procs, 9, 6, needs_oe=True)
    distributed.check_batch(procs, 9, 4, needs_oe=False)


def test_shares_of_a_group_reassemble_it():
    views = torch.arange(12).view(6, 2)
    shares = [distributed.share(views, distributed.Processes(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat(shares), views)


def test_environment_without_torchrun_is_one_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.from_environment() == distributed.SINGLE
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two' must be an integer"):
        distributed.from_environment()


def test_an_unchecked_method_refuses_several_processes(monkeypatch, tmp_path):
    monkeypatch.setattr(distributed, "setup", lambda name: (distributed.Processes(0, 2), torch.device("cpu")))
    with pytest.raises(ValueError, match="method hsc has no multi-process training"):
        train(cfg(method="hsc"), tiny_split(), tmp_path, progress=False)


def test_pipeline_jobs_use_torchrun_only_where_a_method_trains_on_several_processes():
    assert distributed.gpus_for("oecl", 4) == 4 and distributed.gpus_for("hsc", 4) == 1
    assert distributed.gpus_for("oecl", 0) == 0
    assert distributed.launcher(4) == "torchrun --standalone --nproc_per_node 4"
    assert distributed.launcher(1) == distributed.launcher(0) == "python"
    with pytest.raises(ValueError, match="integer >= 0"):
        distributed.gpus_for("oecl", -1)


def test_the_multi_process_methods_are_the_registrys():
    from oecl_core.methods import METHODS

    assert distributed.METHODS == tuple(name for name, m in METHODS.items() if m.multi_process)
    assert {"oecl", "self_oecl"} <= set(distributed.METHODS)  # the two the step tests above check
    for name, method in METHODS.items():
        assert distributed.gpus_for(name, 4) == (4 if method.multi_process else 1)
    assert not METHODS["supclr"].multi_process  # a subclass of OECL, with its own loss: not inherited
