"""Exact enumeration: log Z and log-likelihoods of models small enough to sum over every state
of one layer (RBM), of every other layer (DBM), or of each hidden layer in turn (SBN)."""

from __future__ import annotations

import copy
import math

import torch

from ..models._checks import check_binary, check_finite_parameters
from ..models.dbm import DBM
from ..models.helmholtz import HelmholtzMachine
from ..models.rbm import RBM
from ..models.sbn import SBN
from ._checks import check_count, check_examples

__all__ = ["exact_log_partition", "exact_log_likelihood", "exact_log_prob", "log_likelihood"]

_MAX_ENUMERATED_UNITS = 30
# An SBN's messages enumerate every state of each hidden layer and of each pair of adjacent ones.
_MAX_SBN_LAYER_UNITS = 20
_MAX_SBN_PAIR_UNITS = 26
_SBN_ROWS = 256  # rows of data scored at a time against every state of h_1


def _binary_states(n: int, start: int, stop: int, dtype, device) -> torch.Tensor:
    """Rows ``start .. stop-1`` of the ``2^n`` binary vectors, bit j of row r = state of unit j."""
    codes = torch.arange(start, stop, device=device, dtype=torch.int64)
    bits = torch.arange(n, device=device, dtype=torch.int64)
    return ((codes.unsqueeze(1) >> bits) & 1).to(dtype)


def _check_enumerable(n: int, fn: str) -> None:
    if n > _MAX_ENUMERATED_UNITS:
        raise ValueError(f"{fn}: enumerating 2^{n} states is not practical (limit 2^{_MAX_ENUMERATED_UNITS}); use AIS")


def _layer_states(dbm: DBM, layers: list[int], codes: torch.Tensor, template: list) -> list:
    """``template`` (one entry per layer) with the listed layers set to the binary states that
    ``codes`` (rows of bits, the layers' units one after the other) give."""
    states, start = list(template), 0
    for layer in layers:
        n = dbm.layer_sizes[layer]
        states[layer] = codes[:, start:start + n]
        start += n
    return states


def _dbm_sum(dbm: DBM, layers: list[int], summed_out: str, template: list, chunk: int) -> torch.Tensor:
    """``logsumexp`` over every joint state of ``layers`` of ``dbm.unnormalized_log_prob``
    (float64), for each row of ``template``'s given layers: ``[B]``."""
    n = sum(dbm.layer_sizes[layer] for layer in layers)
    rows = next((t.shape[0] for t in template if t is not None), 1)
    total = torch.full((rows,), -math.inf, dtype=torch.float64, device=dbm.weights[0].device)
    for start in range(0, 1 << n, chunk):
        codes = _binary_states(n, start, min(1 << n, start + chunk), torch.float64, total.device)
        s = codes.shape[0]
        expanded = [t.repeat_interleave(s, 0) if t is not None else None for t in template]
        states = _layer_states(dbm, layers, codes.repeat(rows, 1), expanded)
        chunk_sum = torch.logsumexp(dbm.unnormalized_log_prob(states, summed_out).view(rows, s), 1)
        total = torch.logaddexp(total, chunk_sum)
    return total


def _dbm_log_partition(dbm: DBM, chunk: int) -> torch.Tensor:
    """Sums the layers of the parity with fewer units out analytically and enumerates the rest
    (``dbm``: a float64 copy)."""
    sizes = dbm.layer_sizes
    even, odd = list(range(0, len(sizes), 2)), list(range(1, len(sizes), 2))
    enumerated = min(even, odd, key=lambda layers: sum(sizes[l] for l in layers))
    _check_enumerable(sum(sizes[l] for l in enumerated), "exact_log_partition")
    summed_out = "even" if enumerated is odd else "odd"
    return _dbm_sum(dbm, enumerated, summed_out, [None] * len(sizes), chunk)[0]


