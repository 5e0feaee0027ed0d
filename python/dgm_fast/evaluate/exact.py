"""Exact enumeration: log Z and log-likelihoods of models small enough to sum over every state
of one layer."""

from __future__ import annotations

import math

import torch

from ..models.rbm import RBM
from ._checks import check_count, check_examples

__all__ = ["exact_log_partition", "exact_log_likelihood", "log_likelihood"]

_MAX_ENUMERATED_UNITS = 30


def _binary_states(n: int, start: int, stop: int, dtype, device) -> torch.Tensor:
    """Rows ``start .. stop-1`` of the ``2^n`` binary vectors, bit j of row r = state of unit j."""
    codes = torch.arange(start, stop, device=device, dtype=torch.int64)
    bits = torch.arange(n, device=device, dtype=torch.int64)
    return ((codes.unsqueeze(1) >> bits) & 1).to(dtype)


@torch.no_grad()
def exact_log_partition(rbm: RBM, chunk: int = 1 << 16) -> torch.Tensor:
    """``log Z`` by enumerating the smaller binary layer, in log space, in chunks on the model's
    device. Practical up to about 25-30 units in the enumerated layer.

    Gaussian visible units are integrated out in closed form (so the hidden layer is enumerated);
    NReLU hidden units cannot be enumerated.
    """
    if rbm.hidden == "nrelu":
        raise ValueError("exact_log_partition: NReLU hidden units are continuous; use AIS")
    chunk = check_count(chunk, "chunk", "exact_log_partition")
    enumerate_hidden = rbm.visible == "gaussian" or rbm.n_hidden <= rbm.n_visible
    n = rbm.n_hidden if enumerate_hidden else rbm.n_visible
    if n > _MAX_ENUMERATED_UNITS:
        raise ValueError(
            f"exact_log_partition: enumerating 2^{n} states is not practical "
            f"(limit 2^{_MAX_ENUMERATED_UNITS}); use AIS"
        )
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
