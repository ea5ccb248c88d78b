"""The cap on views per scoring forward (resources.max_forward_views): the largest activation stays below 2^31
elements, where 32-bit CUDA indexing (the channels-last max-pool of the ImageNet stem) would overflow."""
import torch

from oecl_core import scores
from oecl_core.augment import SimCLRAugment
from oecl_core.models import build_model
from oecl_core.resources import INT32_ELEMENTS, largest_activation_per_view, max_forward_views


def test_cap_at_32_and_224_px_width_1(one_torch_thread):
    cifar, imagenet = build_model("cifar", 1.0).eval(), build_model("imagenet", 1.0).eval()
    # the stems' outputs: 64 channels x 32 x 32 (stride 1), and 64 x 112 x 112 (stride 2, before the max-pool)
    assert largest_activation_per_view(cifar, 32) == 64 * 32 * 32
    assert largest_activation_per_view(imagenet, 224) == 64 * 112 * 112
    assert max_forward_views(cifar, 32) == 29491 and max_forward_views(imagenet, 224) == 2407
    assert 2407 * 64 * 112 * 112 < INT32_ELEMENTS < 2675 * 64 * 112 * 112
    assert max_forward_views(imagenet, 224) >= 2048  # score_batch_views' default is not capped: scores unchanged
    assert imagenet.encoder.stem[0].weight.device.type == "cpu"  # counted on meta: the model is untouched
    assert max_forward_views(torch.compile(imagenet), 224) == 2407  # the compiled module's network, not compiled


def test_feature_stats_forwards_at_most_the_cap(one_torch_thread, monkeypatch):
    model = build_model("cifar", 0.0625).eval()
    sizes = []
    model.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    images = (torch.rand(4, 3, 16, 16) * 255).to(torch.uint8)
    augment = SimCLRAugment(output_size=16)
    ref = scores.feature_stats(model, images, augment, n_aug=6, batch_size=4, forward_batch=4096)
    assert max(sizes) == 24  # uncapped: the 6 views of the 4 images in one forward
    monkeypatch.setattr(scores, "max_forward_views", lambda m, size: 9)
    sizes.clear()
    capped = scores.feature_stats(model, images, augment, n_aug=6, batch_size=4, forward_batch=4096)
    assert max(sizes) == 8  # 2 views of 4 images per forward: <= 9
    for k in ("s_l2", "s_l2_ens", "s_mu"):
        assert abs(ref[k] - capped[k]).max() <= 1e-4 * abs(ref[k]).max()