@torch.no_grad()
def exact_log_partition(model: RBM | DBM, chunk: int = 1 << 16) -> torch.Tensor:
    """``log Z`` by enumeration, in log space, in chunks on the model's device. An RBM: every
    state of its smaller binary layer. A DBM: every joint state of its odd layers or of its even
    ones, whichever have fewer units, the others summed out in closed form. Practical up to
    about 25-30 enumerated units.

    Gaussian visible units are integrated out in closed form (so the hidden layer is enumerated);
    NReLU hidden units cannot be enumerated.
    """
    chunk = check_count(chunk, "chunk", "exact_log_partition")
    if isinstance(model, DBM):
        return _dbm_log_partition(copy.deepcopy(model).double(), chunk)
    rbm = model
    if rbm.hidden == "nrelu":
        raise ValueError("exact_log_partition: NReLU hidden units are continuous; use AIS")
    enumerate_hidden = rbm.visible == "gaussian" or rbm.n_hidden <= rbm.n_visible
    n = rbm.n_hidden if enumerate_hidden else rbm.n_visible
    _check_enumerable(n, "exact_log_partition")
    W, b, c = rbm.weight.double(), rbm.visible_bias.double(), rbm.hidden_bias.double()
    terms = []
    for start in range(0, 1 << n, chunk):
        states = _binary_states(n, start, min(1 << n, start + chunk), torch.float64, W.device)
        if not enumerate_hidden:  # sum over visible states of exp(-F(v))
            terms.append(states @ b + torch.nn.functional.softplus(states @ W + c).sum(1))
        elif rbm.visible == "bernoulli":  # sum over h of exp(c.h) prod_i (1 + exp(b_i + (W h)_i))
            terms.append(states @ c + torch.nn.functional.softplus(states @ W.t() + b).sum(1))
        else:  # Gaussian: integral over v of exp(-E) = exp(b.a/sigma + |a|^2/2) (2 pi)^(V/2) prod sigma
            log_std = rbm.visible_log_std.double()
            a = states @ W.t()  # [S, V]
            terms.append(states @ c + (a * b * torch.exp(-log_std)).sum(1) + 0.5 * (a * a).sum(1))
    log_z = torch.logsumexp(torch.cat(terms), 0)
    if rbm.visible == "gaussian":
        log_z = log_z + 0.5 * rbm.n_visible * math.log(2 * math.pi) + rbm.visible_log_std.double().sum()
    return log_z


@torch.no_grad()
def log_likelihood(rbm: RBM, data: torch.Tensor, log_z: float | torch.Tensor) -> torch.Tensor:
    """Mean ``log p(v) = -F(v) - log Z`` over the rows of ``data``, in nats (float64)."""
    rbm._check_visible(data, "data")
    check_examples(data, "log_likelihood")
    if isinstance(log_z, (str, bytes)) or not isinstance(log_z, (int, float, torch.Tensor)):
        raise TypeError(f"log_likelihood: log_z must be a number or a 0-dim tensor, got {log_z!r}")
    if isinstance(log_z, torch.Tensor) and log_z.numel() != 1:
        raise ValueError(f"log_likelihood: log_z must be one number, got a tensor of shape {list(log_z.shape)}")
    return (-rbm.free_energy(data).double() - torch.as_tensor(log_z, dtype=torch.float64)).mean()


def exact_log_likelihood(rbm: RBM, data: torch.Tensor) -> torch.Tensor:
    """:func:`log_likelihood` with the exact ``log Z`` of :func:`exact_log_partition`."""
    return log_likelihood(rbm, data, exact_log_partition(rbm))


