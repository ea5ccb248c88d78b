"""oecl_core/device.py's choices for a CUDA device, checked on the CPU: cudnn.benchmark, and the channels-last
network of training and of a checkpoint loaded to score (the decision is tested, CUDA is never touched)."""
import torch

from oecl_core import device as device_module
from oecl_core.device import constant, place_network, use_cudnn_benchmark, wants_channels_last
from oecl_core.models import build_model
from oecl_core.runner import load_trained
from oecl_core.train import train

from test_train import cfg, tiny_split


def test_cudnn_benchmark_is_set_for_a_cuda_device_and_left_for_the_cpu():
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = False
        use_cudnn_benchmark(torch.device("cpu"))
        assert torch.backends.cudnn.benchmark is False
        use_cudnn_benchmark(torch.device("cuda"))  # a device object: CUDA itself is not touched
        assert torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = before


def _conv_weights(model):
    return [p for p in model.parameters() if p.dim() == 4]


def test_a_network_is_placed_channels_last_for_cuda_only():
    assert wants_channels_last(torch.device("cuda")) and wants_channels_last("cuda:1")
    assert not wants_channels_last(torch.device("cpu"))
    plain = place_network(build_model("cifar", 0.125), torch.device("cpu"))
    assert all(w.is_contiguous() for w in _conv_weights(plain))
    nhwc = place_network(build_model("cifar", 0.125), torch.device("cpu"), channels_last=True)  # as on CUDA
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(nhwc))
    assert not all(w.is_contiguous() for w in _conv_weights(nhwc))  # really changed (1x1 convolutions are both)


def test_a_checkpoint_loaded_to_score_is_placed_as_training_places_it(tmp_path, monkeypatch):
    """load_trained goes through place_network: with the CUDA decision forced on the CPU its weights come back
    channels-last, with the trained values."""
    c = cfg(epochs=1)
    trained = train(c, tiny_split(), tmp_path, progress=False).model
    monkeypatch.setattr(device_module, "wants_channels_last", lambda device: True)
    loaded = load_trained(tmp_path, c)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(loaded))
    for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_constants_are_built_once_per_device_and_dtype():
    a = constant((0.299, 0.587, 0.114), "cpu", torch.float32)
    assert constant((0.299, 0.587, 0.114), torch.device("cpu"), torch.float32) is a
    assert torch.equal(a, torch.tensor((0.299, 0.587, 0.114)))
    assert constant((0.299, 0.587, 0.114), "cpu", torch.float64).dtype == torch.float64
    with torch.inference_mode():
        made_there = constant((1.0, 2.0), "cpu", torch.float32)
    assert not made_there.is_inference()  # usable by autograd later
