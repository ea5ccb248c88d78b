"""eoe's outlier-exposure objectives (HSC, BCE, Focal) and HSC's score against their formulas, by hand."""
import math

import pytest
import torch

from oecl_core.losses import bce_loss, focal_loss, hsc_loss
from oecl_core.scores import hsc_score


def test_hsc_loss_matches_the_formula_on_hand_made_rows():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.6, 0.8], [0.0, 0.0]])
    is_oe = torch.tensor([False, False, True, True])
    d = [0.0, math.sqrt(26) - 1, math.sqrt(2) - 1, 0.0]  # sqrt(||z||^2 + 1) - 1
    expected = (d[0] + d[1] - math.log(1 - math.exp(-d[2]) + 1e-9) - math.log(1 - math.exp(-d[3]) + 1e-9)) / 4
    assert hsc_loss(z, is_oe).item() == pytest.approx(expected, rel=1e-6)
    # an OE sample at the centre costs -log(1e-9): the loss pushes OE away from the origin, normal samples towards it
    assert hsc_loss(z[3:], is_oe[3:]).item() == pytest.approx(-math.log(1e-9), rel=1e-6)


def test_hsc_score_is_higher_for_rows_nearer_the_centre():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert hsc_score(z).tolist() == pytest.approx([1.0, math.exp(-(math.sqrt(26) - 1))], rel=1e-6)


def test_bce_and_focal_losses_match_the_formulas():
    logit = torch.tensor([2.0, -1.0, 0.5])
    is_oe = torch.tensor([True, False, False])
    p = torch.sigmoid(logit).tolist()  # probability of "anomalous"
    p_t = [p[0], 1 - p[1], 1 - p[2]]
    assert bce_loss(logit, is_oe).item() == pytest.approx(-sum(math.log(q) for q in p_t) / 3, rel=1e-6)
    focal = -sum((1 - q) ** 2 * math.log(q) for q in p_t) / 3
    assert focal_loss(logit, is_oe).item() == pytest.approx(focal, rel=1e-6)
    assert focal_loss(logit, is_oe, gamma=0.0).item() == pytest.approx(bce_loss(logit, is_oe).item(), rel=1e-6)


def test_losses_have_gradients():
    z = torch.randn(6, 4, requires_grad=True)
    logit = torch.randn(6, requires_grad=True)
    is_oe = torch.tensor([0, 1, 0, 1, 0, 1], dtype=torch.bool)
    (hsc_loss(z, is_oe) + bce_loss(logit, is_oe) + focal_loss(logit, is_oe)).backward()
    assert z.grad.abs().sum() > 0 and logit.grad.abs().sum() > 0


# --- DSAD, DSVDD, GT+, CSI -------------------------------------------------------------------------------------

from oecl_core.losses import dsad_loss, dsvdd_loss, nt_xent  # noqa: E402
from oecl_core.methods import get_method  # noqa: E402
from oecl_core.methods.eoe import dsvdd_center  # noqa: E402
from oecl_core.methods.gt_plus import all_rotations, shift_images  # noqa: E402


def test_dsad_and_dsvdd_losses_match_the_formulas():
    z = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    is_oe = torch.tensor([False, True, True])
    assert dsad_loss(z, is_oe).item() == pytest.approx((25 + 1 / (1 + 1e-9) + 1 / (4 + 1e-9)) / 3, rel=1e-6)
    c = torch.tensor([1.0, 1.0])
    assert dsvdd_loss(z, c).item() == pytest.approx((4 + 9 + 0 + 1 + 1 + 1) / 3, rel=1e-6)


def test_dsvdd_centre_pushes_small_coordinates_to_plus_minus_eps():
    c = dsvdd_center(torch.tensor([0.05, -0.02, 0.0, 0.3, -0.5]))
    assert c.tolist() == pytest.approx([0.1, -0.1, 0.0, 0.3, -0.5])


def test_bce_and_dsvdd_scores_are_higher_for_normal_outputs():
    bce, dsvdd = get_method("bce"), get_method("dsvdd")
    logit = torch.tensor([[-3.0], [0.0], [2.0]])  # sigmoid(logit) = p(anomalous)
    assert bce.normality(None, logit).tolist() == pytest.approx(torch.sigmoid(-logit).flatten().tolist())

    class WithCentre:
        center = torch.tensor([1.0, 0.0])

    z = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
    assert dsvdd.normality(WithCentre, z).tolist() == pytest.approx([0.0, -4.0])


def test_focal_weight_clamps_p_t_like_eoe():
    # a logit so confident that p_t rounds to 1: eoe's clamp keeps a (1e-7)^2 weight instead of exactly 0
    loss = focal_loss(torch.tensor([-40.0]), torch.tensor([False]))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor([-40.0]), torch.tensor([0.0]))
    assert loss.item() == pytest.approx(1e-14 * bce.item(), rel=1e-3)


