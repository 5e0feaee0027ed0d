"""Plain-PyTorch definition of the tiled Parzen-window log-density (:mod:`dgm_fast.ops.parzen`)."""

from __future__ import annotations

import math

import torch

__all__ = ["parzen_log_density"]


def parzen_log_density(x: torch.Tensor, samples: torch.Tensor, sigma: float, chunk: int | None = None) -> torch.Tensor:
    """``logsumexp_j(-||x_i - s_j||^2 / (2 sigma^2)) - log N - (D/2) log(2 pi sigma^2)``, ``[N_x]``,
    with the squared distances summed from the differences ``x_i - s_j`` themselves (no
    expansion, no cancellation), ``chunk`` points at a time (memory O(chunk N D); default: all)."""
    n, d = samples.shape
    log_norm = math.log(n) + 0.5 * d * math.log(2 * math.pi * sigma * sigma)
    parts = []
    for block in x.split(chunk or max(1, x.shape[0])):
        d2 = (block.unsqueeze(1) - samples.unsqueeze(0)).square().sum(-1)  # [chunk, N]
        parts.append(torch.logsumexp(-d2 / (2 * sigma * sigma), dim=1) - log_norm)
    return torch.cat(parts) if parts else x.new_empty(0)
