"""Deep Boltzmann machines (Salakhutdinov & Hinton 2009): the module, its energy, the
unnormalized log-probability with alternate layers summed out, mean-field inference and the
block Gibbs chain."""

from __future__ import annotations

import os
from numbers import Integral

import torch
from torch import nn

from ... import ops
from ...reference import dbm as reference
from ...train.checkpoint import load_checkpoint, save_checkpoint
from .._checks import check_count

__all__ = ["DBM"]

_PARITIES = ("odd", "even")


class DBM(nn.Module):
    """A deep Boltzmann machine with Bernoulli units in every layer.

    Layers ``h_0 = v`` (visible) to ``h_L``; layer ``l`` is connected to layers ``l - 1`` and
    ``l + 1`` only::

        E(h_0, ..., h_L) = - sum_l b_l . h_l - sum_{l < L} h_l W_l h_{l+1}

    Args:
        layer_sizes: the visible layer first, then at least two hidden layers (one hidden layer
            is an RBM: :class:`dgm_fast.RBM`). ``weights[l]`` is ``[layer_sizes[l],
            layer_sizes[l + 1]]``, ``biases[l]`` is ``[layer_sizes[l]]``.
        init_std: standard deviation of the initial weights (biases start at 0).
        generator: seeds the initial weights.
    """

    def __init__(self, layer_sizes, *, init_std: float = 0.01, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        sizes = list(layer_sizes) if isinstance(layer_sizes, (list, tuple)) else None
        if sizes is None or any(isinstance(s, bool) or not isinstance(s, Integral) for s in sizes):
            raise TypeError(f"DBM: layer_sizes must be a list of integers, got {layer_sizes!r}")
        if len(sizes) < 3:
            raise ValueError(f"DBM: layer_sizes needs the visible layer and at least two hidden layers, got {sizes} "
                             "(one hidden layer is an RBM: dgm_fast.RBM)")
        if min(sizes) < 1:
            raise ValueError(f"DBM: layer sizes must be positive, got {sizes}")
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"DBM: dtype must be a floating-point dtype, got {dtype}")
        factory = {"device": device, "dtype": dtype}
        self.weights = nn.ParameterList(
            nn.Parameter((torch.randn(a, b, generator=generator, dtype=dtype) * init_std).to(device))
            for a, b in zip(sizes, sizes[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n, **factory)) for n in sizes)

    @property
    def layer_sizes(self) -> list[int]:
        return [b.shape[0] for b in self.biases]

    @property
    def n_visible(self) -> int:
        return self.biases[0].shape[0]

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}"

    def init_visible_bias_from_data(self, data: torch.Tensor, eps: float = 1e-3) -> None:
        """Sets the visible biases to the data's log-odds, as Hinton's guide recommends (and as
        ``RBM.init_visible_bias_from_data`` does); AIS's base model starts from the same
        marginals, so a model near them starts its annealing path close to its end."""
        self._check_layer(data, 0, "data")
        p = data.mean(0).clamp(eps, 1 - eps)
        with torch.no_grad():
            self.biases[0].copy_(torch.log(p) - torch.log1p(-p))

    # ---- files ----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model (layer sizes and parameters) atomically; :meth:`load` reads it back."""
        save_checkpoint(path, {"layer_sizes": self.layer_sizes, "state_dict": self.state_dict()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DBM":
        """A DBM read (on the CPU) from a file written by :meth:`save`."""
        saved = load_checkpoint(path)
        if not isinstance(saved, dict) or "layer_sizes" not in saved or "state_dict" not in saved:
            raise ValueError(f"DBM.load: {path} is not a file written by DBM.save")
        dtype = saved["state_dict"]["biases.0"].dtype
        dbm = cls(saved["layer_sizes"], dtype=dtype)
        dbm.load_state_dict(saved["state_dict"])
        return dbm

    # ---- checks ---------------------------------------------------------------------------

    def _check_layer(self, x: torch.Tensor, layer: int, what: str) -> None:
        w = self.weights[0]
        n = self.biases[layer].shape[0]
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"DBM: {what} must be a tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != n:
            raise ValueError(f"DBM: {what} must be [batch, {n}] (layer {layer}), got {list(x.shape)}")
        if x.dtype != w.dtype or x.device != w.device:
            raise ValueError(f"DBM: {what} is {x.dtype} on {x.device} but the model is {w.dtype} on {w.device}")

    def _check_states(self, states, what: str = "states", parities=("odd", "even")) -> int:
        if not isinstance(states, (list, tuple)) or len(states) != len(self.biases):
            raise ValueError(f"DBM: {what} must be a list of {len(self.biases)} tensors (one per layer, visible "
                             f"first), got {type(states).__name__} of length {len(states) if hasattr(states, '__len__') else '?'}")
        rows = None
        for layer, s in enumerate(states):
            if _parity(layer) not in parities:
                continue
            self._check_layer(s, layer, f"{what}[{layer}]")
            if rows is not None and s.shape[0] != rows:
                raise ValueError(f"DBM: {what} have different batch sizes ({rows} and {s.shape[0]} at layer {layer})")
            rows = s.shape[0]
        return rows

    # ---- energies -------------------------------------------------------------------------

    def layer_input(self, states, layer: int) -> torch.Tensor:
        """``b_l + h_{l-1} W_{l-1} + h_{l+1} W_l^T``: the input of ``layer`` from its neighbours
        (``states`` may hold anything, e.g. None, at the other layers), ``[B, n_l]``."""
        return reference.dbm_layer_input(self.weights, self.biases, states, layer)

    def energy(self, states) -> torch.Tensor:
        """``E(h_0, ..., h_L)`` per row, ``[B]``."""
        self._check_states(states)
        e = -sum(s @ b for s, b in zip(states, self.biases))
        for layer, w in enumerate(self.weights):
            e = e - ((states[layer] @ w) * states[layer + 1]).sum(1)
        return e

    def unnormalized_log_prob(self, states, summed_out: str = "odd") -> torch.Tensor:
        """``log sum exp(-E)`` over the layers of parity ``summed_out`` (``"odd"``: h_1, h_3, ...;
        ``"even"``: v, h_2, ...), given the others, per row ``[B]``. Adjacent layers have
        opposite parities, so the summed-out layers are independent given the rest and each
        contributes ``sum_j softplus(input_j)``; the entries of ``states`` at summed-out layers
        are not read (None is fine)."""
        if summed_out not in _PARITIES:
            raise ValueError(f"DBM.unnormalized_log_prob: summed_out must be 'odd' or 'even', got {summed_out!r}")
        kept = "even" if summed_out == "odd" else "odd"
        self._check_states(states, parities=(kept,))
        total = 0
        for layer, b in enumerate(self.biases):
            if _parity(layer) == kept:
                total = total + states[layer] @ b
            else:
                total = total + torch.nn.functional.softplus(self.layer_input(states, layer)).sum(1)
        return total

    # ---- inference and sampling -----------------------------------------------------------

    def mean_field(self, v: torch.Tensor, *, iterations: int = 30, tol: float | None = None,
                   damping: float = 0.0) -> list[torch.Tensor]:
        """The mean-field posterior's means ``[mu_1, ..., mu_L]`` given ``v`` (``[B, n_l]`` each):
        a bottom-up pass with doubled weights, then ``iterations`` sweeps of the fixed-point
        equations ``mu_l = sigmoid(b_l + mu_{l-1} W_{l-1} + mu_{l+1} W_l^T)``, bottom layer first
        (``tol``: stop once no mean moves by more; ``damping``: keep that share of the old mean)."""
        self._check_layer(v, 0, "v")
        check_count(iterations, "iterations", "DBM")
        if tol is not None and not tol > 0:
            raise ValueError(f"DBM.mean_field: tol must be > 0, got {tol}")
        if not 0 <= damping < 1:
            raise ValueError(f"DBM.mean_field: damping must be in [0, 1), got {damping}")
        with torch.no_grad():
            return ops.dbm.dbm_mean_field(v, list(self.weights), list(self.biases), iterations, tol=tol,
                                          damping=damping)

    def gibbs(self, states, steps: int = 1, *, clamp_visible: bool = False,
              generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """The states of every layer after ``steps`` block Gibbs sweeps (odd layers given the
        even ones, then the even given the odd) from ``states``; ``clamp_visible`` keeps the
        visible layer fixed."""
        self._check_states(states)
        check_count(steps, "steps", "DBM", minimum=0)
        with torch.no_grad():
            return ops.dbm.dbm_gibbs_chain(list(states), list(self.weights), list(self.biases), steps,
                                           clamp_visible=clamp_visible, generator=generator)

    def random_states(self, n: int, *, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Bernoulli(1/2) states of every layer, ``n`` rows: where chains start."""
        check_count(n, "n", "DBM")
        w = self.weights[0]
        return [ops.bernoulli_logits(torch.zeros(n, size, dtype=w.dtype, device=w.device), generator=generator)
                for size in self.layer_sizes]

    def sample(self, n: int, steps: int = 1000, *, visible_means: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` visible samples ``[n, n_visible]`` after ``steps`` block Gibbs sweeps from random
        states; ``visible_means``: instead of the binary states, their probabilities given the
        last states of the first hidden layer (grey levels, which read better as images)."""
        states = self.gibbs(self.random_states(n, generator=generator), steps, generator=generator)
        if not visible_means:
            return states[0]
        with torch.no_grad():
            return torch.sigmoid(self.layer_input(states, 0))


def _parity(layer: int) -> str:
    return "odd" if layer % 2 else "even"
