"""Reconstruction error: a cheap training signal, not a likelihood."""

from __future__ import annotations

import torch

from ..models.rbm import RBM

__all__ = ["reconstruction_error"]


@torch.no_grad()
def reconstruction_error(rbm: RBM, data: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel of ``E[v | E[h | data]]`` against ``data``."""
    return ((rbm.visible_probs(rbm.hidden_probs(data)) - data) ** 2).mean()
