"""Deep belief nets (Hinton, Osindero & Teh 2006): a stack of RBMs whose top one is an undirected
associative memory and whose lower ones act as directed, top-down sigmoid belief layers.

``layer_sizes`` lists the visible layer first: ``DBN([784, 500, 500, 2000])`` holds three RBMs,
784x500, 500x500 and 500x2000 (``dbn.rbms``, bottom first). The bottom RBM's visible units are
Bernoulli or Gaussian; every other unit is Bernoulli.

Greedy training leaves the weights of each directed layer **tied**: ``rbms[l].weight`` both
generates layer ``l`` from layer ``l + 1`` (top-down, with ``rbms[l].visible_bias``) and
recognises layer ``l + 1`` from layer ``l`` (bottom-up, with ``rbms[l].hidden_bias``).
Up-down fine-tuning (:func:`dgm_fast.models.dbn.fine_tune_dbn`) **unties** them: ``untie()``
copies each directed layer's weight into ``recognition_weights[l]``, which the upward pass uses
from then on, while ``rbms[l].weight`` stays the generative weight. The biases need no copy:
every unit of a directed layer already has one bias for each direction.
"""

from __future__ import annotations

import os
from numbers import Integral

import torch
from torch import nn
from torch.utils.data import DataLoader

from ... import ops
from ...train.checkpoint import load_checkpoint, save_checkpoint
from ..rbm import RBM

__all__ = ["DBN"]


