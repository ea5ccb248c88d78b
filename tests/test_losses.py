import math

import pytest
import torch

from oecl_core.losses import mean_norm, nt_xent, oecl_loss


def nt_xent_by_hand(z1, z2, t):
    """The SimCLR loss written out anchor by anchor, straight from the definition."""
    views = [v / v.norm() for v in torch.cat([z1, z2]).double()]
    n, b = len(views), len(z1)
    total = 0.0
    for i in range(n):
        positive = (i + b) % n
        denom = sum(math.exp(float(views[i] @ views[k]) / t) for k in range(n) if k != i)
        total += -math.log(math.exp(float(views[i] @ views[positive]) / t) / denom)
    return total / n


@pytest.mark.parametrize("b,d,t", [(2, 3, 0.5), (5, 8, 0.5), (7, 16, 0.1)])
def test_nt_xent_matches_the_formula(b, d, t):
    g = torch.Generator().manual_seed(b * d)
    z1, z2 = torch.randn(b, d, generator=g) * 3, torch.randn(b, d, generator=g)
    assert nt_xent(z1, z2, t).item() == pytest.approx(nt_xent_by_hand(z1, z2, t), rel=1e-5)


def test_nt_xent_is_scale_invariant_and_low_for_aligned_views():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 16, generator=g)
    assert nt_xent(z, z * 5).item() < nt_xent(z, torch.randn(8, 16, generator=g)).item()
    assert nt_xent(z, z).item() == pytest.approx(nt_xent(10 * z, 0.1 * z).item(), rel=1e-5)


def test_nt_xent_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        nt_xent(torch.randn(4, 8), torch.randn(5, 8))


def test_oecl_loss_is_nt_xent_plus_alpha_times_mean_unsquared_norm():
    g = torch.Generator().manual_seed(1)
    z1, z2, z_oe = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g), torch.randn(10, 8, generator=g) * 2
    expected = nt_xent(z1, z2, 0.5) + 0.3 * torch.stack([v.norm() for v in z_oe]).mean()
    assert oecl_loss(z1, z2, z_oe, alpha=0.3).item() == pytest.approx(expected.item(), rel=1e-6)
    assert oecl_loss(z1, z2, z_oe, alpha=0.0).item() == pytest.approx(nt_xent(z1, z2).item(), rel=1e-6)
    assert mean_norm(torch.tensor([[3.0, 4.0], [0.0, 1.0]])).item() == pytest.approx(3.0)


def test_oe_penalty_gradient_points_to_zero():
    z_oe = torch.randn(4, 8, requires_grad=True)
    oecl_loss(torch.randn(3, 8), torch.randn(3, 8), z_oe, alpha=1.0).backward()
    # d||z|| / dz = z / ||z||, divided by the number of OE views
    expected = z_oe.detach() / z_oe.detach().norm(dim=1, keepdim=True) / 4
    assert torch.allclose(z_oe.grad, expected, atol=1e-6)


def test_align_and_uniform_losses_by_hand():
    from oecl_core.methods.align_uniform import AlignUniform, AlignUniformRaw, align_loss, uniform_loss

    z1, z2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert align_loss(z1, z2).item() == pytest.approx((2.0 + 0.0) / 2)
    # two points at squared distance 2: log mean exp(-2) over the 2 ordered pairs
    assert uniform_loss(z1).item() == pytest.approx(-2.0)
    m = AlignUniform()
    assert m.loss(z1 * 3, z2 * 3, None, 0.0, 0.5).item() == pytest.approx(
        1.0 + (-2.0 + uniform_loss(z2).item()) / 2, abs=1e-6)
    # without normalisation the scale matters
    assert AlignUniformRaw().loss(z1 * 3, z2 * 3, None, 0.0, 0.5).item() != pytest.approx(
        m.loss(z1 * 3, z2 * 3, None, 0.0, 0.5).item())
