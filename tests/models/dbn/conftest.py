import pytest
import torch


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 1,797 digits, binarized once with a fixed seed."""
    from dgm_fast.data import load_digits

    images, _ = load_digits()
    return torch.bernoulli(images, generator=torch.Generator().manual_seed(0))
