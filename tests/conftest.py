import pytest
import torch

import dgm_fast

HAS_CUDA = torch.cuda.is_available() and dgm_fast.build_info()["cuda"]

requires_cuda = pytest.mark.skipif(
    not HAS_CUDA, reason="needs a GPU and a build of dgm_fast with CUDA kernels"
)

DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def make_generator(device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)
