"""Plain-PyTorch definition of the tiled MMD (:mod:`dgm_fast.ops.mmd`), with whole kernel
matrices."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..ops.mmd import DEFAULT_BANDWIDTHS

__all__ = ["direct_mmd", "mmd"]


def mmd(
    x: torch.Tensor,
    y: torch.Tensor,
    bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
    unbiased: bool = True,
) -> torch.Tensor:
    """The definition of :func:`dgm_fast.losses.mmd` with whole ``[N, N]``, ``[M, M]`` and ``[N, M]`` kernel
    matrices (memory O(N^2)); differentiable by autograd. Squared distances are
    ``||a||^2 + ||b||^2 - 2 a.b`` clamped at 0, with exact zeros on the diagonals of the
    ``k(x, x)`` and ``k(y, y)`` distance matrices, after both samples are centred on the mean of
    all their rows. :func:`direct_mmd` forms the distances from the differences themselves."""

    def sq_dist(a, b, same):
        d2 = (a.square().sum(1)[:, None] + b.square().sum(1)[None, :] - 2 * a @ b.T).clamp_min(0)
        if same:  # exact 0 on the diagonal, without an in-place write autograd would reject
            d2 = d2 * (1 - torch.eye(a.shape[0], dtype=a.dtype, device=a.device))
        return d2

    def k(a, b, same):
        d2 = sq_dist(a, b, same)
        return sum(torch.exp(-d2 / (2 * float(s) ** 2)) for s in bandwidths)

    # A common shift changes neither the MMD nor its gradient; centring keeps the expansion of
    # the squared distances from cancelling for data far from the origin (as the kernel does).
    center = torch.cat([x, y]).mean(0).detach()
    x, y = x - center, y - center
    return _mmd_from_kernels(k(x, x, True), k(y, y, True), k(x, y, False), len(bandwidths), unbiased)


def direct_mmd(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
               unbiased: bool = True) -> torch.Tensor:
    """:func:`mmd` with each squared distance summed from the pairwise differences, ``[N, M, D]``
    at once: no expansion, no cancellation (and memory O(N M D)); the yardstick for precision."""

    def k(a, b, same):
        d2 = (a.unsqueeze(1) - b.unsqueeze(0)).square().sum(-1)
        return sum(torch.exp(-d2 / (2 * float(s) ** 2)) for s in bandwidths)

    return _mmd_from_kernels(k(x, x, True), k(y, y, True), k(x, y, False), len(bandwidths), unbiased)


def _mmd_from_kernels(kxx, kyy, kxy, n_bandwidths: int, unbiased: bool) -> torch.Tensor:
    """MMD^2 from the three kernel matrices; unbiased: without the i = j terms, each of which is
    exactly one per bandwidth."""
    n, m = kxx.shape[0], kyy.shape[0]
    if unbiased:
        xx = (kxx.sum() - n * n_bandwidths) / (n * (n - 1))
        yy = (kyy.sum() - m * n_bandwidths) / (m * (m - 1))
    else:
        xx, yy = kxx.sum() / n**2, kyy.sum() / m**2
    return xx + yy - 2 * kxy.mean()
