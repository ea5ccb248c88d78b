"""The forward batch cap: how many views one forward may take, a fact of the network alone (scoring and the
throughput script read it; the planner's memory figures sit above it in resources)."""
from __future__ import annotations

import torch

# CUDA kernels that index with 32-bit offsets (the channels-last max-pool of the ImageNet stem among them) fail or
# corrupt memory once one tensor holds 2^31 elements or more; the cap keeps the largest activation this far below it.
INT32_ELEMENTS = 2**31
FORWARD_CAP_MARGIN = 0.9


def largest_activation_per_view(model: torch.nn.Module, size: int) -> int:
    """Elements per view of the largest tensor in a forward of `model` at size x size: the input or any module's
    output (in ResNet-18 the functional ReLUs and sums are as large as the convolution outputs beside them), from
    one view of zeros forwarded in eval mode without gradients on the model's own device (nothing in the model
    changes). A real forward rather than one on the meta device: meta tensors go through torch's reference ops,
    which import torch._dynamo, a second of start-up for every scored run."""
    model = getattr(model, "_orig_mod", model)  # a torch.compile'd module: count its network, do not compile it
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module
    largest = [3 * size * size]

    def hook(_module, _inputs, output):
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                largest[0] = max(largest[0], t.numel())

    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return largest[0]


def max_forward_views(model: torch.nn.Module, size: int, margin: float = FORWARD_CAP_MARGIN) -> int:
    """The most views of size x size one forward of `model` may take with its largest activation kept below
    margin * 2^31 elements (ResNet-18, width 1: 29,491 at 32 px, CIFAR stem; 2,407 at 224 px, ImageNet stem)."""
    return max(1, int(margin * INT32_ELEMENTS) // largest_activation_per_view(model, size))
