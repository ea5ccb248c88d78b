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