def test_shift_images_translates_with_a_reflected_border():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    right = shift_images(x, torch.tensor([2]), torch.tensor([0]), 1)  # tx class 2 = +s: content moves right
    assert right[0, 0, :, 1:].tolist() == x[0, 0, :, :3].tolist()
    assert right[0, 0, :, 0].tolist() == x[0, 0, :, 1].tolist()  # reflect-101: the column after the edge
    up = shift_images(x, torch.tensor([0]), torch.tensor([1]), 1)  # ty class 1 = -s: content moves up
    assert up[0, 0, :3].tolist() == x[0, 0, 1:].tolist()
    same = shift_images(x, torch.tensor([0]), torch.tensor([0]), 1)
    assert torch.equal(same, x)
    rotated, k = all_rotations(x)
    assert k.tolist() == [0, 1, 2, 3] and torch.equal(rotated[1], torch.rot90(x[0], 1, dims=(1, 2)))


def test_gt_loss_is_the_mean_head_cross_entropy_plus_half_the_uniform_cross_entropy():
    gt = get_method("gt_plus_oe")
    gt.translate = True
    z = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[0, 1, 2], [2, 2, 3], [1, 0, 0], [0, 0, 1], [2, 1, 2]])
    z_oe = torch.randn(3, 10, generator=torch.Generator().manual_seed(1))
    ce = torch.nn.functional.cross_entropy
    heads = [(slice(0, 3), 0), (slice(3, 6), 1), (slice(6, 10), 2)]
    expected = sum(ce(z[:, s], targets[:, c]) for s, c in heads) / 3
    uniform = sum(-torch.log_softmax(z_oe[:, s], dim=1).mean() for s, _ in heads) / 3
    assert gt.loss(z, None, z_oe, 0.5, 0.5, targets).item() == pytest.approx(
        (expected + 0.5 * uniform).item(), rel=1e-6)
    assert gt.loss(z, None, None, 0.0, 0.5, targets).item() == pytest.approx(expected.item(), rel=1e-6)


def test_csi_loss_is_nt_xent_over_shifted_views_plus_shift_cross_entropy():
    csi = get_method("csi")
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 132, generator=g), torch.randn(8, 132, generator=g)
    k = torch.arange(4).repeat_interleave(2)
    shift = torch.nn.functional.cross_entropy(torch.cat([z1[:, 128:], z2[:, 128:]]), torch.cat([k, k]))
    expected = nt_xent(z1[:, :128], z2[:, :128], 0.5) + shift
    assert csi.loss(z1, z2, None, 0.0, 0.5, k).item() == pytest.approx(expected.item(), rel=1e-6)


def test_csi_score_matches_the_formula_on_hand_made_features(monkeypatch):
    csi = get_method("csi")
    g = torch.Generator().manual_seed(0)
    feats = {"train": (torch.randn(4, 5, 128, generator=g), torch.rand(4, 5, generator=g) + 0.5),
             "test": (torch.randn(4, 3, 128, generator=g), torch.rand(4, 3, generator=g))}
    monkeypatch.setattr(csi, "shifted_features",
                        lambda model, images, cfg, seed: feats["train" if len(images) == 5 else "test"])
    scores = csi.score(None, torch.zeros(3), cfg=type("C", (), {"seed": 0}), train_images=torch.zeros(5))["csi_score"]
    (tz, tl), (qz, ql) = feats["train"], feats["test"]
    for i in range(3):
        total = 0.0
        for k in range(4):
            w_sim = 1 / tz[k].norm(dim=1).mean()
            w_shi = 1 / tl[k].mean()
            best = max((qz[k, i] @ (tz[k, m] / tz[k, m].norm())).item() for m in range(5))
            total += w_sim.item() * best + w_shi.item() * ql[k, i].item()
        assert scores[i] == pytest.approx(total / 4, rel=1e-5)


def test_supcon_matches_the_formula_and_is_nt_xent_when_every_label_differs():
    from oecl_core.losses import supcon

    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    labels = torch.tensor([0, 1, 0, 2])
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    y = torch.cat([labels, labels])
    total = 0.0
    for i in range(8):
        others = [a for a in range(8) if a != i]
        denom = math.log(sum(math.exp(z[i] @ z[a] / 0.5) for a in others))
        pos = [p for p in others if y[p] == y[i]]
        total += -sum((z[i] @ z[p]).item() / 0.5 - denom for p in pos) / len(pos)
    assert supcon(z1, z2, labels, 0.5).item() == pytest.approx(total / 8, rel=1e-5)
    assert supcon(z1, z2, torch.arange(4), 0.5).item() == pytest.approx(nt_xent(z1, z2, 0.5).item(), rel=1e-6)
