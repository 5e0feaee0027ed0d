"""Importance sampling: estimates of log p(x) for latent-variable models with an inference model
q(z | x) (VAEs, IWAEs, Helmholtz machines)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import check_count

__all__ = ["importance_log_likelihood"]


@torch.no_grad()
def importance_log_likelihood(
    log_weight_fn: Callable[[torch.Tensor, int], torch.Tensor],
    x: torch.Tensor,
    n_samples: int = 5000,
    chunk: int = 500,
) -> torch.Tensor:
    """Importance-sampling estimate of ``log p(x)`` per example, in nats:
    ``log (1/N) sum_k exp(log p(x, z_k) - log q(z_k | x))`` with ``z_k ~ q(z | x)``.

    Args:
        log_weight_fn: ``log_weight_fn(x, k)`` draws ``k`` samples per example and returns their
            log weights ``log p(x, z) - log q(z | x)``, ``[k, B]``.
        x: ``[B, ...]`` data, passed through to ``log_weight_fn``.
        n_samples: N, the total number of samples per example.
        chunk: samples drawn per call, so that memory stays ``O(chunk * B)``.

    Returns:
        ``[B]`` float64 estimates. The chunks are combined by a running log-sum-exp, so the
        result does not depend on ``chunk`` (up to rounding) and never overflows. It is a
        stochastic lower bound on ``log p(x)`` in expectation, tight as N grows.
    """
    n_samples = check_count(n_samples, "n_samples", "importance_log_likelihood")
    chunk = check_count(chunk, "chunk", "importance_log_likelihood")
    total = None
    done = 0
    while done < n_samples:
        k = min(chunk, n_samples - done)
        lw = log_weight_fn(x, k)
        if lw.dim() != 2 or lw.shape[0] != k:
            raise ValueError(
                f"importance_log_likelihood: log_weight_fn(x, {k}) must return [{k}, batch] "
                f"log weights, got shape {list(lw.shape)}"
            )
        part = torch.logsumexp(lw.double(), dim=0)  # [B]
        total = part if total is None else torch.logaddexp(total, part)
        done += k
    return total - math.log(n_samples)
