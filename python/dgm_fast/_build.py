from __future__ import annotations

import torch

from . import _extension


def build_info() -> dict:
    """What this installation of dgm_fast was compiled with, and what it runs with now.

    Keys: ``version``, ``variant`` (what the binary needs: ``pt213cpu`` is torch 2.13 with CPU
    kernels only, ``pt213cu130`` adds CUDA kernels for torch's CUDA 13.0; wheels carry it as their
    local version), ``torch_version`` (built against), ``torch_cuda`` (that torch's CUDA version,
    "" for a CPU torch), ``torch_runtime_version``,
    ``cuda`` (CUDA kernels compiled in), ``cuda_architectures``, ``cuda_toolkit``,
    ``cuda_available`` (a GPU is usable now), ``cpu_isa`` (the instruction set of the CPU
    sampler loops in use: default, avx2 or avx512; DGM_FAST_CPU_ISA forces one), ``num_threads`` (torch's intra-op threads, which
    the CPU kernels use) and ``parallel_backend``.
    """
    info = dict(_extension._C.build_info())  # num_threads is read now, not at import
    info["torch_runtime_version"] = torch.__version__
    info["cuda_available"] = torch.cuda.is_available()
    return info
