"""The masked autoencoder for distribution estimation (Germain, Gregor, Murray & Larochelle 2015)
for binary data: an MLP whose weights are masked so that output d sees only the inputs before d
in an ordering, with direct input-to-output connections, several mask sets
(connectivity-agnostic training) and optionally one ordering per mask set (order-agnostic)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ...ops.bernoulli import bernoulli_log_prob
from ...ops.samplers import bernoulli_logits
from .._checks import check_binary, check_count, check_rows
from .._files import ModelFile
from .._layers import linear
from .._orders import check_order, random_orders

__all__ = ["MADE", "made_masks"]


def made_masks(orders: torch.Tensor, hidden_sizes: list[int], generator: torch.Generator | None = None):
    """Germain et al.'s masks for each ordering in ``orders`` ``[n_masks, D]``: per mask set, the
    list ``[M_1, ..., M_L, M_out, M_direct]`` of 0/1 float masks shaped like the weights they
    multiply (``[out, in]``).

    Unit d's degree is its position in the ordering plus one (1..D). Each hidden unit k of layer l
    gets a degree m_l(k) drawn uniformly from ``min(m_{l-1}) .. D-1`` and sees the units of the
    layer below of degree <= m_l(k); output d sees the last hidden units of degree < d's degree,
    and the inputs (directly) of degree < d's degree."""
    n_masks, D = orders.shape
    sets = []
    for order in orders:
        degree_in = torch.empty(D, dtype=torch.int64)
        degree_in[order] = torch.arange(1, D + 1)
        masks, below = [], degree_in
        for width in hidden_sizes:
            low = int(below.min())
            degree = torch.randint(low, max(D - 1, low) + 1, (width,), generator=generator)
            masks.append((degree[:, None] >= below[None, :]).float())
            below = degree
        masks.append((degree_in[:, None] > below[None, :]).float())
        masks.append((degree_in[:, None] > degree_in[None, :]).float())
        sets.append(masks)
    return sets


