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
