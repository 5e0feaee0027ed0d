"""Loads the native extension ``dgm_fast._C`` and checks it matches the running torch."""

from __future__ import annotations

import torch

from . import _build_config  # written by the build: what the binary needs

def _what_to_do(running: str, running_cuda: str | None) -> str:
    major, minor = running.split(".")[:2]
    variants = f"+pt{major}{minor}cpu"
    if running_cuda:
        variants = f"+pt{major}{minor}cu{running_cuda.replace('.', '')} or " + variants
    return (
        f"Install the dgm_fast wheel built for this torch ({variants}; docs/wheels.md), or rebuild "
        "dgm_fast against the torch you have: in a checkout of dgm_fast run "
        "`pip install --no-build-isolation --no-deps --force-reinstall .`"
    )


def _public(version: str) -> str:
    return version.split("+")[0]


def check_torch_version(built_against: str, built_cuda: str, running: str, running_cuda: str | None) -> None:
    """Raises ImportError unless the extension can run with the running torch.

    The torch version must match (its public part: the extension is compiled against torch's C++
    API, which has no stable ABI across versions). A build with CUDA kernels also needs the CUDA
    version its torch had (``built_cuda``). A CPU-only build runs with any variant of its torch
    version: the CPU and CUDA builds of one torch release share libtorch_cpu's ABI, and on CUDA
    tensors its ops say that this build has no CUDA kernels.
    """
    if _public(built_against) != _public(running):
        raise ImportError(
            f"dgm_fast was built against torch {built_against} but torch {running} is "
            "installed; its kernels would not match torch's ABI. " + _what_to_do(running, running_cuda)
        )
    if built_cuda and built_cuda != (running_cuda or ""):
        running_kind = f"CUDA {running_cuda}" if running_cuda else "CPU-only"
        raise ImportError(
            f"dgm_fast was built with CUDA kernels against torch {built_against} (CUDA {built_cuda}) "
            f"but the installed torch {running} is {running_kind}. " + _what_to_do(running, running_cuda)
        )


# Checked before the binary is loaded: loading one built for another torch can fail in any way.
check_torch_version(
    _build_config.TORCH_VERSION,
    _build_config.TORCH_CUDA if _build_config.WITH_CUDA else "",
    torch.__version__,
    torch.version.cuda,
)

try:
    from . import _C
except ImportError as exc:
    raise ImportError(
        f"dgm_fast's native extension ({_build_config.VARIANT}, built against torch "
        f"{_build_config.TORCH_VERSION}) could not be loaded with torch {torch.__version__}: {exc}. "
        + _what_to_do(torch.__version__, torch.version.cuda)
    ) from exc

BUILD_INFO: dict = dict(_C.build_info())
