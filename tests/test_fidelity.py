"""Settings that make a preset train as its source does (issue: fidelity at paper scale)."""
import math

import pytest
import torch

from oecl_core.config import resolve_config
from oecl_core.data import Split
from oecl_core.methods.oecl import OECL
from oecl_core.models import build_model
from oecl_core.optim import build_optimizer, cosine_lr, scheduled_lr
from oecl_core.scores import feature_stats
from oecl_core.train import train


def test_official_self_oecl_uses_alpha_one_on_every_data_set():
    # the public self-OECL script hard-codes alpha = 1; the paper gives the data set's alpha (0.1 on DIOR)
    assert resolve_config("official", "dior", "self_oecl").alpha == 1.0
    assert resolve_config("official", "raabin", "self_oecl").alpha == 1.0
    assert resolve_config("paper", "dior", "self_oecl").alpha == 0.1
    assert resolve_config("official", "dior", "oecl").alpha == 0.1


def test_official_preset_is_the_public_one_vs_rest_script_on_one_device():
    c = resolve_config("official", "imagenet30", "oecl")
    assert (c.epochs, c.batch_size, c.oe_batch_size, c.optimizer, c.weight_decay, c.lr_schedule) == \
        (1000, 256, 256, "sgd", 5e-4, "epoch")
    assert c.oe == "imagenet1k_minus_30" and not c.oe_resample and c.s_mu_clean_view
    assert c.warmup_epochs == 50  # the public code's hard step at epoch 50, also in a 1000-epoch run
    loo = resolve_config("official", "cifar10", "oecl", benchmark="leave_one_out")
    assert (loo.epochs, loo.batch_size, loo.warmup_epochs) == (500, 64, 50)
    assert resolve_config("paper", "imagenet30", "oecl").oe == "imagenet22k_minus_1k"
    assert not resolve_config("paper", "cifar10", "oecl").s_mu_clean_view
    assert resolve_config("smoke", "digits", "oecl").warmup_epochs == 10  # 50 of 500, scaled to 100 epochs


class _RecordingOECL(OECL):
    seen: list = []

    def views(self, x_id, x_oe, augment, gen):
        _RecordingOECL.seen.append((len(x_id), len(x_oe)))
        return super().views(x_id, x_oe, augment, gen)


def test_oe_batch_shrinks_with_an_id_batch_capped_at_a_small_class(tmp_path, monkeypatch):
    """DIOR baseballfield has 116 images for a batch of 256: one step of 116 ID images, and 116 OE images
    (not 256; the public code asserts equal sizes)."""
    monkeypatch.setattr("oecl_core.train.get_method", lambda name: _RecordingOECL())
    _RecordingOECL.seen = []
    g = torch.Generator().manual_seed(0)
    images = lambda n: torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g)
    split = Split(images(12), images(8), torch.arange(8) < 4, torch.zeros(8, dtype=torch.long), images(100), "tiny")
    cfg = resolve_config("smoke", "digits", "oecl", epochs=2, batch_size=32, oe_batch_size=32, width=0.0625, n_aug=1,
                         device="cpu", warmup_epochs=0, image_size=16)
    train(cfg, split, tmp_path, progress=False)
    assert _RecordingOECL.seen == [(12, 12), (12, 12)]


def test_s_mu_with_the_clean_view_averages_33_views():
    torch.manual_seed(0)
    model = build_model("cifar", 0.0625).eval()
    x = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    shifts = iter(range(1, 100))

    def augment(images, gen):  # deterministic stand-in: view k is the image brightened by k / 100
        return (images + next(shifts) / 100).clamp(0, 1)

    stats = feature_stats(model, x, augment, n_aug=32, mu_with_clean=True)
    with torch.no_grad():
        xf = x.float() / 255
        views = [model(xf)] + [model((xf + k / 100).clamp(0, 1)) for k in range(1, 33)]
    expected = torch.stack(views).mean(dim=0).pow(2).sum(dim=1).double().numpy()
    assert stats["s_mu"] == pytest.approx(expected, rel=1e-4)
    shifts = iter(range(1, 100))
    only_augmented = feature_stats(model, x, augment, n_aug=32)["s_mu"]
    expected32 = torch.stack(views[1:]).mean(dim=0).pow(2).sum(dim=1).double().numpy()
    assert only_augmented == pytest.approx(expected32, rel=1e-4)


