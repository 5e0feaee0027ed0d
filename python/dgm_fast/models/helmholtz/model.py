"""Helmholtz machines (Dayan, Hinton, Neal & Zemel 1995): a sigmoid belief net p(x, h) and a
bottom-up recognition model q(h | x) of the same layers. The learning algorithms that train the
pair (wake-sleep, reweighted wake-sleep, NVIL) are in :mod:`.train`."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ...ops.bernoulli import bernoulli_log_prob, bernoulli_sample_log_prob
from .._checks import check_count, check_layer_sizes, check_rows
from .._files import ModelFile
from ..sbn.model import SBN

__all__ = ["HelmholtzMachine"]


class HelmholtzMachine(ModelFile, nn.Module):
    """A generative sigmoid belief net and a recognition model that inverts it, layer by layer::

        p: p(h_L) p(h_{L-1} | h_L) ... p(x | h_1)            (``generative``, an :class:`SBN`)
        q: q(h_1 | x) q(h_2 | h_1) ... q(h_L | h_{L-1}),
           q(h_{l+1} | h_l) = prod_j Bernoulli(sigmoid(h_l R_l + c_{l+1}))

    Args:
        layer_sizes: the visible layer first, then the hidden layers, as for :class:`SBN`.
            ``recognition_weights[l]`` is ``[layer_sizes[l], layer_sizes[l + 1]]`` (the shape
            of ``generative.weights[l]``), ``recognition_biases[l]`` is ``[layer_sizes[l + 1]]``.
        init_std: standard deviation of the initial weights of both models (biases start at 0).
        generator: seeds the initial weights.

    :meth:`log_prob` and :meth:`sample` are the generative model's.
    """

    def __init__(self, layer_sizes, *, init_std: float = 0.01, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        sizes = check_layer_sizes(layer_sizes, "HelmholtzMachine")
        self.generative = SBN(sizes, init_std=init_std, generator=generator, device=device, dtype=dtype)
        self.recognition_weights = nn.ParameterList(
            nn.Parameter((torch.randn(a, b, generator=generator, dtype=dtype) * init_std).to(device))
            for a, b in zip(sizes, sizes[1:]))
        self.recognition_biases = nn.ParameterList(
            nn.Parameter(torch.zeros(n, device=device, dtype=dtype)) for n in sizes[1:])

    @property
    def layer_sizes(self) -> list[int]:
        return self.generative.layer_sizes

    @property
    def n_visible(self) -> int:
        return self.generative.n_visible

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}"

    def generative_parameters(self) -> list[nn.Parameter]:
        return list(self.generative.parameters())

    def recognition_parameters(self) -> list[nn.Parameter]:
        return [*self.recognition_weights, *self.recognition_biases]

    # ---- the recognition model ------------------------------------------------------------

    def recognition_logits(self, lower: torch.Tensor, layer: int) -> torch.Tensor:
        """The logits of ``q(h_{layer+1} | h_layer = lower)``, ``[..., n_{layer+1}]``."""
        return F.linear(lower, self.recognition_weights[layer].t(), self.recognition_biases[layer])

    def infer(self, x: torch.Tensor, k: int | None = None, *, generator: torch.Generator | None = None):
        """Draws ``h ~ q(h | x)``, layer by layer, with the log-probability of each layer's draw.

        Args:
            x: ``[B, n_visible]`` data.
            k: draw ``k`` samples per row (the states get a leading ``[k]`` dimension); None: one.

        Returns:
            ``(states, log_q)``: ``states = [x, h_1, ..., h_L]`` (``x`` expanded to ``[k, B, V]``
            when ``k`` is given) and ``log_q = [log q(h_1 | x), ..., log q(h_L | h_{L-1})]``,
            each ``[B]`` or ``[k, B]``. The samples carry no gradient; ``log_q`` is
            differentiable in the recognition parameters (the score function).
        """
        self._check_data(x, "x")
        if k is not None:
            check_count(k, "k", "HelmholtzMachine.infer")
            x = x.expand(k, *x.shape)
        states, log_q = [x], []
        for layer in range(len(self.recognition_weights)):
            h, lq = bernoulli_sample_log_prob(self.recognition_logits(states[-1], layer), generator=generator)
            states.append(h)
            log_q.append(lq)
        return states, log_q

    def recognition_log_probs(self, states) -> list[torch.Tensor]:
        """``[log q(h_1 | h_0), ..., log q(h_L | h_{L-1})]`` of given states (e.g. dreams of the
        generative model: the sleep phase), each ``[...]``."""
        self.generative._check_states(states)
        return self._recognition_log_probs(states)

    def _recognition_log_probs(self, states) -> list[torch.Tensor]:
        return [bernoulli_log_prob(states[l + 1], self.recognition_logits(states[l], l))
                for l in range(len(self.recognition_weights))]

    def log_weights(self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``log p(x, h_k) - log q(h_k | x)`` for ``k`` samples ``h_k ~ q(h | x)``, ``[k, B]``:
        the importance weights of :func:`dgm_fast.evaluate.importance_log_likelihood`."""
        states, log_q = self.infer(x, k, generator=generator)
        return torch.stack(self.generative.layer_log_probs(states)).sum(0) - torch.stack(log_q).sum(0)

    # ---- the generative model -------------------------------------------------------------

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The generative model's exact ``log p(x)`` (:meth:`SBN.log_prob`)."""
        return self.generative.log_prob(x)

    def sample(self, n: int, *, generator: torch.Generator | None = None, means: bool = False) -> torch.Tensor:
        """``n`` visible samples of the generative model, ``[n, n_visible]`` (:meth:`SBN.sample`)."""
        return self.generative.sample(n, generator=generator, means=means)

    def _check_data(self, x, what: str) -> None:
        check_rows(x, self.n_visible, self.generative.biases[0], "HelmholtzMachine", what)
