"""Squared maximum mean discrepancy with a sum of RBF kernels, computed in tiles.

``torch.ops.dgm_fast.mmd`` (``csrc/mmd/mmd.cpp``: ATen products per 1024 x 1024 tile, so
memory is O((N + M) D + tile^2) rather than O(N M), on the CPU and CUDA) with its fake kernel
and an analytic, also tiled, backward (the native op ``torch.ops.dgm_fast.mmd_backward``);
``torch.ops.dgm_fast.mmd_with_grad`` gives the value and the gradient from one pass, which
:func:`mmd` uses when a gradient is wanted. The
plain-PyTorch definition, which holds whole N x M kernel matrices, is
:func:`dgm_fast.reference.mmd.mmd`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable

from .. import _extension  # noqa: F401  (registers the ops)
from ._checks import check_same_device, check_type, check_value, doubles, dtype_name, sizes

__all__ = ["mmd", "DEFAULT_BANDWIDTHS"]

_lib = torch.ops.dgm_fast

DEFAULT_BANDWIDTHS = (1.0, 2.0, 4.0, 8.0, 16.0)


def mmd(
    x: torch.Tensor,
    y: torch.Tensor,
    bandwidths: Sequence[float] | float = DEFAULT_BANDWIDTHS,
    kernel: str = "rbf",
    unbiased: bool = True,
) -> torch.Tensor:
    """Squared MMD between the samples ``x`` and ``y`` (a 0-dim tensor), the loss of generative
    moment matching networks.

    ``k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2))`` over ``bandwidths``;
    ``MMD^2 = mean k(x, x') + mean k(y, y') - 2 mean k(x, y)``. ``unbiased=True`` leaves the
    ``i = j`` terms out of the first two means (divides by ``N (N - 1)``), an estimator that is
    0 on average when ``x`` and ``y`` come from the same distribution and can be negative;
    ``unbiased=False`` keeps them (divides by ``N^2``) and is never negative.

    Args:
        x: ``[N, D]`` float32 or float64, one sample per row.
        y: ``[M, D]``, same dtype and device.
        bandwidths: one or more positive kernel widths ``s`` (a number or a sequence).
        kernel: ``"rbf"`` (the only kernel).
        unbiased: see above; needs ``N, M >= 2``.

    Precision: both samples are centred on the mean of all rows first, so a common offset costs
    nothing, but each squared distance still carries an absolute error of about
    ``max|x - mean|^2 * eps`` (eps = 6e-8 in float32): for a spread R and bandwidth s keep
    ``R^2 * eps / s^2`` small, or pass float64.

    Differentiable with respect to ``x`` and ``y`` (first order). When either requires a
    gradient, the value and the gradient come from one tiled pass (``mmd_with_grad``: the
    distance products and exponentials are formed once, not again in the backward pass), and the
    backward pass only scales the stored gradient.
    """
    if isinstance(bandwidths, numbers.Real):  # one bandwidth
        bandwidths = (bandwidths,)
    bw = [float(s) for s in bandwidths]
    if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):
        return _MmdWithGrad.apply(x, y, bw, kernel, unbiased)
    return _lib.mmd(x, y, bw, kernel_kind=kernel, unbiased=unbiased)


class _MmdWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, bandwidths, kernel, unbiased):
        value, grad_x, grad_y = _lib.mmd_with_grad(x, y, bandwidths, kernel_kind=kernel, unbiased=unbiased)
        ctx.save_for_backward(grad_x, grad_y)
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        grad_x, grad_y = ctx.saved_tensors
        return grad.to(grad_x.dtype) * grad_x, grad.to(grad_y.dtype) * grad_y, None, None, None


def _check_args(x, y, bandwidths, kernel, unbiased, op):
    # csrc/mmd/mmd.cpp: check_mmd_args
    check_value(kernel == "rbf", lambda: f"{op}: kernel must be 'rbf' (a sum of Gaussian kernels), got '{kernel}'")
    check_type(x.dtype in (torch.float32, torch.float64),
               lambda: f"{op}: x must be float32 or float64, got {dtype_name(x.dtype)}")
    check_type(y.dtype == x.dtype, lambda: f"{op}: y has dtype {dtype_name(y.dtype)} but x has dtype {dtype_name(x.dtype)}")
    check_same_device(x, y, op, "x", "y")
    check_value(x.dim() == 2 and y.dim() == 2, lambda: f"{op}: x and y must be 2-D, [N, D] and [M, D] (one sample "
                f"per row), got shapes {sizes(x)} and {sizes(y)}")
    check_value(x.shape[1] == y.shape[1], lambda: f"{op}: x and y must have the same number of columns (features), "
                f"got x of shape {sizes(x)} and y of shape {sizes(y)}")
    min_rows = 2 if unbiased else 1
    check_value(x.shape[0] >= min_rows and y.shape[0] >= min_rows,
                lambda: f"{op}: the {'unbiased' if unbiased else 'biased'} estimator needs at least {min_rows} rows "
                f"in x and in y, got {x.shape[0]} and {y.shape[0]}")
    check_value(len(bandwidths) > 0, lambda: f"{op}: bandwidths must name at least one bandwidth")
    check_value(all(math.isfinite(s) and s > 0 for s in bandwidths),
                lambda: f"{op}: every bandwidth must be positive and finite, got {doubles(bandwidths)}")


@torch.library.register_fake("dgm_fast::mmd")
def _mmd_fake(x, y, bandwidths, *, kernel_kind="rbf", unbiased=True):
    _check_args(x, y, bandwidths, kernel_kind, unbiased, "mmd")
    return x.new_empty(())


@torch.library.register_fake("dgm_fast::mmd_with_grad")
def _mmd_with_grad_fake(x, y, bandwidths, *, kernel_kind="rbf", unbiased=True):
    _check_args(x, y, bandwidths, kernel_kind, unbiased, "mmd_with_grad")
    return x.new_empty(()), x.new_empty(x.shape), y.new_empty(y.shape)


@torch.library.register_fake("dgm_fast::mmd_backward")
def _mmd_backward_fake(grad, x, y, bandwidths, *, kernel_kind="rbf", unbiased=True):
    # csrc/mmd/mmd.cpp: mmd_backward_impl, then the checks of mmd_with_grad
    check_value(grad.dim() == 0, lambda: f"mmd_backward: grad must be 0-dim (MMD^2 is a scalar), got shape {sizes(grad)}")
    check_same_device(grad, x, "mmd_backward", "grad", "x")
    _check_args(x, y, bandwidths, kernel_kind, unbiased, "mmd_with_grad")
    return x.new_empty(x.shape), y.new_empty(y.shape)


def _mmd_setup(ctx, inputs, keyword_only_inputs, output):
    x, y, bandwidths = inputs
    ctx.save_for_backward(x, y)
    ctx.bandwidths = bandwidths
    ctx.kernel_kind = keyword_only_inputs["kernel_kind"]
    ctx.unbiased = keyword_only_inputs["unbiased"]


def _mmd_backward(ctx, grad):
    x, y = ctx.saved_tensors
    grad_x, grad_y = _lib.mmd_backward(
        grad.to(x.dtype), x, y, ctx.bandwidths, kernel_kind=ctx.kernel_kind, unbiased=ctx.unbiased
    )
    return grad_x, grad_y, None


torch.library.register_autograd("dgm_fast::mmd", _mmd_backward, setup_context=_mmd_setup)