def test_imagenet_stem_convolutions_use_kaiming_fan_out():
    torch.manual_seed(0)
    model = build_model("imagenet", 1.0)
    conv = model.encoder.layers[3][0].conv1  # 256 -> 512, 3x3: fan_out = 512 * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (512 * 9)), rel=0.02)
    cifar = build_model("cifar", 1.0).encoder.layers[3][0].conv1  # PyTorch's default: U(+-1/sqrt(fan_in)) * gain
    assert cifar.weight.std().item() < 0.6 * conv.weight.std().item()


def test_csi_lr_schedule_warms_up_ten_fold_then_follows_the_cosine():
    assert scheduled_lr(0.1, 0.0, 500) == pytest.approx(0.1)
    assert scheduled_lr(0.1, 250.0, 500) == pytest.approx(cosine_lr(0.1, 0.5))
    assert scheduled_lr(0.1, 0.0, 500, 10, 10.0) == pytest.approx(0.1)
    assert scheduled_lr(0.1, 5.0, 500, 10, 10.0) == pytest.approx(0.55)
    assert scheduled_lr(0.1, 10.0, 500, 10, 10.0) == pytest.approx(1.0)
    # after the warm-up, CSI's CosineAnnealingLR(T_max=epochs) runs from the end of the warm-up
    assert scheduled_lr(0.1, 260.0, 500, 10, 10.0) == pytest.approx(0.5)
    assert 0 < scheduled_lr(0.1, 500.0, 500, 10, 10.0) < 0.01


def test_lars_csi_scales_every_parameter_lars_spares_batchnorm():
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    x = torch.randn(8, 4)
    for net, name in zip(nets, ("lars", "lars_csi")):
        opt = build_optimizer(net, name, lr=1.0, momentum=0.0, weight_decay=0.0)
        net(x).pow(2).sum().backward()
        before = net[1].weight.detach().clone()
        grad = net[1].weight.grad.clone()
        opt.step()
        step = (before - net[1].weight.detach()).norm().item()
        if name == "lars":  # plain SGD on BatchNorm weights
            assert step == pytest.approx(grad.norm().item(), rel=1e-5)
        else:  # trust ratio 0.001 * ||w|| / ||g||: the step is 0.001 * ||w||
            assert step == pytest.approx(0.001 * before.norm().item(), rel=1e-4)


def test_tables_mark_cells_with_under_trained_runs():
    from pathlib import Path

    import pandas as pd

    from oecl_core.tables import build_table, layout

    auc = pd.read_csv(Path(__file__).parent / "data/auc_table1.csv")
    auc["undertrained"] = (auc["method"] == "simclr") & (auc["dataset"] == "cifar10") & (auc["cls"] == 0)
    table = {"rows": [{"dataset": "cifar10", "benchmark": "one_vs_rest"}],
             "columns": [{"method": "simclr", "run": True}, {"method": "oecl", "run": True}]}
    cells = build_table("table1", table, "paper", auc)
    assert list(cells["undertrained_runs"]) == [2, 0]  # class 0 in both seeds
    _, rows = layout(cells)
    assert [c["ours"][-1] for c in rows[0]["cells"]] == ["§", "5"]


