"""The planner's data, disk and GPU-memory figures (oecl_core/resources.py) against independent computations: real
checkpoints written by train(), a real optimiser step, a real forward on the CPU, a really prepared folder, and the
arithmetic of the stored images."""
import numpy as np
import pytest
import torch

from oecl_core import plan
from oecl_core import resources as res
from oecl_core.cli import main
from oecl_core.experiments import Run, run_config
from oecl_core.optim import build_optimizer
from oecl_core.runner import split_for
from oecl_core.train import CHECKPOINT, build_network, train

from test_pipeline import REPO

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("method,changes", [
    ("oecl", dict(epochs=2)),  # the smoke preset's network (width 0.125)
    ("oecl", dict(epochs=1, width=1.0)),  # a paper-width ResNet-18
    ("hsc", dict(epochs=1, width=0.25)),  # eoe's network and optimiser (two state tensors per parameter)
])
def test_a_checkpoint_written_by_train_has_the_computed_size(tmp_path, method, changes):
    cfg = run_config("smoke", Run("one_vs_rest", "digits", method, 0, 0), **changes)
    train(cfg, split_for(cfg), tmp_path)
    real = (tmp_path / CHECKPOINT).stat().st_size
    computed = res.run_disk(cfg).checkpoint
    assert computed == pytest.approx(real, rel=0.02), (computed, real)
    written = sum((tmp_path / name).stat().st_size for name in ("log.csv", "config.json"))  # metrics.json: ~2 kB more
    assert written < res.run_disk(cfg).other < written + 5000
    if changes.get("width") == 1.0:  # the "about 92 MB per ResNet-18 run"
        assert 88e6 < real < 96e6


def test_the_checkpoint_parts_are_the_counts_of_the_real_network_and_optimiser():
    for method in ("oecl", "hsc", "csi"):
        cfg = run_config("paper", Run("one_vs_rest", "cifar10", method, 0, 0), width=0.25)
        net = build_network(cfg)
        params = [p for p in net.parameters()]
        sd = net.state_dict()
        state = res.network_state(cfg)
        assert state.params == sum(p.numel() for p in params)
        assert state.param_bytes + state.buffer_bytes == sum(t.numel() * t.element_size() for t in sd.values())
        opt = build_optimizer(net, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
        for p in params:
            p.grad = torch.randn_like(p)
        opt.step()
        real = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                   if torch.is_tensor(t) and t.dim() > 0)
        assert state.optimizer_bytes == real, method


def test_activations_counted_on_the_meta_device_are_those_a_real_forward_saves():
    cfg = run_config("paper", Run("one_vs_rest", "cifar10", "oecl", 0, 0), width=0.25)
    torch.manual_seed(0)
    net = build_network(cfg).train()

    def saved(n):
        seen = {}

        def pack(t):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(torch.rand(n, 3, 32, 32))
        return sum(seen.values())

    floats, other, _ = res.saved_bytes_per_view(cfg, 32, 32)
    assert 4 * floats + other == (saved(5) - saved(3)) // 2


def test_gpu_memory_of_an_imagenet30_oecl_job_is_its_parts():
    cost = plan.run_cost(Run("one_vs_rest", "imagenet30", "oecl", 0, 0), "paper")
    m = res.gpu_memory(cost, REPO / "no-data-here", cost.view_shapes)
    canvas = 3 * 256 * 512  # a 256-px image at the widest canvas, uint8
    assert m.train_images == 1300 * canvas and m.oe_images == 50_000 * canvas  # the pool: 19.7 GB
    assert not m.measured  # nothing prepared: an upper bound
    s = res.network_state(cost.cfg)
    assert m.network == s.param_bytes + s.buffer_bytes + 4 * s.params + s.optimizer_bytes + 2 * s.params
    assert m.views == 1024 and m.view_shape == (3, 224, 224)  # 256 + 256 images, two views each
    floats, other, _ = res.saved_bytes_per_view(cost.cfg, 224, 224)
    assert m.activations == 1024 * (2 * floats + other)
    assert m.inputs == 4 * 512 * canvas + 3 * 4 * 1024 * 3 * 224 * 224
    assert m.total == m.train_images + m.oe_images + m.network + m.inputs + m.activations


def test_table1_reads_imagenet22k_by_hand_for_990_jobs():
    groups = plan.target_groups(plan.load_pipeline_config(REPO / "config.yaml"), "table1", "paper")
    runs = list(dict.fromkeys(r for rs in groups.values() for r in rs))
    uses = {u.name: u for u in res.data_set_uses(runs, "paper", REPO / "no-data-here")}
    assert set(uses) == {"cifar10", "imagenet30", "dior", "raabin", "imagenet22k_minus_1k", "tiny300k"}
    oe = uses["imagenet22k_minus_1k"]
    assert (oe.obtained, oe.roles, oe.jobs) == ("manual", {"OE"}, 990)
    assert oe.download.estimate and oe.download.bytes == 1_310_000_000_000
    assert oe.prepared.at_most and oe.prepared.bytes == 50_000 * (3 * 256 * 512 + 20)
    cifar = uses["cifar10"]
    assert (cifar.obtained, cifar.jobs, cifar.download.bytes) == ("download", 200, 170_498_071)
    assert cifar.prepared.bytes == 60_000 * (3 * 32 * 32 + 8) and not cifar.prepared.estimate


def test_a_prepared_folder_is_measured_and_the_estimate_before_preparing_matches_it(tmp_path):
    from oecl_core.data.prepared import write_prepared
    from oecl_core.data.sets import SETS

    train, test, _ = SETS["dtd"].split_sizes
    estimate = res.prepared_size("dtd", tmp_path)
    rng = np.random.default_rng(0)
    labels = lambda per: np.repeat(np.arange(len(per)), per)  # noqa: E731
    splits = {name: (rng.integers(0, 255, (sum(per), 3, 32, 32), dtype=np.uint8), labels(per))
              for name, per in (("train", train), ("test", test))}
    write_prepared(tmp_path / "dtd", "dtd", splits, [str(i) for i in range(47)])
    measured = res.prepared_size("dtd", tmp_path)
    assert not measured.estimate and "measured" in measured.source
    assert estimate.bytes == pytest.approx(measured.bytes, rel=0.005)


def test_the_plan_command_prints_data_disk_with_and_without_keep_checkpoints_and_gpu_memory(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["plan", "--preset", "smoke", "fig1"]) == 0
    out = capsys.readouterr().out
    assert "data sets read (1 training jobs" in out and "digits" in out and "embedded" in out
    assert "with keep_checkpoints: true (the default" in out and "with keep_checkpoints: false" in out
    assert "GPU memory of a training job" in out


def test_few_shot_jobs_on_an_embedded_data_set_count_their_own_oe_images():
    groups = plan.target_groups(plan.load_pipeline_config(REPO / "config.yaml"), "table4", "smoke")
    costs = [plan.run_cost(r, "smoke") for rs in groups.values() for r in rs]
    few_shot = [c for c in costs if c.cfg.oe == "benchmark" and c.view_shapes]
    assert few_shot
    for c in few_shot:
        m = res.gpu_memory(c, REPO / "no-data-here", c.view_shapes)
        side = c.cfg.stored_size or c.cfg.image_size
        assert m.measured and m.train_images == c.n_train * 3 * side * side
        assert m.oe_images % (3 * side * side) == 0 and m.total > 0
