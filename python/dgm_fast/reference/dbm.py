"""Plain-PyTorch definitions of the DBM's inference and sampling (Salakhutdinov & Hinton 2009).

A DBM's layers are ``states[0]`` (the visible units) to ``states[L]``; layer ``l`` talks only to
layers ``l - 1`` and ``l + 1`` through ``weights[l - 1]`` (``[n_{l-1}, n_l]``) and
``weights[l]``. So the odd layers are independent given the even ones and the reverse, and the
block Gibbs sweep updates all odd layers at once, then all even ones.

``dbm_mean_field`` is defined by its fixed-point equations (tested by plugging the result back
in, and against enumeration where the posterior factorises), ``dbm_gibbs_chain`` by the sampler
calls it makes, in this order (the native chain will be tested bit for bit against it).
"""

from __future__ import annotations

import torch

__all__ = ["dbm_layer_input", "dbm_mean_field", "dbm_gibbs_chain"]


def dbm_layer_input(weights, biases, states, layer: int, *, bias: bool = True) -> torch.Tensor:
    """The total input of ``layer`` given its neighbours' states (or means):
    ``b_l + s_{l-1} W_{l-1} + s_{l+1} W_l^T``, ``[B, n_l]`` (without ``b_l``: ``bias=False``)."""
    terms = []
    if layer > 0:
        terms.append(states[layer - 1] @ weights[layer - 1])
    if layer < len(weights):
        terms.append(states[layer + 1] @ weights[layer].t())
    x = terms[0] if len(terms) == 1 else terms[0] + terms[1]
    return x + biases[layer] if bias else x


def dbm_bottom_up(weights, biases, v: torch.Tensor) -> list[torch.Tensor]:
    """The mean-field initialisation: one bottom-up pass in which every hidden layer but the top
    one gets twice the input from below, standing in for the missing input from above (the
    doubled weights of the greedy pretraining). Returns the means of the hidden layers."""
    means, below = [], v
    top = len(biases) - 1
    for layer in range(1, top + 1):
        scale = 1.0 if layer == top else 2.0
        below = torch.sigmoid(biases[layer] + scale * (below @ weights[layer - 1]))
        means.append(below)
    return means


def dbm_mean_field(weights, biases, v: torch.Tensor, *, iterations: int = 30, tol: float | None = None,
                   damping: float = 0.0) -> tuple[list[torch.Tensor], int]:
    """Mean-field posterior ``q(h | v) = prod_l prod_j Bernoulli(mu_lj)`` of a DBM: from
    :func:`dbm_bottom_up`, ``iterations`` sweeps in which each hidden layer in turn, bottom
    first, is set to ``(1 - damping) sigmoid(input) + damping * old``; with ``tol``, stops after
    the first sweep whose largest change is below it. Returns the hidden means (``[B, n_l]`` per
    hidden layer) and the number of sweeps made."""
    means = dbm_bottom_up(weights, biases, v)
    states = [v, *means]
    done = 0
    for done in range(1, iterations + 1):
        change = 0.0
        for layer in range(1, len(states)):
            new = torch.sigmoid(dbm_layer_input(weights, biases, states, layer))
            if damping:
                new = (1 - damping) * new + damping * states[layer]
            if tol is not None:
                change = max(change, float((new - states[layer]).abs().max()))
            states[layer] = new
        if tol is not None and change < tol:
            break
    return states[1:], done


def dbm_gibbs_chain(weights, biases, states, steps: int, *, clamp_visible: bool = False,
                    generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """``steps`` block Gibbs sweeps from ``states`` (one ``[B, n_l]`` tensor per layer): the odd
    layers given the even ones, then the even layers given the odd ones, each layer drawn with
    ``dgm_fast.ops.bernoulli_logits(input without bias, bias)``, layers in increasing order.
    ``clamp_visible``: the visible layer keeps its states (the data-dependent chain)."""
    from ..ops import bernoulli_logits

    states = list(states)
    for _ in range(steps):
        for parity in (1, 0):
            for layer in range(parity, len(states), 2):
                if layer == 0 and clamp_visible:
                    continue
                x = dbm_layer_input(weights, biases, states, layer, bias=False)
                states[layer] = bernoulli_logits(x, biases[layer], generator=generator)
    return states