class MADE(ModelFile, nn.Module):
    """``p(x) = prod_d sigmoid(l_d)^{x_d} (1 - sigmoid(l_d))^{1 - x_d}`` with the logits ``l`` of a
    masked MLP of ``x`` (ReLU hidden layers), whose masks make ``l_d`` depend only on the units
    before d in the mask set's ordering.

    Args:
        n_visible: ``D``.
        hidden_sizes: widths of the hidden layers, e.g. ``[500]`` or Germain et al.'s
            ``[8000, 8000]``.
        n_masks: mask sets (connectivity-agnostic training draws one per batch; at test time
            :meth:`log_prob` averages the probabilities of all of them).
        order_agnostic: each mask set gets its own random ordering (default: index order for all).
        direct: direct input-to-output connections (masked by the ordering).
        generator: seeds the initial weights, the degrees and the orderings.

    Your own masks: :meth:`set_masks`, which refuses masks that break the autoregressive property.
    """

    def __init__(self, n_visible: int, hidden_sizes, *, n_masks: int = 1, order_agnostic: bool = False,
                 direct: bool = True, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        D = check_count(n_visible, "n_visible", "MADE")
        sizes = list(hidden_sizes) if isinstance(hidden_sizes, (list, tuple)) else None
        if not sizes or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in sizes):
            raise ValueError(f"MADE: hidden_sizes must list one or more positive widths, e.g. [500], got {hidden_sizes!r}")
        n_masks = check_count(n_masks, "n_masks", "MADE")
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"MADE: dtype must be a floating-point dtype, got {dtype}")
        self.hidden_sizes, self.order_agnostic, self.direct = sizes, bool(order_agnostic), bool(direct)
        widths = [D, *sizes]
        self.hidden = nn.ModuleList(linear(widths[i], widths[i + 1], generator, device, dtype) for i in range(len(sizes)))
        self.output = linear(sizes[-1], D, generator, device, dtype)
        self.direct_weight = (nn.Parameter(linear(D, D, generator, device, dtype).weight.detach())
                              if self.direct else None)
        orders = (random_orders(n_masks, D, generator) if order_agnostic
                  else torch.arange(D).expand(n_masks, D).clone())
        self.set_masks(made_masks(orders, sizes, generator), orders)

    # ---- masks -----------------------------------------------------------------------------

    def set_masks(self, masks, orders) -> None:
        """Installs mask sets: ``masks[m] = [M_1, ..., M_L, M_out, M_direct]`` (0/1, each
        ``[out, in]`` as the weight it multiplies; ``M_direct`` ``[D, D]``, ignored without direct
        connections) with ``orders[m]`` (``[n_masks, D]``) the ordering each must respect. Masks
        under which some output d would depend on an input that does not come before d in its
        ordering are refused, with the pair named."""
        who = "MADE.set_masks"
        D = self.n_visible
        orders = check_order(orders, D, who, rows=len(masks) if isinstance(masks, (list, tuple)) else None)
        if orders.dim() != 2 or not isinstance(masks, (list, tuple)) or len(masks) != len(orders) or not masks:
            raise ValueError(f"{who}: give a list of mask sets and a [n_masks, {D}] tensor of their orderings")
        layers = [*self.hidden, self.output]
        shapes = [tuple(layer.weight.shape) for layer in layers] + [(D, D)]
        stacked = []
        for i, shape in enumerate(shapes):
            per_set = []
            for m, mask_set in enumerate(masks):
                if not isinstance(mask_set, (list, tuple)) or len(mask_set) != len(shapes):
                    raise ValueError(f"{who}: mask set {m} must hold {len(shapes)} masks (the {len(self.hidden)} hidden "
                                     "layers', the output layer's and the direct connections')")
                mask = torch.as_tensor(mask_set[i]).detach().to("cpu", torch.float64)
                if tuple(mask.shape) != shape:
                    raise ValueError(f"{who}: mask {i} of set {m} must be {list(shape)}, got {list(mask.shape)}")
                if not torch.all((mask == 0) | (mask == 1)):
                    raise ValueError(f"{who}: mask {i} of set {m} must hold only 0 and 1")
                per_set.append(mask)
            stacked.append(torch.stack(per_set))
        for m in range(len(masks)):
            reach = stacked[0][m]
            for mask in stacked[1:-1]:
                reach = mask[m] @ reach  # paths from each input to each unit
            if self.direct:
                reach = reach + stacked[-1][m]
            position = torch.empty(D, dtype=torch.int64)
            position[orders[m].cpu()] = torch.arange(D)
            bad = (reach > 0) & (position[None, :] >= position[:, None])
            if bad.any():
                d, e = (int(v) for v in bad.nonzero()[0])
                raise ValueError(f"{who}: mask set {m} connects input {e} to output {d}, but {e} does not come before "
                                 f"{d} in its ordering (positions {int(position[e])} and {int(position[d])}): the model "
                                 "would not be autoregressive")
        device, dtype = self.output.weight.device, self.output.weight.dtype
        for i, masks_i in enumerate(stacked):
            self.register_buffer(f"mask_{i}", masks_i.to(device=device, dtype=dtype))
        self.register_buffer("orders", orders.to(device))

    @property
    def n_masks(self) -> int:
        return self.orders.shape[0]

    def _masks(self, m: int) -> list[torch.Tensor]:
        return [getattr(self, f"mask_{i}")[m] for i in range(len(self.hidden) + 2)]

    # ---- the model ---------------------------------------------------------------------------

    @property
    def n_visible(self) -> int:
        return self.output.weight.shape[0]

    def extra_repr(self) -> str:
        return (f"n_visible={self.n_visible}, hidden_sizes={self.hidden_sizes}, n_masks={self.n_masks}, "
                f"order_agnostic={self.order_agnostic}, direct={self.direct}")

    def config(self) -> dict:
        return {"n_visible": self.n_visible, "hidden_sizes": self.hidden_sizes, "n_masks": self.n_masks,
                "order_agnostic": self.order_agnostic, "direct": self.direct}

    def logits(self, x: torch.Tensor, mask: int = 0) -> torch.Tensor:
        """The conditional logits ``[B, D]`` of mask set ``mask``: ``logits[:, d]`` depends only
        on the units before d in ``orders[mask]``."""
        return self._forward(x, self._masked_weights(mask))

    def _masked_weights(self, mask: int) -> list[torch.Tensor]:
        masks = self._masks(mask)
        weights = [layer.weight * m for layer, m in zip([*self.hidden, self.output], masks)]
        return weights + ([self.direct_weight * masks[-1]] if self.direct else [])

    def _forward(self, x: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
        h = x
        for layer, w in zip(self.hidden, weights):
            h = F.relu(F.linear(h, w, layer.bias))
        out = F.linear(h, weights[len(self.hidden)], self.output.bias)
        if self.direct:
            out = out + F.linear(x, weights[-1])
        return out

    def _check(self, x, who):
        check_rows(x, self.n_visible, self.output.weight, who)
        check_binary(x, who)

    def _mask_index(self, mask, who) -> int:
        if isinstance(mask, bool) or not isinstance(mask, int) or not 0 <= mask < self.n_masks:
            raise ValueError(f"{who}: mask must be an index in 0..{self.n_masks - 1}, got {mask!r}")
        return mask

    def log_prob(self, x: torch.Tensor, mask: int | None = None) -> torch.Tensor:
        """The exact ``log p(x)`` per row ``[B]``: of mask set ``mask``, or (``None``) of the
        ensemble of all of them, ``log (1/M) sum_m p_m(x)`` (their probabilities averaged, not
        their logits: a mixture, itself normalised)."""
        self._check(x, "MADE.log_prob")
        if mask is not None:
            return bernoulli_log_prob(x, self.logits(x, self._mask_index(mask, "MADE.log_prob")))
        terms = torch.stack([bernoulli_log_prob(x, self.logits(x, m)) for m in range(self.n_masks)])
        return torch.logsumexp(terms, 0) - math.log(self.n_masks)

    def sample(self, n: int, *, mask: int | None = None, generator: torch.Generator | None = None,
               means: bool = False) -> torch.Tensor:
        """``n`` samples ``[n, D]`` by ancestral sampling (``D`` passes of the network): from mask
        set ``mask``, or (``None``) from the ensemble, each sample from a mask set drawn uniformly.
        ``means=True`` returns each unit's probability given the units sampled before it."""
        n = check_count(n, "n", "MADE.sample", minimum=0)
        device = self.output.weight.device
        if mask is None:
            which = torch.randint(self.n_masks, (n,), generator=generator, device=generator.device if generator
                                  else device).to(device)
        else:
            which = torch.full((n,), self._mask_index(mask, "MADE.sample"), device=device)
        x = torch.zeros(n, self.n_visible, device=device, dtype=self.output.weight.dtype)
        probs = torch.zeros_like(x)
        with torch.no_grad():
            for m in which.unique().tolist():
                rows = (which == m).nonzero()[:, 0]
                xm = x[rows]
                weights = self._masked_weights(m)  # once per mask set, not once per unit
                for d in self.orders[m].tolist():
                    logit = self._forward(xm, weights)[:, d:d + 1].contiguous()
                    s, p = bernoulli_logits(logit, generator=generator, return_probs=True)
                    xm[:, d] = s[:, 0]
                    probs[rows, d] = p[:, 0]
                x[rows] = xm
        return probs if means else x