def _sbn_log_prob(sbn: SBN, x: torch.Tensor) -> torch.Tensor:
    """Messages passed down the layers: ``m_L(h_L) = log p(h_L)``, ``m_l(h_l) = logsumexp_{h_{l+1}}
    [log p(h_l | h_{l+1}) + m_{l+1}(h_{l+1})]``, then ``log p(x) = logsumexp_{h_1} [log p(x | h_1) +
    m_1(h_1)]``; the cost is ``2^(n_l + n_{l+1})`` per pair of hidden layers."""
    who = "exact_log_prob"
    sbn._check_rows(x, 0, "x")
    if x.dim() != 2:
        raise ValueError(f"{who}: x must be [batch, {sbn.n_visible}], got {list(x.shape)}")
    check_binary(x, who)
    check_finite_parameters(sbn, who)
    hidden = sbn.layer_sizes[1:]
    pairs = [a + b for a, b in zip(hidden, hidden[1:])]
    if max(hidden) > _MAX_SBN_LAYER_UNITS or (pairs and max(pairs) > _MAX_SBN_PAIR_UNITS):
        raise ValueError(f"{who}: exact log p(x) enumerates every state of each hidden layer and of each pair "
                         f"of adjacent ones, practical up to {_MAX_SBN_LAYER_UNITS} units per layer and "
                         f"{_MAX_SBN_PAIR_UNITS} per pair; this model has layers {sbn.layer_sizes}. Estimate it with "
                         "dgm_fast.evaluate.importance_log_prob(helmholtz_machine, x), the recognition "
                         "model as the proposal")
    w = [p.double() for p in sbn.weights]
    b = [p.double() for p in sbn.biases]
    top = len(w)
    states = [None] + [_binary_states(n, 0, 1 << n, torch.float64, x.device) for n in hidden]
    softplus = torch.nn.functional.softplus
    message = states[top] @ b[top] - softplus(b[top]).sum()  # log p(h_L), [2^n_L]
    for layer in range(top - 1, 0, -1):
        logits = torch.nn.functional.linear(states[layer + 1], w[layer], b[layer])  # [T, n_l]
        # log p(s | t) for every state s of layer l and t of layer l + 1: s.l_t - sum softplus(l_t)
        cond = states[layer] @ logits.t() - softplus(logits).sum(1)  # [S, T]
        message = torch.logsumexp(cond + message, dim=1)
    logits = torch.nn.functional.linear(states[1], w[0], b[0])  # [S1, V]
    offset = message - softplus(logits).sum(1)
    return torch.cat([torch.logsumexp(rows @ logits.t() + offset, dim=1) for rows in x.double().split(_SBN_ROWS)]
                     or [x.new_zeros(0, dtype=torch.float64)])


@torch.no_grad()
def exact_log_prob(model: RBM | DBM | SBN | HelmholtzMachine, data: torch.Tensor) -> torch.Tensor:
    """Exact ``log p(v)`` of each row of ``data``, ``[B]`` (float64). A DBM: the odd layers summed
    out in closed form, every joint state of its even hidden layers (h_2, h_4, ...) enumerated. An
    SBN (or a Helmholtz machine's generative SBN): messages down the layers, every state of each
    hidden layer enumerated (:meth:`dgm_fast.SBN.log_prob`)."""
    if isinstance(model, SBN):
        return _sbn_log_prob(model, data)
    if isinstance(model, HelmholtzMachine):
        return _sbn_log_prob(model.generative, data)
    if isinstance(model, RBM):
        model._check_visible(data, "data")
        check_examples(data, "exact_log_prob")
        return -model.free_energy(data).double() - exact_log_partition(model)
    if not isinstance(model, DBM):
        raise TypeError(f"exact_log_prob: model must be an RBM, a DBM or an SBN, got {type(model).__name__}")
    model._check_layer(data, 0, "data")
    check_examples(data, "exact_log_prob")
    sizes = model.layer_sizes
    hidden_even = list(range(2, len(sizes), 2))
    _check_enumerable(sum(sizes[l] for l in hidden_even), "exact_log_prob")
    double = copy.deepcopy(model).double()
    template = [data.double()] + [None] * (len(sizes) - 1)
    return _dbm_sum(double, hidden_even, "odd", template, 1 << 16) - _dbm_log_partition(double, 1 << 16)