class DBN(nn.Module):
    """A deep belief net made of :class:`dgm_fast.RBM` s, bottom first in ``rbms``.

    * ``transform(x)``: the top layer's probabilities, by an upward pass of probabilities
      (the recognition pass of greedy training), ``[B, layer_sizes[-1]]``.
    * ``sample(n, steps)``: ``steps`` Gibbs sweeps in the top RBM from random states, then one
      top-down pass of samples through the directed layers, ``[n, layer_sizes[0]]``.
    * Greedy layer-wise pretraining: :func:`dgm_fast.models.dbn.pretrain_dbn`; up-down
      fine-tuning: :func:`dgm_fast.models.dbn.fine_tune_dbn`.
    * ``untied``: whether the directed layers have their own recognition weights
      (``recognition_weights``, ``[layer_sizes[l], layer_sizes[l + 1]]`` for each directed layer
      ``l``); see :meth:`untie`.
    """

    def __init__(self, layer_sizes, visible: str = "bernoulli", *, untied: bool = False, init_std: float = 0.01,
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
        self.recognition_weights = nn.ParameterList()
        if untied:
            self.untie()

    @classmethod
    def from_rbms(cls, rbms) -> "DBN":
        """A DBN made of trained RBMs, bottom first (they are used, not copied): each RBM's
        hidden layer must be the next one's visible layer, and every unit but the bottom
        visible ones Bernoulli."""
        rbms = list(rbms)
        if len(rbms) < 2 or not all(isinstance(rbm, RBM) for rbm in rbms):
            raise ValueError("DBN.from_rbms: needs at least two dgm_fast.RBMs, bottom first")
        _check_chain(rbms, "DBN.from_rbms")
        bottom = rbms[0]
        dbn = cls([bottom.n_visible] + [rbm.n_hidden for rbm in rbms], bottom.visible,
                  device=bottom.weight.device, dtype=bottom.weight.dtype)
        dbn.rbms = nn.ModuleList(rbms)
        return dbn

    @property
    def untied(self) -> bool:
        return len(self.recognition_weights) > 0

    def untie(self) -> "DBN":
        """Gives each directed layer (every RBM but the top one) recognition weights of its own,
        copies of its current weights; the model's law and its upward pass are unchanged until
        training moves them apart. Does nothing on a DBN already untied. Returns the DBN."""
        if not self.untied:
            for rbm in self.rbms[:-1]:
                self.recognition_weights.append(nn.Parameter(rbm.weight.detach().clone()))
        return self

    def recognition_weight(self, layer: int) -> torch.Tensor:
        """The weight of the upward pass from layer ``layer`` to ``layer + 1`` (the top RBM's
        own weight for the last one)."""
        if self.untied and layer < len(self.recognition_weights):
            return self.recognition_weights[layer]
        return self.rbms[layer].weight

    @property
    def layer_sizes(self) -> list[int]:
        return [self.rbms[0].n_visible] + [rbm.n_hidden for rbm in self.rbms]

    @property
    def visible(self) -> str:
        return self.rbms[0].visible

    def config(self) -> dict:
        return {"layer_sizes": self.layer_sizes, "visible": self.visible, "untied": self.untied}

    def checkpoint_header(self) -> dict:
        return {"model_class": type(self).__name__, "model_config": self.config()}

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}, visible={self.visible!r}, untied={self.untied}"

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
        _check_chain(self.rbms, "DBN")  # rbms may have been replaced since construction
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"DBN: {name} must be a tensor, got {type(x).__name__}")
        width = self.layer_sizes[0]
        if x.dim() != 2 or x.shape[1] != width:
            raise ValueError(f"DBN: {name} must be [batch, {width}] for layer sizes {self.layer_sizes}, "
                             f"got {list(x.shape)}")

    def _check_data(self, data, caller: str) -> None:
        """Training data: a ``[n, layer_sizes[0]]`` tensor, or a Dataset whose rows (or first
        item of each tuple) hold ``layer_sizes[0]`` values; a DataLoader is taken as it is."""
        if isinstance(data, torch.Tensor):
            self._check_input(data, "data")
            return
        if isinstance(data, DataLoader) or not hasattr(data, "__getitem__"):
            return
        if len(data) == 0:
            raise ValueError(f"{caller}: the dataset is empty")
        row = data[0]
        row = row[0] if isinstance(row, (tuple, list)) else row
        width = self.layer_sizes[0]
        if not isinstance(row, torch.Tensor) or row.numel() != width:
            shape = list(row.shape) if isinstance(row, torch.Tensor) else type(row).__name__
            raise ValueError(f"{caller}: the dataset's rows must hold {width} values for layer sizes "
                             f"{self.layer_sizes}, got {shape}")

    def up(self, x: torch.Tensor, layers: int | None = None, *, sample: bool = False,
           generator: torch.Generator | None = None) -> torch.Tensor:
        """The upward pass from ``x`` to layer ``layers`` (1 = the first hidden layer; default:
        the top), through the recognition weights once untied. ``sample=False``: the hidden
        probabilities, each layer's computed from the probabilities below. ``sample=True``:
        binary states, each layer drawn given the states below (``h_l ~ q(h_l | h_{l-1})``, from
        ``generator``): samples of the aggregated posterior that greedy training models."""
        self._check_input(x)
        layers = len(self.rbms) if layers is None else layers
        if not 0 <= layers <= len(self.rbms):
            raise ValueError(f"DBN.up: layers must lie in [0, {len(self.rbms)}], got {layers}")
        if sample:
            return self.up_samples(x, layers, generator=generator)[-1] if layers else x
        with torch.no_grad():
            for layer in range(layers):
                rbm = self.rbms[layer]
                x = torch.sigmoid(torch.addmm(rbm.hidden_bias, rbm._scaled(x), self.recognition_weight(layer)))
        return x

    def up_samples(self, x: torch.Tensor, layers: int | None = None, *,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Binary states of layers 1 .. ``layers`` (default: the top), each drawn given the
        states below it through the recognition weights: one draw of the factorial ``q(h | x)``
        per row."""
        self._check_input(x)
        layers = len(self.rbms) if layers is None else layers
        if not 0 <= layers <= len(self.rbms):
            raise ValueError(f"DBN.up_samples: layers must lie in [0, {len(self.rbms)}], got {layers}")
        states = []
        with torch.no_grad():
            for layer in range(layers):
                rbm = self.rbms[layer]
                x = ops.bernoulli_logits(rbm._scaled(x) @ self.recognition_weight(layer), rbm.hidden_bias,
                                         generator=generator)
                states.append(x)
        return states

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The top layer's probabilities given ``x``: features for a downstream model."""
        return self.up(x)

    def sample(self, n: int, steps: int = 1000, *, visible_means: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` visible states: the top RBM's Gibbs chain for ``steps`` sweeps from random states
        gives the penultimate layer, then each layer below is drawn from ``p(h_{l-1} | h_l)``.
        ``visible_means=True`` returns the last step's means ``E[v | h_1]`` instead of a draw
        (the grey levels one shows as images)."""
        if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
            raise ValueError(f"DBN.sample: steps must be a positive integer, got {steps!r}")
        with torch.no_grad():
            h = self.rbms[-1].sample(n, steps, generator=generator)
            for rbm in reversed(self.rbms[1:-1]):
                h = rbm.sample_visible(h, generator=generator)
            bottom = self.rbms[0]
            return bottom.visible_probs(h) if visible_means else bottom.sample_visible(h, generator=generator)


def _check_chain(rbms, caller: str) -> None:
    rbms = list(rbms)  # slicing a ModuleList builds a new module: this runs every batch
    for i, (below, above) in enumerate(zip(rbms, rbms[1:])):
        if below.n_hidden != above.n_visible:
            raise ValueError(f"{caller}: the layer sizes do not chain: RBM {i} has {below.n_hidden} hidden units but "
                             f"RBM {i + 1} has {above.n_visible} visible units")
        if above.visible != "bernoulli":
            raise ValueError(f"{caller}: RBM {i + 1} has {above.visible} visible units; above the bottom RBM every "
                             "unit must be Bernoulli")
    for i, rbm in enumerate(rbms):
        if rbm.hidden != "bernoulli":
            raise ValueError(f"{caller}: RBM {i} has {rbm.hidden} hidden units; a DBN's hidden units are Bernoulli")
