"""Plain-PyTorch definitions of the DBM's inference and sampling (Salakhutdinov & Hinton 2009).

A DBM's layers are ``states[0]`` (the visible units) to ``states[L]``; layer ``l`` talks only to
layers ``l - 1`` and ``l + 1`` through ``weights[l - 1]`` (``[n_{l-1}, n_l]``) and
``weights[l]``. So the odd layers are independent given the even ones and the reverse, and the
block Gibbs sweep updates all odd layers at once, then all even ones.

``dbm_mean_field`` is defined by its fixed-point equations (tested by plugging the result back
in, and against enumeration where the posterior factorises), ``dbm_gibbs_chain`` by the sampler
calls it makes, in this order (the native chain will be tested bit for bit against it), and
``dbm_ais`` by the exact log partition function it estimates (tested against enumeration).

AIS on a DBM (Salakhutdinov & Hinton 2009) anneals over the odd layers only, with the even ones
(the visible layer among them) summed out in closed form. The path runs from a base model A,
independent units with biases ``a_l`` (the data's log-odds at the visible layer, 0 elsewhere),
to the DBM B: ``p_beta ~ exp(-beta E_B - (1 - beta) E_A)``. Its marginal on the odd layers is

    log p*_beta(odd) = sum_{l odd} (beta b_l + (1 - beta) a_l) . h_l
                       + sum_{l even} sum_j softplus(beta (W-input + b_l)_j + (1 - beta) a_lj)

and a transition at beta draws the even layers given the odd ones, then the odd given the even,
both under ``p_beta``.
"""

from __future__ import annotations

import torch

__all__ = ["dbm_layer_input", "dbm_bottom_up", "dbm_mean_field", "dbm_gibbs_chain", "dbm_annealed_log_prob",
           "dbm_ais"]


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
                   damping: float = 0.0) -> list[torch.Tensor]:
    """Mean-field posterior ``q(h | v) = prod_l prod_j Bernoulli(mu_lj)`` of a DBM: from
    :func:`dbm_bottom_up`, ``iterations`` sweeps in which each hidden layer in turn, bottom
    first, is set to ``(1 - damping) sigmoid(input) + damping * old``; with ``tol``, stops after
    the first sweep whose largest change is below it. Returns the hidden means (``[B, n_l]`` per
    hidden layer)."""
    states = [v, *dbm_bottom_up(weights, biases, v)]
    for _ in range(iterations):
        change = None
        for layer in range(1, len(states)):
            new = torch.sigmoid(dbm_layer_input(weights, biases, states, layer))
            if damping:
                new = (1 - damping) * new + damping * states[layer]
            if tol is not None:
                moved = (new - states[layer]).abs().max()
                change = moved if change is None else torch.maximum(change, moved)
            states[layer] = new
        if tol is not None and float(change) < tol:  # one host sync per sweep
            break
    return states[1:]


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


def _annealed_log_prob(biases, base, odd_states, even_inputs, beta: float) -> torch.Tensor:
    """``log p*_beta`` given the even layers' inputs from the odd states (``even_inputs``, by
    layer: ``dbm_layer_input`` of each even layer, the same at every beta)."""
    total = 0
    for layer in range(1, len(biases), 2):
        total = total + odd_states[layer] @ (beta * biases[layer] + (1 - beta) * base[layer])
    for layer, x in even_inputs.items():
        total = total + torch.nn.functional.softplus(beta * x + (1 - beta) * base[layer]).sum(1)
    return total


def _even_inputs(weights, biases, odd_states) -> dict[int, torch.Tensor]:
    return {layer: dbm_layer_input(weights, biases, odd_states, layer) for layer in range(0, len(biases), 2)}


def dbm_annealed_log_prob(weights, biases, base, odd_states, beta: float) -> torch.Tensor:
    """``log p*_beta`` of the odd layers' states (the even layers summed out), ``[B]``.
    ``odd_states``: one entry per layer, read at the odd layers only; ``base``: A's biases, one
    ``[n_l]`` tensor per layer."""
    return _annealed_log_prob(biases, base, odd_states, _even_inputs(weights, biases, odd_states), beta)


def dbm_ais(weights, biases, base, odd_states, betas, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """The log-weights (``[R]``, float64, without ``log Z_A``) of ``R`` AIS runs on the odd layers,
    from ``odd_states`` (one ``[R, n_l]`` tensor per odd layer 1, 3, ...: states of the model at
    ``betas[0]``) through the inverse temperatures ``betas``. Run from 0 to 1 it estimates
    ``log Z_B - log Z_A``; with ``betas`` reversed, from samples of B, ``log Z_A - log Z_B``.

    Per temperature: ``log_w += log p*_beta - log p*_previous`` in float64 (the increments are
    differences of nearly equal softplus sums), then, except after the last, a transition that
    leaves ``p_beta`` invariant: the even layers given the odd ones, then the odd given the even."""
    from ..ops import bernoulli_logits

    top = len(weights)
    odd, even = range(1, top + 1, 2), range(0, top + 1, 2)
    states = [None] * (top + 1)
    for layer, s in zip(odd, odd_states):
        states[layer] = s
    gap = {layer: biases[layer].double() - base[layer].double() for layer in odd}
    log_w = torch.zeros(odd_states[0].shape[0], dtype=torch.float64, device=odd_states[0].device)
    betas = [float(b) for b in betas]
    for k, (previous, beta) in enumerate(zip(betas, betas[1:])):
        # The even layers' inputs from the odd states serve both log-probabilities and the
        # transition's first half: one set of products per temperature.
        inputs = {layer: dbm_layer_input(weights, biases, states, layer) for layer in even}
        for layer in odd:
            log_w += (states[layer].double() @ gap[layer]) * (beta - previous)
        for layer, x in inputs.items():
            x64, a64 = x.double(), base[layer].double()
            log_w += (torch.nn.functional.softplus(x64 * beta + a64 * (1 - beta))
                      - torch.nn.functional.softplus(x64 * previous + a64 * (1 - previous))).sum(1)
        if k + 2 == len(betas):
            break
        for layer, x in inputs.items():
            states[layer] = bernoulli_logits(x * beta + base[layer] * (1 - beta), generator=generator)
        for layer in odd:
            x = dbm_layer_input(weights, biases, states, layer)
            states[layer] = bernoulli_logits(x * beta + base[layer] * (1 - beta), generator=generator)
    return log_w
