"""Variational lower bounds on log-likelihoods: a deep belief net's (Salakhutdinov & Murray
2008), and a deep Boltzmann machine's with its mean-field posterior (Salakhutdinov & Hinton 2009,
at the end of this module).

For a DBN whose RBMs are ``W_0 ... W_{L-1}`` (bottom first), with recognition distribution
``q(h_1, ..., h_{L-1} | v)`` the factorial upward passes of greedy training
(``h_1 ~ sigmoid(c_0 + v R_0)``, ``h_{l+1} ~ sigmoid(c_l + h_l R_l)``, where ``R_l = W_l`` for
a tied DBN and the recognition weights once up-down fine-tuning has untied them):

    log p(v) >= E_q[ log p(v | h_1) + sum_l log p(h_l | h_{l+1}) + log p*(h_{L-1})
                     - log q(h_1, ..., h_{L-1} | v) ] - log Z

where ``p(h_l | h_{l+1})`` are the directed layers' sigmoid conditionals, ``p*`` the top RBM's
unnormalised marginal on its visible layer (``-F``), and ``log Z`` its partition function: from
AIS (a stochastic lower bound on ``log Z`` in expectation, which makes the whole an estimate, not
a guaranteed bound), reverse AIS or exact enumeration. The bound is tight when ``q`` is the true
posterior: a DBN whose top RBM is the bottom one transposed (the complementary prior of greedy
training) has exactly the bottom RBM's ``log p(v)``. With Gaussian visible units,
``p(v | h_1) = N(b + sigma h_1 W_0^T, sigma^2)`` and the bound is on the log-density.
"""

from __future__ import annotations

import copy
import itertools
import math
from numbers import Integral

import torch
import torch.nn.functional as F


__all__ = ["dbm_lower_bound", "dbn_lower_bound"]

