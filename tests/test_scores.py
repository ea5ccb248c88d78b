import numpy as np
import pytest
import torch
import torch.nn as nn

from oecl_core.metrics import auroc
from oecl_core.scores import feature_stats, max_cosine, s_l2, s_l2_ens, s_mu, score_images


def test_s_mu_is_squared_norm_of_the_mean():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(5, 7, 3, generator=g)
    for i in range(5):
        assert s_mu(f)[i].item() == pytest.approx(float(f[i].mean(dim=0) @ f[i].mean(dim=0)), rel=1e-5)
    assert s_mu(f).shape == (5,)
    assert torch.allclose(s_l2_ens(f), (f ** 2).sum(-1).mean(1))
    assert torch.allclose(s_l2(f[:, 0]), (f[:, 0] ** 2).sum(-1))
    # Jensen: the mean of squared norms is never below the squared norm of the mean
    assert bool((s_l2_ens(f) >= s_mu(f) - 1e-6).all())


def test_auroc_convention_normal_is_one_higher_is_more_normal():
    assert auroc([3.0, 2.0, 1.0, 0.0], [1, 1, 0, 0]) == 1.0
    assert auroc([0.0, 1.0, 2.0, 3.0], [1, 1, 0, 0]) == 0.0
    # huge scores are not squashed (a sigmoid would tie them)
    assert auroc([1e30, 2e30, 1e29], [0, 1, 0]) == 1.0
    with pytest.raises(ValueError, match="both normal and anomalous"):
        auroc([1.0, 2.0], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan, 2.0], [1, 0])


class Linear(nn.Module):
    """f(x) = W x over flattened pixels: simple enough to compute every score by hand."""

    def __init__(self):
        super().__init__()
        self.w = nn.Linear(3 * 4 * 4, 5, bias=False)

    def forward(self, x):
        return self.w(x.flatten(1))


def test_streamed_scores_equal_scores_of_stored_views():
    torch.manual_seed(0)
    model = Linear()
    images = torch.randint(0, 256, (7, 3, 4, 4), dtype=torch.uint8)
    noise = lambda x, g: x + torch.rand(x.shape, generator=g, device=x.device)  # an 'augmentation' with fixed draws
    stats = feature_stats(model, images, noise, n_aug=6, batch_size=3, seed=5, forward_batch=6)
    # replay the same draws: per batch of 3, views are drawn in passes of forward_batch // batch_size = 2
    g = torch.Generator().manual_seed(5)
    feats = []
    for start in range(0, 7, 3):
        x = images[start:start + 3].float() / 255
        views = []
        for _ in range(3):
            views += [noise(x, g), noise(x, g)]
        feats.append(torch.stack([model(v) for v in views], dim=1))
    feats = torch.cat(feats).detach()
    assert np.allclose(stats["s_mu"], s_mu(feats).numpy(), rtol=1e-5)
    assert np.allclose(stats["s_l2_ens"], s_l2_ens(feats).numpy(), rtol=1e-5)
    assert np.allclose(stats["s_l2"], s_l2(model(images.float() / 255)).detach().numpy(), rtol=1e-5)


def test_max_cosine_and_sim_score():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    q = torch.tensor([[2.0, 0.1], [-1.0, 0.0]])
    assert torch.allclose(max_cosine(q, bank), torch.tensor([0.99875, 0.0]), atol=1e-4)
    assert torch.allclose(max_cosine(bank, bank, exclude_self=True), torch.tensor([0.7071, 0.7071, 0.7071]), atol=1e-4)
    torch.manual_seed(0)
    scores = score_images(Linear(), torch.randint(0, 256, (6, 3, 4, 4), dtype=torch.uint8), lambda x, g: x,
                          train_images=torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8), n_aug=2, batch_size=4)
    assert set(scores) == {"s_l2", "s_l2_ens", "s_mu", "sim_s_mu"}
    assert all(v.shape == (6,) and np.isfinite(v).all() for v in scores.values())
