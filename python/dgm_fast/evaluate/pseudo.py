"""Pseudo-likelihood: every visible unit given all the others, no partition function needed."""

from __future__ import annotations

import torch

from ..models.rbm import RBM
from ._checks import check_count, check_examples

__all__ = ["pseudo_log_likelihood"]


@torch.no_grad()
def pseudo_log_likelihood(rbm: RBM, data: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """Mean full pseudo-log-likelihood ``sum_i log p(v_i | v_-i)`` over the rows (binary visible
    units), every unit flipped in turn, not scikit-learn's one random bit:
    ``log p(v_i | v_-i) = -softplus(F(v) - F(v with bit i flipped))``."""
    if rbm.visible != "bernoulli":
        raise ValueError("pseudo_log_likelihood: defined here for Bernoulli visible units")
    rbm._check_visible(data, "data")
    check_examples(data, "pseudo_log_likelihood")
    chunk = check_count(chunk, "chunk", "pseudo_log_likelihood")
    x = rbm.hidden_preactivation(data)  # [B, H]
    free = rbm.free_energy(data)  # [B]
    total = torch.zeros(data.shape[0], dtype=torch.float64, device=data.device)
    for start in range(0, rbm.n_visible, chunk):
        idx = torch.arange(start, min(start + chunk, rbm.n_visible), device=data.device)
        sign = 1 - 2 * data[:, idx]  # +1 where the bit turns on, -1 where it turns off   [B, C]
        x_flip = x.unsqueeze(1) + sign.unsqueeze(2) * rbm.weight[idx].unsqueeze(0)  # [B, C, H]
        visible_term = (data @ rbm.visible_bias).unsqueeze(1) + sign * rbm.visible_bias[idx]  # b . v'
        free_flip = -visible_term - torch.nn.functional.softplus(x_flip).sum(2)  # F(v') [B, C]
        total += -torch.nn.functional.softplus((free.unsqueeze(1) - free_flip).double()).sum(1)
    return total.mean()
