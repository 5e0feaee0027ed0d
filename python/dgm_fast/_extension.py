"""Loads the native extension ``dgm_fast._C`` and checks it matches the running torch."""

from __future__ import annotations

import torch

_REBUILD = (
    "Install the dgm_fast wheel built for this torch (its name carries the torch version and "
    "variant, e.g. +pt213cpu or +pt213cu130), or rebuild dgm_fast against the torch you have: in "
    "a checkout of dgm_fast run `pip install --no-build-isolation --no-deps --force-reinstall .`"
)


def _runtime() -> str:
    return f"torch {torch.__version__} ({'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU-only'})"


try:
    from . import _C
except ImportError as exc:  # most often: built against another torch (undefined symbols)
    hint = ""
    if "cuda" in str(exc).lower() and not torch.version.cuda:
        hint = "This dgm_fast was built with CUDA kernels, which need a CUDA build of torch. "
    raise ImportError(
        f"dgm_fast's native extension could not be loaded with {_runtime()}: {exc}. " + hint + _REBUILD
    ) from exc


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
            "installed; its kernels would not match torch's ABI. " + _REBUILD
        )
    if built_cuda and built_cuda != (running_cuda or ""):
        running_kind = f"CUDA {running_cuda}" if running_cuda else "CPU-only"
        raise ImportError(
            f"dgm_fast was built with CUDA kernels against torch {built_against} (CUDA {built_cuda}) "
            f"but the installed torch {running} is {running_kind}. " + _REBUILD
        )


BUILD_INFO: dict = dict(_C.build_info())
check_torch_version(
    BUILD_INFO["torch_version"],
    BUILD_INFO["torch_cuda"] if BUILD_INFO["cuda"] else "",
    torch.__version__,
    torch.version.cuda,
)
