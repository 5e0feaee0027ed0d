"""Deep belief nets (Hinton, Osindero & Teh 2006): a stack of RBMs whose top one is an undirected
associative memory and whose lower ones act as directed, top-down sigmoid belief layers.

``layer_sizes`` lists the visible layer first: ``DBN([784, 500, 500, 2000])`` holds three RBMs,
784x500, 500x500 and 500x2000 (``dbn.rbms``, bottom first). The bottom RBM's visible units are
Bernoulli or Gaussian; every other unit is Bernoulli.
"""

from __future__ import annotations

import os
from numbers import Integral

import torch
from torch import nn

from ...train.checkpoint import load_checkpoint, save_checkpoint
from ..rbm import RBM

__all__ = ["DBN"]


class DBN(nn.Module):
    """A deep belief net made of :class:`dgm_fast.RBM` s, bottom first in ``rbms``.

    * ``transform(x)``: the top layer's probabilities, by an upward pass of probabilities
      (the recognition pass of greedy training), ``[B, layer_sizes[-1]]``.
    * ``sample(n, steps)``: ``steps`` Gibbs sweeps in the top RBM from random states, then one
      top-down pass of samples through the directed layers, ``[n, layer_sizes[0]]``.
    * Greedy layer-wise pretraining: :func:`dgm_fast.models.dbn.pretrain_dbn`.
    """

    def __init__(self, layer_sizes, visible: str = "bernoulli", *, init_std: float = 0.01,
                 generator: torch.Generator | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        sizes = list(layer_sizes) if not isinstance(layer_sizes, (str, bytes)) else None
        if sizes is None or len(sizes) < 3:
            raise ValueError(f"DBN: layer_sizes must list at least three layers (the visible one first; two are "
                             f"an RBM: use dgm_fast.RBM), got {layer_sizes!r}")
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
                raise ValueError(f"DBN: layer sizes must be positive integers, got {layer_sizes!r}")
        self.rbms = nn.ModuleList(
            RBM(int(sizes[i]), int(sizes[i + 1]), visible if i == 0 else "bernoulli", init_std=init_std,
                generator=generator, device=device, dtype=dtype)
            for i in range(len(sizes) - 1))

    @property
    def layer_sizes(self) -> list[int]:
        return [self.rbms[0].n_visible] + [rbm.n_hidden for rbm in self.rbms]

    @property
    def visible(self) -> str:
        return self.rbms[0].visible

    def config(self) -> dict:
        return {"layer_sizes": self.layer_sizes, "visible": self.visible}

    def checkpoint_header(self) -> dict:
        return {"model_class": type(self).__name__, "model_config": self.config()}

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}, visible={self.visible!r}"

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model (atomically); :meth:`load` reads it back."""
        save_checkpoint(path, {**self.checkpoint_header(), "model": self.state_dict()})

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: torch.device | str = "cpu") -> "DBN":
        """The model from a file written by :meth:`save`."""
        state = load_checkpoint(path)
        if state.get("model_class") != cls.__name__ or "model" not in state:
            raise ValueError(f"{path} does not hold a {cls.__name__} (model_class: {state.get('model_class')!r})")
        model = cls(**state["model_config"], dtype=state["model"]["rbms.0.weight"].dtype)
        model.load_state_dict(state["model"])
        return model.to(map_location)

    def _check_input(self, x: torch.Tensor, name: str = "x") -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"DBN: {name} must be a tensor, got {type(x).__name__}")
        width = self.layer_sizes[0]
        if x.dim() != 2 or x.shape[1] != width:
            raise ValueError(f"DBN: {name} must be [batch, {width}] for layer sizes {self.layer_sizes}, "
                             f"got {list(x.shape)}")

    def up(self, x: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        """The hidden probabilities of layer ``layers`` (1 = the first hidden layer; default: the
        top) by an upward pass of probabilities from ``x``: what greedy training feeds to the RBM
        above it."""
        self._check_input(x)
        layers = len(self.rbms) if layers is None else layers
        if not 0 <= layers <= len(self.rbms):
            raise ValueError(f"DBN.up: layers must lie in [0, {len(self.rbms)}], got {layers}")
        with torch.no_grad():
            for rbm in self.rbms[:layers]:
                x = rbm.hidden_probs(x)
        return x

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The top layer's probabilities given ``x``: features for a downstream model."""
        return self.up(x)

    def sample(self, n: int, steps: int = 1000, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` visible states: the top RBM's Gibbs chain for ``steps`` sweeps from random states
        gives the penultimate layer, then each layer below is drawn from ``p(h_{l-1} | h_l)``."""
        if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
            raise ValueError(f"DBN.sample: steps must be a positive integer, got {steps!r}")
        with torch.no_grad():
            h = self.rbms[-1].sample(n, steps, generator=generator)
            for rbm in reversed(self.rbms[:-1]):
                h = rbm.sample_visible(h, generator=generator)
        return h
