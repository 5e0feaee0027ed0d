"""Reconstruction error: a cheap training signal, not a likelihood."""

from __future__ import annotations

import torch

from ..models.rbm import RBM
from ._checks import check_examples

__all__ = ["reconstruction_error"]


@torch.no_grad()
def reconstruction_error(rbm: RBM, data: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel of ``E[v | E[h | data]]`` against ``data``."""
    rbm._check_visible(data, "data")
    check_examples(data, "reconstruction_error")
    return ((rbm.visible_probs(rbm.hidden_probs(data)) - data) ** 2).mean()
