"""Sigmoid belief nets (Neal 1992): directed, top-down generative models of Bernoulli layers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ...ops.bernoulli import bernoulli_log_prob
from ...ops.samplers import bernoulli_logits
from .._checks import check_count, check_layer_sizes, check_rows
from .._files import ModelFile

__all__ = ["SBN"]

class SBN(ModelFile, nn.Module):
    """A sigmoid belief net: layers ``h_0 = x`` (visible) to ``h_L``, generated top-down::

        p(h_L) = prod_j Bernoulli(sigmoid(b_L)),
        p(h_l | h_{l+1}) = prod_j Bernoulli(sigmoid(W_l h_{l+1} + b_l))   for l < L.

    Args:
        layer_sizes: the visible layer first, then one or more hidden layers (as for
            :class:`dgm_fast.DBN` and :class:`dgm_fast.DBM`). ``weights[l]`` is
            ``[layer_sizes[l], layer_sizes[l + 1]]`` (layer ``l + 1`` to layer ``l``),
            ``biases[l]`` is ``[layer_sizes[l]]``; the top layer's bias is its prior's logits.
        init_std: standard deviation of the initial weights (biases start at 0).
        generator: seeds the initial weights.

    Its log-probabilities are the native :func:`dgm_fast.ops.bernoulli.bernoulli_log_prob`, its
    draws :func:`dgm_fast.ops.bernoulli_logits`.
    """

    def __init__(self, layer_sizes, *, init_std: float = 0.01, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        sizes = check_layer_sizes(layer_sizes, "SBN")
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"SBN: dtype must be a floating-point dtype, got {dtype}")
        self.weights = nn.ParameterList(
            nn.Parameter((torch.randn(a, b, generator=generator, dtype=dtype) * init_std).to(device))
            for a, b in zip(sizes, sizes[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n, device=device, dtype=dtype)) for n in sizes)
        self.layer_sizes = sizes  # a plain list: the checks of every call read it (a ParameterList is slow to index)

    @property
    def n_visible(self) -> int:
        return self.layer_sizes[0]

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}"

    def init_visible_bias_from_data(self, data: torch.Tensor, eps: float = 1e-3) -> None:
        """Sets the visible biases to the data's log-odds (the best they can be with zero weights)."""
        self._check_rows(data, 0, "data")
        p = data.mean(0).clamp(eps, 1 - eps)
        with torch.no_grad():
            self.biases[0].copy_(torch.log(p) - torch.log1p(-p))

    # ---- checks ---------------------------------------------------------------------------

    def _check_rows(self, x, layer: int, what: str) -> None:
        """``x``: ``[..., n_layer]`` of the model's dtype and device."""
        check_rows(x, self.layer_sizes[layer], self.biases[0], type(self).__name__, what, f" (layer {layer})", min_dim=1)

    # ---- the generative model -------------------------------------------------------------

    def logits(self, upper: torch.Tensor | None, layer: int) -> torch.Tensor:
        """The logits of ``p(h_layer | h_{layer+1} = upper)``, ``[..., n_layer]``; for the top
        layer (``upper`` None) its prior's logits ``b_L``, ``[n_L]``."""
        if layer == len(self.weights):
            return self.biases[layer]
        return F.linear(upper, self.weights[layer], self.biases[layer])

    def layer_log_probs(self, states) -> list[torch.Tensor]:
        """``[log p(h_0 | h_1), ..., log p(h_{L-1} | h_L), log p(h_L)]``, each ``[...]`` (the
        states' leading dimensions, e.g. ``[K, B]`` for K samples of a batch)."""
        top = len(self.weights)
        terms = [bernoulli_log_prob(states[l], self.logits(states[l + 1], l)) for l in range(top)]
        prior = self.biases[top].expand_as(states[top])
        return terms + [bernoulli_log_prob(states[top], prior)]

    def log_joint(self, states) -> torch.Tensor:
        """``log p(h_0, ..., h_L)`` per row, ``[...]``: ``states`` lists every layer, visible first."""
        self._check_states(states)
        return torch.stack(self.layer_log_probs(states)).sum(0)

    def _check_states(self, states) -> None:
        if not isinstance(states, (list, tuple)) or len(states) != len(self.biases):
            raise ValueError(f"{type(self).__name__}: states must be a list of {len(self.biases)} tensors "
                             "(one per layer, visible first)")
        for l, s in enumerate(states):
            self._check_rows(s, l, f"states[{l}]")
            if s.shape[:-1] != states[0].shape[:-1]:
                raise ValueError(f"{type(self).__name__}: states have different batch shapes "
                                 f"({list(states[0].shape[:-1])} and {list(s.shape[:-1])} at layer {l})")

    @torch.no_grad()
    def sample_states(self, n: int, *, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """``n`` ancestral samples of every layer, ``[h_0, ..., h_L]`` (visible first), each ``[n, n_l]``."""
        check_count(n, "n", type(self).__name__)
        top = len(self.weights)
        states = [bernoulli_logits(self.biases[top].expand(n, -1), generator=generator)]
        for layer in range(top - 1, -1, -1):
            states.insert(0, bernoulli_logits(self.logits(states[0], layer), generator=generator))
        return states

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, means: bool = False) -> torch.Tensor:
        """``n`` visible samples, ``[n, n_visible]``, by ancestral sampling; ``means``: the pixel
        probabilities ``p(x | h_1)`` of the samples' ``h_1`` instead of a draw of ``x`` (for pictures)."""
        if not means:
            return self.sample_states(n, generator=generator)[0]
        top = len(self.weights)
        h = bernoulli_logits(self.biases[top].expand(n, -1), generator=generator)
        for layer in range(top - 1, 0, -1):
            h = bernoulli_logits(self.logits(h, layer), generator=generator)
        return torch.sigmoid(self.logits(h, 0))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` per row, ``[B]`` (float64), by enumeration
        (:func:`dgm_fast.evaluate.exact_log_prob`: messages passed down the layers, up to 20 units
        per hidden layer and 26 for two adjacent ones; beyond that, estimate it with
        :func:`dgm_fast.evaluate.importance_log_prob`, a Helmholtz machine's recognition model as
        the proposal)."""
        from ...evaluate.exact import exact_log_prob  # evaluate imports the models

        return exact_log_prob(self, x)
