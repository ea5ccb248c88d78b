import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    # The models of these tests are tiny: one intra-op thread is far faster than several competing for 2 busy
    # cores (and makes CPU results reproducible run to run).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _write_noise_tree(root, brightness: dict, counts=(("train", 10), ("test", 4))):
    """ROOT/{train,test}/<class>/*.png at 32 px, each class uniform noise over [low, low + 100) (brightness:
    class -> low): an ImageFolder pair in CIFAR-10's layout whose classes a model can tell apart."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in counts:
        for name, low in brightness.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(low, low + 100, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(scope="session")
def noise_tree():
    return _write_noise_tree