def test_default_preset_trains_with_csis_lars_and_moves_the_weights(tmp_path):
    """`snakemake table1` uses the `paper` preset: CSI's LARS (trust ratio on every parameter, lr 0.1 warmed up x10).
    The same short real run moves the convolutions several times further than a LARS at a flat lr 0.1."""
    from pathlib import Path

    import yaml

    from oecl_core.runner import split_for
    from oecl_core.train import conv_weight_change

    assert yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())["preset"] == "paper"
    paper = resolve_config("paper", "cifar10", "oecl")
    assert (paper.optimizer, paper.lr, paper.lr_warmup_multiplier, paper.lr_warmup_epochs) == \
        ("lars_csi", 0.1, 10.0, 10)
    small = dict(cls=0, epochs=20, width=0.0625, batch_size=32, oe_batch_size=32, device="cpu", log_samples=32)
    changes = {}
    for name, extra in (("csi", {}), ("flat", dict(optimizer="lars", lr_warmup_multiplier=1.0))):
        cfg = resolve_config("paper", "digits", "simclr", **small, **extra)
        result = train(cfg, split_for(cfg), tmp_path / name, progress=False)
        changes[name] = conv_weight_change(result.model, cfg)
    assert changes["csi"] > 3 * changes["flat"], changes


# docs/fidelity.md's resolution order, step by step: words of the step's line in the doc's numbered list, and a probe
# of the code in which that step overrides an earlier one (the preset, step 1, overrides nothing).
def _probe_data_set(monkeypatch):
    from oecl_core import config

    monkeypatch.setitem(config.PRESETS["smoke"], "image_size", 99)  # a preset that also named a data-set value
    return resolve_config("smoke", "digits", "oecl").image_size == 16  # the digits' own


RESOLUTION_STEPS = [
    ("the preset itself", lambda mp: resolve_config("official", "cifar10", "oecl").optimizer == "sgd"),
    ("the data set's values", _probe_data_set),
    # official leave-one-out: 500 epochs over the preset's 1000
    ("`BENCHMARK_OVERRIDES`",
     lambda mp: resolve_config("official", "cifar10", "oecl", benchmark="leave_one_out").epochs == 500),
    # official self-OECL: 1000 epochs over the leave-one-out benchmark's 500, alpha 1 over DIOR's 0.1
    ("alpha 0 for a method that uses no external OE",
     lambda mp: resolve_config("paper", "cifar10", "simclr").alpha == 0),  # over CIFAR-10's 1
    # HSC: Adam over the preset's LARS, alpha 1 over DIOR's 0.1
    ("the method's own setup", lambda mp: resolve_config("paper", "dior", "hsc").optimizer == "adam"
     and resolve_config("paper", "dior", "hsc").alpha == 1.0
     and resolve_config("official", "dior", "self_oecl", benchmark="leave_one_out").epochs == 1000
     and resolve_config("official", "dior", "self_oecl").alpha == 1.0),
    ("explicit settings", lambda mp: resolve_config("paper", "dior", "hsc", alpha=0.3).alpha == 0.3
     and resolve_config("official", "cifar10", "self_oecl", benchmark="leave_one_out", epochs=7).epochs == 7),
]


def test_the_docs_resolution_order_is_resolve_configs(monkeypatch):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs/fidelity.md").read_text(encoding="utf-8")
    listed = text.split("A run's settings are resolved in this order", 1)[1].split("\n\n", 2)[1]
    lines = [line for line in listed.splitlines() if line[:1].isdigit()]
    assert len(lines) == len(RESOLUTION_STEPS), lines
    for number, (line, (words, probe)) in enumerate(zip(lines, RESOLUTION_STEPS), start=1):
        assert line.startswith(f"{number}. ") and words in line, (line, words)
        assert probe(monkeypatch), f"step {number} ({words}) does not override the steps before it in resolve_config"
    # after the steps: the warm-ups scaled to the run's final length (50 of 500 epochs, 10 of 100), unless given
    assert resolve_config("paper", "cifar10", "oecl", epochs=100).warmup_epochs == 10
    assert resolve_config("paper", "cifar10", "oecl", epochs=100, warmup_epochs=3).warmup_epochs == 3
    assert resolve_config("paper", "cifar10", "hsc", epochs=100).warmup_epochs == 0  # the baseline's own
