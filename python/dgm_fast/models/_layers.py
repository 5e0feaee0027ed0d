"""The one way the models build a linear layer with reproducible initial weights."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["linear"]


def linear(n_in: int, n_out: int, generator: torch.Generator | None = None, device=None, dtype=None, *,
           bound: float | None = None) -> nn.Linear:
    """An ``nn.Linear`` whose weight, then bias, are drawn uniformly within ``bound`` from
    ``generator`` (default bound: ``nn.Linear``'s own ``1/sqrt(n_in)``)."""
    layer = nn.Linear(n_in, n_out, device=device, dtype=dtype)
    bound = bound or 1 / math.sqrt(n_in)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.rand(p.shape, generator=generator, dtype=p.dtype) * 2 * bound - bound)
    return layer
