"""Plain-PyTorch definitions of the NADE ops of :mod:`dgm_fast.ops.nade`: the recurrence as a
Python loop over the positions (what the native kernels compute), the cumulative-sum
formulation most implementations use (all positions at once, through a ``[B, D, H]`` tensor),
and ancestral sampling from given random words. Differentiable by autograd.

Parameters as in the ops: ``bias_visible [D]``, ``bias_hidden [H]``, ``weight_in [D, H]``,
``weight_out [D, H]``; ``order`` is ``None`` (0..D-1), ``[D]`` or ``[B, D]``.
"""

from __future__ import annotations

import torch

from .bernoulli import bernoulli_log_prob
from .samplers import bernoulli_logits

__all__ = ["nade_log_prob", "nade_log_prob_cumsum", "nade_sample"]


def _orders(order: torch.Tensor | None, rows: int, D: int, device) -> torch.Tensor:
    if order is None:
        order = torch.arange(D, device=device)
    return order.expand(rows, D)


def nade_log_prob(x, bias_visible, bias_hidden, weight_in, weight_out, order=None):
    """``(log_prob [B], logits [B, D])`` by the loop ``a = c; for each position i (unit d):
    logit_d = b_d + V[d] . sigmoid(a); a += x_d W[d]``."""
    B, D = x.shape
    orders = _orders(order, B, D, x.device)
    rows = torch.arange(B, device=x.device)
    a = bias_hidden.expand(B, -1)
    logits = x.new_zeros(B, D)
    for i in range(D):
        d = orders[:, i]
        logit = bias_visible[d] + (weight_out[d] * torch.sigmoid(a)).sum(-1)
        logits = logits.index_put((rows, d), logit)
        a = a + x[rows, d, None] * weight_in[d]
    return bernoulli_log_prob(x, logits), logits


def nade_log_prob_cumsum(x, bias_visible, bias_hidden, weight_in, weight_out, order=None):
    """The same as :func:`nade_log_prob`, with every position's pre-activations at once: ``a_i =
    c + (exclusive cumulative sum over positions of x_d W[d])``, a ``[B, D, H]`` tensor."""
    B, D = x.shape
    orders = _orders(order, B, D, x.device)
    x_ordered = x.gather(1, orders)  # [B, D] in each row's order
    terms = x_ordered[..., None] * weight_in[orders]  # [B, D, H]
    a = bias_hidden + terms.cumsum(1) - terms  # the sum over the positions before i
    logits_ordered = bias_visible[orders] + (weight_out[orders] * torch.sigmoid(a)).sum(-1)
    logits = torch.empty_like(logits_ordered).scatter(1, orders, logits_ordered)
    return bernoulli_log_prob(x, logits), logits


def nade_sample(bias_visible, bias_hidden, weight_in, weight_out, n, order=None, words=None):
    """``(sample [n, D], logits [n, D])`` drawn unit by unit along each row's ordering, the unit
    at position ``i`` of row ``r`` taking word ``r * D + i`` of ``words`` (the call's words,
    :func:`dgm_fast.ops.uniform_bits` of ``n * D`` with the same generator state) as
    :func:`dgm_fast.reference.samplers.bernoulli_logits` does."""
    D = weight_in.shape[0]
    orders = _orders(order, n, D, weight_in.device)
    rows = torch.arange(n, device=weight_in.device)
    words = words.reshape(n, D)
    a = bias_hidden.expand(n, -1)
    sample = weight_in.new_zeros(n, D)
    logits = weight_in.new_zeros(n, D)
    for i in range(D):
        d = orders[:, i]
        logit = bias_visible[d] + (weight_out[d] * torch.sigmoid(a)).sum(-1)
        s, _ = bernoulli_logits(logit[:, None], None, words[:, i:i + 1])
        logits = logits.index_put((rows, d), logit)
        sample = sample.index_put((rows, d), s[:, 0])
        a = a + s * weight_in[d]
    return sample, logits