_MAX_ENUMERATED = 1 << 20  # hidden configurations per row, for samples=None
_CHUNK_ROWS = 1 << 14  # rows x samples evaluated at once
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _log_bernoulli(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum_i log Bernoulli(x_i; sigmoid(logits_i)) per row."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def _integrand(dbn, v: torch.Tensor, hs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(v, h_1..h_{L-1}) + log Z, log q(h_1..h_{L-1} | v)) per row, in float64."""
    rbms = dbn.rbms
    v, hs = v.double(), [h.double() for h in hs]
    below = [v] + hs[:-1]
    log_q = torch.zeros(v.shape[0], dtype=torch.float64, device=v.device)
    log_p = torch.zeros_like(log_q)
    for l, (x, h) in enumerate(zip(below, hs)):  # q: upward; p: downward through the directed layers
        rbm = rbms[l]
        w, b, c = rbm.weight.double(), rbm.visible_bias.double(), rbm.hidden_bias.double()
        if rbm.visible == "gaussian":  # v / sigma feeds q; p(v | h_1) = N(b + sigma h W^T, sigma^2)
            log_std = rbm.visible_log_std.double()
            scaled = x * torch.exp(-log_std)
            log_q += _log_bernoulli(h, c + scaled @ dbn.recognition_weight(l).double())
            z = scaled - b * torch.exp(-log_std) - h @ w.t()
            log_p += -(0.5 * z**2 + log_std + _HALF_LOG_2PI).sum(-1)
            continue
        log_q += _log_bernoulli(h, c + x @ dbn.recognition_weight(l).double())
        log_p += _log_bernoulli(x, b + h @ w.t())
    top = rbms[-1]
    log_p += -top.free_energy(hs[-1].to(top.weight.dtype)).double()
    return log_p, log_q


def dbn_lower_bound(dbn, x: torch.Tensor, log_z, *, samples: int | None = 100,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Per row of ``x``, the variational lower bound on ``log p(x)`` of ``dbn`` (float64,
    ``[B]``), given the top RBM's ``log_z`` (a number: from :func:`dgm_fast.evaluate.ais`,
    :func:`~dgm_fast.evaluate.reverse_ais` or :func:`~dgm_fast.evaluate.exact_log_partition`).

    ``samples``: how many draws of ``h ~ q(h | x)`` estimate the expectation (Monte Carlo, with
    ``generator``); ``None`` enumerates every configuration of the directed hidden layers
    instead (exact, for tiny models: up to 2^20 configurations).
    """
    from ..models.dbn import DBN

    if not isinstance(dbn, DBN):
        raise TypeError(f"dbn_lower_bound: dbn must be a dgm_fast.DBN, got {type(dbn).__name__}")
    dbn._check_input(x)
    if x.shape[0] == 0:
        raise ValueError("dbn_lower_bound: x is empty")
    if not torch.isfinite(x).all():
        raise ValueError("dbn_lower_bound: x contains NaN or Inf")
    log_z = float(log_z)
    hidden = dbn.layer_sizes[1:-1]  # the directed hidden layers h_1 .. h_{L-1}
    with torch.no_grad():
        if samples is None:
            count = 1 << sum(hidden)
            if count > _MAX_ENUMERATED:
                raise ValueError(f"dbn_lower_bound: samples=None enumerates 2^{sum(hidden)} hidden configurations "
                                 f"per row, more than 2^20; pass a number of samples")
            states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(hidden))), device=x.device)
            hs = list(torch.split(states, hidden, dim=1))
            rows = x.repeat_interleave(count, 0)
            log_p, log_q = _integrand(dbn, rows, [h.repeat(x.shape[0], 1) for h in hs])
            weights = log_q.exp().view(x.shape[0], count)
            return (weights * (log_p - log_q).view(x.shape[0], count)).sum(1) - log_z
        if isinstance(samples, bool) or not isinstance(samples, Integral) or samples < 1:
            raise ValueError(f"dbn_lower_bound: samples must be a positive integer or None, got {samples!r}")
        # Rows in chunks of about _CHUNK_ROWS draws, so that memory stays flat for a test set.
        step = max(1, _CHUNK_ROWS // samples)
        return torch.cat([_monte_carlo(dbn, chunk, samples, generator) for chunk in x.split(step)]) - log_z


def _monte_carlo(dbn, x: torch.Tensor, samples: int, generator) -> torch.Tensor:
    """The mean of log p(x, h) + log Z - log q(h | x) over ``samples`` draws h ~ q, per row."""
    rows = x.repeat(samples, 1).to(dbn.rbms[0].weight.dtype)
    hs = dbn.up_samples(rows, len(dbn.rbms) - 1, generator=generator)  # h ~ q(h | x)
    log_p, log_q = _integrand(dbn, rows, hs)
    return (log_p - log_q).view(samples, x.shape[0]).mean(0)


def dbm_lower_bound(dbm, x: torch.Tensor, log_z, *, iterations: int = 30, tol: float | None = None) -> torch.Tensor:
    """Per row of ``x``, the variational lower bound on ``log p(x)`` of a DBM (float64, ``[B]``)::

        log p(v) >= E_q[-E(v, h)] + H(q) - log Z

    with ``q(h | v)`` the factorial mean-field posterior (:meth:`DBM.mean_field` with
    ``iterations``/``tol``), whose expectation is closed-form: under ``q`` the layers are
    independent, so ``E_q[h_l W_l h_{l+1}] = mu_l W_l mu_{l+1}``. ``log_z``: a number, from
    :func:`dgm_fast.evaluate.ais`, :func:`~dgm_fast.evaluate.reverse_ais` or
    :func:`~dgm_fast.evaluate.exact_log_partition`. Equality holds when the true posterior
    factorises (and mean-field has found it)."""
    from ..models.dbm import DBM

    if not isinstance(dbm, DBM):
        raise TypeError(f"dbm_lower_bound: dbm must be a dgm_fast.DBM, got {type(dbm).__name__}")
    dbm._check_layer(x, 0, "x")
    if x.shape[0] == 0:
        raise ValueError("dbm_lower_bound: x is empty")
    if not torch.isfinite(x).all():
        raise ValueError("dbm_lower_bound: x contains NaN or Inf")
    log_z = float(log_z)
    if not math.isfinite(log_z):
        raise ValueError(f"dbm_lower_bound: log_z must be finite, got {log_z}")
    with torch.no_grad():
        means = [m.double() for m in dbm.mean_field(x, iterations=iterations, tol=tol)]
        minus_energy = -copy.deepcopy(dbm).double().energy([x.double(), *means])
        # H(Bernoulli(mu)) per unit, with 0 log 0 = 0 (means saturate at 0 or 1 in float64)
        entropy = sum((-torch.special.xlogy(m, m) - torch.special.xlogy(1 - m, 1 - m)).sum(1) for m in means)
        return minus_energy + entropy - log_z
