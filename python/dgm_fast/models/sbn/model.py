"""Sigmoid belief nets (Neal 1992): directed, top-down generative models of Bernoulli layers."""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn import functional as F

from ...ops.bernoulli import bernoulli_log_prob, bernoulli_sample_log_prob
from ...train.checkpoint import load_checkpoint, save_checkpoint
from .._checks import check_binary, check_count, check_finite_parameters, check_layer_sizes

__all__ = ["ModelFile", "SBN"]

# Exact log p(x) enumerates every state of each hidden layer and of each pair of adjacent ones.
_MAX_LAYER_UNITS = 20
_MAX_PAIR_UNITS = 26


def binary_states(n: int, dtype: torch.dtype, device) -> torch.Tensor:
    """All ``2^n`` binary vectors, ``[2^n, n]``; bit j of row r is unit j's state."""
    codes = torch.arange(1 << n, device=device, dtype=torch.int64)
    return ((codes.unsqueeze(1) >> torch.arange(n, device=device)) & 1).to(dtype)


class ModelFile:
    """Files of a model that is rebuilt from ``config()`` (its constructor's shape arguments):
    :meth:`save` writes the model alone, atomically; :meth:`load` reads that file or a training
    checkpoint of :func:`dgm_fast.train.fit` whose ``extra`` holds :meth:`checkpoint_header`."""

    def config(self) -> dict:
        """The constructor arguments that rebuild this model's shape."""
        return {"layer_sizes": self.layer_sizes}

    def checkpoint_header(self) -> dict:
        """What a checkpoint needs, besides the state dict, to rebuild the model from the file."""
        return {"model_class": type(self).__name__, "model_config": self.config()}

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model alone (atomically); :meth:`load` reads it back."""
        save_checkpoint(path, {**self.checkpoint_header(), "model": self.state_dict()})

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: torch.device | str = "cpu"):
        """The model from a file written by :meth:`save` or from a training checkpoint."""
        return cls.from_checkpoint(load_checkpoint(path), path).to(map_location)

    @classmethod
    def from_checkpoint(cls, state: dict, source: str | os.PathLike = "the checkpoint"):
        """The model from a checkpoint already read with :func:`dgm_fast.train.load_checkpoint`."""
        if not isinstance(state, dict) or state.get("model_class") != cls.__name__ or "model" not in state:
            got = state.get("model_class") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{source} does not hold a {cls.__name__} (model_class: {got!r})")
        dtype = next(iter(state["model"].values())).dtype
        model = cls(**state["model_config"], dtype=dtype)
        model.load_state_dict(state["model"])
        return model


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

    Every layer's draw and its log-probability come from one native pass
    (:func:`dgm_fast.ops.bernoulli.bernoulli_sample_log_prob`).
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
        w = self.biases[0]
        n = self.layer_sizes[layer]
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__}: {what} must be a tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != n:
            raise ValueError(f"{type(self).__name__}: {what} must be [batch, {n}] (layer {layer}), got {list(x.shape)}")
        if x.dtype != w.dtype or x.device != w.device:
            raise ValueError(f"{type(self).__name__}: {what} is {x.dtype} on {x.device} but the model is "
                             f"{w.dtype} on {w.device}")

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
        prior = self.biases[top].expand(n, -1)
        states = [bernoulli_sample_log_prob(prior, generator=generator)[0]]
        for layer in range(top - 1, -1, -1):
            states.insert(0, bernoulli_sample_log_prob(self.logits(states[0], layer), generator=generator)[0])
        return states

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` visible samples, ``[n, n_visible]``, by ancestral sampling."""
        return self.sample_states(n, generator=generator)[0]

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, *, chunk: int = 256) -> torch.Tensor:
        """Exact ``log p(x)`` per row, ``[B]`` (float64), by enumeration: messages passed down
        the layers, ``m_L(h_L) = log p(h_L)`` and ``m_l(h_l) = logsumexp_{h_{l+1}} [log p(h_l |
        h_{l+1}) + m_{l+1}(h_{l+1})]``, then ``log p(x) = logsumexp_{h_1} [log p(x | h_1) +
        m_1(h_1)]``. It costs ``2^(n_l + n_{l+1})`` per pair of hidden layers, so it is limited to
        20 units per hidden layer and 26 for two adjacent ones; beyond that, estimate it with
        :func:`dgm_fast.evaluate.importance_log_prob` (a Helmholtz machine's recognition model as
        the proposal).
        """
        who = f"{type(self).__name__}.log_prob"
        self._check_rows(x, 0, "x")
        if x.dim() != 2:
            raise ValueError(f"{who}: x must be [batch, {self.n_visible}], got {list(x.shape)}")
        check_binary(x, who)
        check_finite_parameters(self, who)
        hidden = self.layer_sizes[1:]
        pairs = [a + b for a, b in zip(hidden, hidden[1:])]
        if max(hidden) > _MAX_LAYER_UNITS or (pairs and max(pairs) > _MAX_PAIR_UNITS):
            raise ValueError(f"{who}: exact log p(x) enumerates every state of each hidden layer and of each pair "
                             f"of adjacent ones, practical up to {_MAX_LAYER_UNITS} units per layer and "
                             f"{_MAX_PAIR_UNITS} per pair; this model has layers {self.layer_sizes}. Estimate it with "
                             "dgm_fast.evaluate.importance_log_prob(helmholtz_machine, x), the recognition "
                             "model as the proposal")
        check_count(chunk, "chunk", who)
        w = [p.double() for p in self.weights]
        b = [p.double() for p in self.biases]
        top = len(w)
        states = [None] + [binary_states(n, torch.float64, x.device) for n in hidden]
        message = bernoulli_log_prob(states[top], b[top].expand_as(states[top]))  # [2^n_L]
        for layer in range(top - 1, 0, -1):
            logits = F.linear(states[layer + 1], w[layer], b[layer])  # [T, n_l]
            # log p(s | t) for every state s of layer l and t of layer l + 1: s.l_t - sum softplus(l_t)
            cond = states[layer] @ logits.t() - F.softplus(logits).sum(1)  # [S, T]
            message = torch.logsumexp(cond + message, dim=1)
        logits = F.linear(states[1], w[0], b[0])  # [S1, V]
        softplus = F.softplus(logits).sum(1)
        out = []
        for rows in x.double().split(chunk):
            out.append(torch.logsumexp(rows @ logits.t() - softplus + message, dim=1))
        return torch.cat(out) if out else x.new_zeros(0, dtype=torch.float64)
