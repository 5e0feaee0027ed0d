"""Parzen-window (Gaussian kernel density) log-densities, computed in tiles.

``torch.ops.dgm_fast.parzen_log_density`` (``csrc/parzen/parzen.cpp``: one ATen product per
1024-sample x 4096-point tile and the fused column log-sum-exp of ``iwae_bound``, so memory is
O((N_x + N) D + tile^2) rather than O(N_x N), on the CPU and CUDA) with its fake kernel. The
plain-PyTorch definition is :func:`dgm_fast.reference.parzen.parzen_log_density`; the evaluation
built on it (bandwidth selection, standard errors) is :mod:`dgm_fast.evaluate.parzen`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from .. import _extension  # noqa: F401  (registers the ops)
from ._checks import check_same_device, check_type, check_value, doubles, dtype_name, sizes

__all__ = ["parzen_log_density"]

_lib = torch.ops.dgm_fast


def parzen_log_density(x: torch.Tensor, samples: torch.Tensor, sigma: float | Sequence[float]) -> torch.Tensor:
    """``log p(x_i)`` under the Gaussian kernel density of ``samples``, ``[N_x]``:

    ``log (1/N) sum_j N(x_i | s_j, sigma^2 I)
    = logsumexp_j(-||x_i - s_j||^2 / (2 sigma^2)) - log N - (D/2) log(2 pi sigma^2)``.

    Args:
        x: ``[N_x, D]`` float32 or float64, the points to evaluate (``N_x`` may be 0).
        samples: ``[N, D]``, same dtype and device, ``N >= 1``: the kernels' centres (a model's
            samples).
        sigma: the kernels' standard deviation, positive; or a sequence of them, which gives
            ``[len(sigma), N_x]`` from one pass (each tile's product serves every width).

    Precision: the rows are centred on the samples' mean, and each squared distance is expanded
    as ``||x||^2 + ||s||^2 - 2 x.s``, whose absolute error is about ``max||x - mean||^2 * eps``
    (eps = 6e-8 in float32): a log-density carries that error divided by ``2 sigma^2``. For a small
    ``sigma`` on widely spread data pass float64. NaN in a point gives NaN for that point; NaN in a
    sample gives NaN everywhere.

    An evaluation, not a loss: the result has no gradient (the inputs are detached).
    """
    if isinstance(sigma, numbers.Real):
        return _lib.parzen_log_density(x.detach(), samples.detach(), [float(sigma)])[0]
    return _lib.parzen_log_density(x.detach(), samples.detach(), [float(s) for s in sigma])


def _check_args(x, samples, sigmas, op):
    # csrc/parzen/parzen.cpp: check_parzen_args
    check_type(x.dtype in (torch.float32, torch.float64),
               lambda: f"{op}: x must be float32 or float64, got {dtype_name(x.dtype)}")
    check_type(samples.dtype == x.dtype,
               lambda: f"{op}: samples has dtype {dtype_name(samples.dtype)} but x has dtype {dtype_name(x.dtype)}")
    check_same_device(x, samples, op, "x", "samples")
    check_value(x.dim() == 2 and samples.dim() == 2, lambda: f"{op}: x and samples must be 2-D, [N_x, D] and [N, D] "
                f"(one point per row), got shapes {sizes(x)} and {sizes(samples)}")
    check_value(x.shape[1] == samples.shape[1], lambda: f"{op}: x and samples must have the same number of columns "
                f"(features), got x of shape {sizes(x)} and samples of shape {sizes(samples)}")
    check_value(samples.shape[0] >= 1, lambda: f"{op}: samples is empty (shape {sizes(samples)}); a kernel density "
                "needs at least one sample")
    check_value(len(sigmas) > 0, lambda: f"{op}: sigmas must name at least one kernel width")
    check_value(all(math.isfinite(s) and s > 0 for s in sigmas), lambda: f"{op}: every sigma (the kernel's standard "
                f"deviation) must be positive and finite, got {doubles(sigmas)}")


@torch.library.register_fake("dgm_fast::parzen_log_density")
def _parzen_log_density_fake(x, samples, sigmas):
    _check_args(x, samples, sigmas, "parzen_log_density")
    return x.new_empty(len(sigmas), x.shape[0])
