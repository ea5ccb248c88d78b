import pytest
import torch

from oecl_core.config import resolve_config
from oecl_core.data import Split
from oecl_core.methods import get_method
from oecl_core.methods.oecl import OECL
from oecl_core.models import build_model
from oecl_core.augment import SimCLRAugment
from oecl_core.train import CHECKPOINT, TrainingDiverged, ResumeMismatch, is_collapsed, read_log, train

TINY = dict(epochs=4, batch_size=8, oe_batch_size=8, width=0.0625, image_size=8, n_aug=2, checkpoint_every=1,
            log_samples=8, device="cpu")


def tiny_split(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = lambda k: torch.randint(0, 256, (k, 3, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.arange(12) % 2
    return Split(train=img(n), test=img(12), test_is_normal=labels == 0, test_labels=labels, oe=img(30),
                 description="tiny")


def cfg(**kw):
    return resolve_config("smoke", "digits", kw.pop("method", "oecl"), **{**TINY, **kw})


def test_alpha_is_zero_during_warmup(tmp_path):
    result = train(cfg(alpha=0.5, warmup_epochs=2), tiny_split(), tmp_path, progress=False)
    assert [row["alpha"] for row in result.log] == [0.0, 0.0, 0.5, 0.5]


def test_warmup_scales_with_epochs():
    assert resolve_config("paper", "digits", "oecl").warmup_epochs == 50
    assert resolve_config("paper", "digits", "self_oecl").warmup_epochs == 50
    assert resolve_config("paper", "digits", "oecl", epochs=40).warmup_epochs == 4


def test_oe_term_gradient_reaches_the_model():
    torch.manual_seed(0)
    model = build_model("cifar", 0.0625)
    split = tiny_split()
    method, aug, g = OECL(), SimCLRAugment(), torch.Generator().manual_seed(0)
    views = method.views(split.train[:8].float() / 255, split.oe[:8].float() / 255, aug, g)
    z = model(torch.cat([views.id1, views.id2, views.oe]))
    z1, z2, z_oe = z[:8], z[8:16], z[16:]
    with_oe = method.loss(z1, z2, z_oe, 1.0, 0.5)
    without = method.loss(z1, z2, z_oe, 0.0, 0.5)
    (grad_oe,) = torch.autograd.grad(with_oe - without, model.encoder.stem[0].weight)
    assert grad_oe.abs().sum() > 0  # the penalty reaches the first convolution


def test_self_oecl_views_rotate_id_and_oe():
    x = torch.rand(4, 3, 8, 8)
    identity = lambda images, g: images
    views = get_method("self_oecl").views(x, None, identity, None)
    assert views.id1.shape == (8, 3, 8, 8) and views.oe.shape == (16, 3, 8, 8)
    assert torch.equal(views.id1[4:], torch.rot90(x, 1, (2, 3)))
    assert torch.equal(views.oe[:4], torch.rot90(x, 2, (2, 3)))
    assert torch.equal(views.oe[4:8], torch.rot90(x, 3, (2, 3)))


def test_resumed_run_ends_with_the_same_weights(tmp_path):
    split = tiny_split()
    whole = train(cfg(), split, tmp_path / "whole", progress=False)
    part = train(cfg(), split, tmp_path / "resumed", stop_after_epoch=2, progress=False)
    assert not part.finished and part.epochs_done == 2
    assert torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=False)["epoch"] == 2
    resumed = train(cfg(), split, tmp_path / "resumed", progress=False)
    assert resumed.finished
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in read_log(tmp_path / "whole" / "log.csv")] == \
        [r["loss"] for r in read_log(tmp_path / "resumed" / "log.csv")]
    # a finished run is not trained again
    again = train(cfg(), split, tmp_path / "resumed", progress=False)
    assert len(again.log) == 4 and all(torch.equal(again.model.state_dict()[k], b[k]) for k in b)


def test_resume_with_other_settings_is_refused(tmp_path):
    train(cfg(), tiny_split(), tmp_path, stop_after_epoch=1, progress=False)
    with pytest.raises(ResumeMismatch, match="lr"):
        train(cfg(lr=0.5), tiny_split(), tmp_path, progress=False)


def test_nan_loss_stops_with_epoch_and_step_and_keeps_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = OECL.loss

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        loss = real(self, *args, **kwargs)
        return loss * float("nan") if calls["n"] == 4 else loss  # 2 steps per epoch: epoch 2, step 2

    monkeypatch.setattr(OECL, "loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2 of 2.*epoch 1\)"):
        train(cfg(), tiny_split(n=16), tmp_path, progress=False)
    assert torch.load(tmp_path / CHECKPOINT, weights_only=False)["epoch"] == 1


def rows(*pairs, steps=12, alpha=1.0):
    return [{"norm_id": i, "norm_oe": o, "steps": steps, "alpha": alpha} for i, o in pairs]


def test_collapse_detection():
    assert not is_collapsed(rows((1.5, 1.5), (600, 600), (5.0, 0.3)))  # norms settle, ID well above OE
    assert not is_collapsed(rows((4.6, 10.2), (0.26, 0.09)))  # small norms but ID still separated from OE
    assert is_collapsed(rows((1.5, 1.5), (4.0, 4.0), (4.0, 4.0), (0.0175, 0.0175)))  # OE overlapping the training data
    # no OE term (SimCLR) or OE term still off (warm-up): nothing pushes the ID norm down, never flagged
    assert not is_collapsed(rows((1.0, float("nan")), (1.0, float("nan")), (1.0, float("nan")), (1e-4, float("nan"))))
    assert not is_collapsed(rows((4.0, 4.0), (4.0, 4.0), (4.0, 4.0), (0.01, 0.01), alpha=0.0))


def test_collapse_ignores_norms_inflated_by_unsettled_batchnorm():
    """Few steps per epoch: the eval-mode norms of the first epochs are huge (running BN statistics still near
    their initial values), then settle; a healthy run that stays there is not a collapse, even with ID ~ OE."""
    inflated = rows((1e4, 1e4), (900.0, 800.0), (20.0, 15.0), (18.0, 12.0), (19.0, 11.0), steps=12)
    assert not is_collapsed(inflated)
    # the same fall after BN settled is a collapse
    assert is_collapsed(rows((1e4, 1e4), (900.0, 800.0), (20.0, 15.0), (18.0, 12.0), (0.5, 0.5), steps=12))
    # one step per epoch: the first 29 epochs are unsettled and do not count as the reference
    assert not is_collapsed(rows(*([(1e4, 1e4)] * 29 + [(3.0, 2.0)] * 5), steps=1))
    # a log without the steps column (older runs): epoch 1 is the only unsettled epoch
    old = [{"norm_id": i, "norm_oe": o, "alpha": 1.0} for i, o in ((1e4, 1e4), (20.0, 15.0), (19.0, 14.0))]
    assert not is_collapsed(old)


def test_overlapping_oe_with_alpha_one_collapses_and_is_flagged(tmp_path):
    """OE = the training images themselves with alpha = 1 (paper Fig. 4): the ID norms go to zero with the OE's."""
    split = tiny_split(n=32)
    split.oe = split.train.clone()
    result = train(cfg(alpha=1.0, warmup_epochs=1, epochs=30, checkpoint_every=30, lr=0.1), split, tmp_path,
                   progress=False)
    assert result.collapsed
    assert read_log(tmp_path / "log.csv")[-1]["collapsed"] == 1


@pytest.mark.parametrize("preset", ["paper", "official"])
def test_paper_and_official_presets_run(preset, tmp_path):
    from oecl_core.runner import run_experiment

    c = resolve_config(preset, "digits", "oecl", cls=2, epochs=2, width=0.0625, batch_size=32, oe_batch_size=32,
                       n_aug=2, device="cpu")
    assert c.optimizer == {"paper": "lars_csi", "official": "sgd"}[preset]
    assert c.oe_resample == (preset == "paper")
    metrics = run_experiment(c, tmp_path, progress=False)
    assert metrics["settings"]["preset"] == preset and 0 <= metrics["auroc"]["s_mu"] <= 1


@pytest.mark.parametrize("resample", [False, True])
def test_fixed_oe_reuses_the_same_subset_and_order(resample, tmp_path, monkeypatch):
    """oe_resample=False (the public code's never re-seeded samplers): every epoch sees identical ID and OE batches."""
    import oecl_core.train as engine

    seen, real = [], engine.training_step

    def spy(model, method, optimizer, augment, gen, x_id, x_oe, *rest):
        seen.append((x_id.clone(), x_oe.clone()))
        return real(model, method, optimizer, augment, gen, x_id, x_oe, *rest)

    monkeypatch.setattr(engine, "training_step", spy)
    train(cfg(oe_resample=resample, epochs=2), tiny_split(n=16), tmp_path, progress=False)
    (id1, oe1), (id2, oe2) = seen[0], seen[2]  # first step of epoch 1 and of epoch 2 (2 steps per epoch)
    assert torch.equal(oe1, oe2) != resample and torch.equal(id1, id2) != resample


def test_augmentation_stats_match_a_direct_computation():
    from oecl_core.train import augmentation_stats

    class Fixed(torch.nn.Module):  # returns preset features per call, so the statistics are known exactly
        def __init__(self, feats):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.feats, self.i = feats, 0

        def forward(self, x):
            self.i += 1
            return self.feats[:, self.i - 1]

    feats = torch.tensor([[[3.0, 1.0], [3.0, -1.0], [5.0, 1.0], [5.0, -1.0]]])  # one image, 4 views, mean (4, 0)
    stats = augmentation_stats(Fixed(feats), torch.zeros(1, 3, 4, 4, dtype=torch.uint8), lambda x, g: x, 4, views=4)
    assert stats["mu"] == pytest.approx(4.0) and stats["sigma"] == pytest.approx(1.0) \
        and stats["sigma_v"] == pytest.approx(1.0)


def test_aug_stats_are_logged_when_asked(tmp_path):
    result = train(cfg(epochs=2, aug_stats_every=2), tiny_split(), tmp_path, progress=False)
    rows = read_log(tmp_path / "log.csv")
    assert all(r["mu_id"] > 0 and r["sigma_v_ood"] > 0 for r in rows)
    assert result.log[0]["mu_id"] == pytest.approx(rows[0]["mu_id"], rel=1e-6)


def test_self_oecl_logs_the_norm_of_its_rotated_oe(tmp_path):
    result = train(cfg(method="self_oecl", epochs=1), tiny_split(), tmp_path, progress=False)
    assert result.log[0]["norm_oe"] > 0  # the 180 / 270 degree rotations of the ID probes


def test_run_lock_makes_a_second_process_wait_for_the_first(tmp_path, capfd):
    import subprocess
    import sys
    import time

    from oecl_core.io import run_lock

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from oecl_core.io import run_lock\n"
                               f"with run_lock({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(2)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    with run_lock(tmp_path):
        waited = time.monotonic() - start
    assert waited > 1.0  # granted only once the holder left its `with` after its 2 s
    assert holder.wait(timeout=60) == 0
    assert "is working on this run" in capfd.readouterr().err
    assert "pid" in (tmp_path / ".lock").read_text()


def test_an_oe_objective_with_an_empty_oe_pool_is_refused_and_oecl_trains_simclr(tmp_path, capfd):
    """Few-shot with k = 0 gives an empty OE pool: HSC (an objective over OE images) stops with a clear error before
    anything is written, while OECL trains on without its OE term, as the paper's k = 0 row does."""
    import dataclasses

    split = dataclasses.replace(tiny_split(), oe=torch.zeros(0, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"hsc is an objective over OE images.*empty \(0 images\).*shots=1"):
        train(cfg(method="hsc", benchmark="few_shot", shots=0), split, tmp_path / "hsc", progress=False)
    assert not (tmp_path / "hsc" / CHECKPOINT).exists()
    result = train(cfg(benchmark="few_shot", shots=0, epochs=2), split, tmp_path / "oecl", progress=False)
    assert len(result.log) == 2 and "trains SimCLR" in capfd.readouterr().err
