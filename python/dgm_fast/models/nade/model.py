"""The neural autoregressive distribution estimator (Larochelle & Murray 2011) for binary data,
with optional order-agnostic training and ensembles over orderings (Uria, Murray & Larochelle
2014). Its recurrence runs in one native call (:mod:`dgm_fast.ops.nade`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...ops.nade import nade_log_prob, nade_sample
from .._checks import check_binary, check_count, check_rows
from .._files import ModelFile
from .._orders import check_order, random_orders

__all__ = ["NADE"]


class NADE(ModelFile, nn.Module):
    """``p(x) = prod_i p(x_{o_i} | x_{o_<i})`` for binary ``x``, each conditional a sigmoid of a
    hidden layer that all the conditionals share::

        h_i = sigmoid(c + W[o_<i]^T x_{o_<i}),  p(x_{o_i} = 1 | x_{o_<i}) = sigmoid(b_{o_i} + V[o_i] . h_i)

    Args:
        n_visible, n_hidden: ``D`` and ``H``.
        order: the model's ordering of the units (a permutation of ``0..D-1``; default: index
            order). ``log_prob`` and ``sample`` use it unless given another.
        generator: seeds the initial weights (uniform in ``+-1/sqrt(D)`` for ``weight_in``,
            ``+-1/sqrt(H)`` for ``weight_out``; biases zero).

    Parameters (the layout of :mod:`dgm_fast.ops.nade`): ``bias_visible [D]``, ``bias_hidden
    [H]``, ``weight_in [D, H]`` (row d: visible unit d to the hidden units), ``weight_out [D, H]``
    (row d: the hidden units to unit d's output).

    A NADE trained with a random ordering per example (``fit_nade(order_agnostic=True)``) is a
    model for every ordering at once: :meth:`ensemble_log_prob` averages the probabilities of
    several.
    """

    def __init__(self, n_visible: int, n_hidden: int, *, order=None, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        D = check_count(n_visible, "n_visible", "NADE")
        H = check_count(n_hidden, "n_hidden", "NADE")
        if dtype is not None and dtype not in (torch.float32, torch.float64):
            raise TypeError(f"NADE: dtype must be float32 or float64, got {dtype}")
        dtype = dtype or torch.get_default_dtype()

        def uniform(bound, *shape):
            return (torch.rand(*shape, generator=generator, dtype=dtype) * 2 - 1).mul_(bound).to(device)

        self.bias_visible = nn.Parameter(torch.zeros(D, dtype=dtype, device=device))
        self.bias_hidden = nn.Parameter(torch.zeros(H, dtype=dtype, device=device))
        self.weight_in = nn.Parameter(uniform(1 / math.sqrt(D), D, H))
        self.weight_out = nn.Parameter(uniform(1 / math.sqrt(H), D, H))
        order = torch.arange(D) if order is None else check_order(order, D, "NADE")
        self.register_buffer("order", order.to(device=device, dtype=torch.int64))

    @property
    def n_visible(self) -> int:
        return self.weight_in.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.weight_in.shape[1]

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}"

    def config(self) -> dict:
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden}

    def _params(self):
        return self.bias_visible, self.bias_hidden, self.weight_in, self.weight_out

    def _order(self, order, rows: int | None, who: str) -> torch.Tensor:
        if order is None:
            return self.order
        return check_order(order, self.n_visible, who, rows=rows).to(self.order.device)

    def log_prob_and_logits(self, x: torch.Tensor, order=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log p(x) [B], logits [B, D])`` under ``order`` (``[D]`` or one per row ``[B, D]``;
        default: the model's), ``logits[r, d]`` that of ``p(x_d = 1 | the units before d)``.
        Exact and differentiable in the parameters."""
        check_rows(x, self.n_visible, self.weight_in, "NADE.log_prob")
        check_binary(x, "NADE.log_prob")
        return nade_log_prob(x, *self._params(), self._order(order, x.shape[0], "NADE.log_prob"))

    def log_prob(self, x: torch.Tensor, order=None) -> torch.Tensor:
        """The exact ``log p(x)`` per row, ``[B]``, under ``order`` (default: the model's)."""
        return self.log_prob_and_logits(x, order)[0]

    def ensemble_log_prob(self, x: torch.Tensor, n_orderings: int, *, generator: torch.Generator | None = None,
                          include_own: bool = True) -> torch.Tensor:
        """``log (1/K) sum_k p(x | o_k)`` per row over ``K = n_orderings`` orderings: the model's
        own (unless ``include_own=False``) and random ones from ``generator``, the same for every
        row. The mixture is itself a normalised distribution, and for an order-agnostic NADE a
        better one than any single ordering (Uria et al. 2014)."""
        K = check_count(n_orderings, "n_orderings", "NADE.ensemble_log_prob")
        check_rows(x, self.n_visible, self.weight_in, "NADE.ensemble_log_prob")
        check_binary(x, "NADE.ensemble_log_prob")
        orders = random_orders(K, self.n_visible, generator, device=self.order.device)
        if include_own:
            orders[0] = self.order
        terms = torch.stack([nade_log_prob(x, *self._params(), o)[0] for o in orders])
        return torch.logsumexp(terms, 0) - math.log(K)

    def sample(self, n: int, *, order=None, generator: torch.Generator | None = None, means: bool = False):
        """``n`` samples ``[n, D]`` by ancestral sampling along ``order`` (``[D]`` or ``[n, D]``;
        default: the model's), in one native call. ``means=True`` returns, instead of the 0/1
        states, each unit's probability given the units sampled before it (smoother pictures)."""
        n = check_count(n, "n", "NADE.sample", minimum=0)
        with torch.no_grad():
            sample, logits = nade_sample(*self._params(), n, self._order(order, n, "NADE.sample"),
                                         generator=generator)
        return torch.sigmoid(logits) if means else sample
