"""Importance sampling: estimates of log p(x) for latent-variable models with an inference model
q(z | x) (VAEs, IWAEs, Helmholtz machines): :func:`importance_log_prob` for a model with
``log_weights(x, k)``, :func:`importance_log_likelihood` for any function of the log weights."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._checks import check_count, check_examples

__all__ = ["ImportanceEstimate", "importance_log_likelihood", "importance_log_prob"]


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


@dataclass
class ImportanceEstimate:
    """An importance-sampled ``log p(x)`` per row, with its uncertainty.

    Attributes:
        log_prob: ``[B]`` float64, ``log (1/N) sum_k w_k``: a consistent estimate, a lower bound
            on ``log p(x)`` in expectation (Jensen).
        std_error: ``[B]``, the delta-method standard error of ``log_prob``,
            ``sqrt((1/N) var(w) / mean(w)^2)`` from the weights themselves (it understates the
            error when the proposal misses regions that the weights never reach).
        ess: ``[B]``, the effective sample size ``(sum w)^2 / sum w^2`` of the N weights.
        n_samples: N.
    """

    log_prob: torch.Tensor
    std_error: torch.Tensor
    ess: torch.Tensor
    n_samples: int

    def mean(self) -> float:
        """The mean of ``log_prob`` over the rows (nats per example)."""
        return self.log_prob.mean().item()

    def mean_std_error(self) -> float:
        """The standard error of :meth:`mean` from the rows' own standard errors (independent rows)."""
        return (self.std_error.square().sum().sqrt() / self.std_error.numel()).item()


@torch.no_grad()
def importance_log_prob(model, x: torch.Tensor, n_samples: int = 5000, chunk: int = 500, *,
                        batch_size: int = 100, generator: torch.Generator | None = None) -> ImportanceEstimate:
    """``log p(x)`` per row of ``x``, importance-sampled with ``n_samples`` draws from the model's
    inference model (5,000 as in Burda et al.), ``chunk`` at a time and ``batch_size`` rows at a
    time, so that memory stays ``O(chunk * batch_size)``.

    Args:
        model: a directed model with an inference model: anything with ``log_weights(x, k, *,
            generator)`` returning ``[k, B]`` log weights (:class:`dgm_fast.HelmholtzMachine`,
            :class:`dgm_fast.VAE`).
        x: ``[B, V]`` data of the model's dtype and device.

    Returns:
        an :class:`ImportanceEstimate` (estimate, standard error and effective sample size per row).
    """
    fn = "importance_log_prob"
    if not callable(getattr(model, "log_weights", None)):
        raise TypeError(f"{fn}: model must have log_weights(x, k) (a HelmholtzMachine or a VAE), got "
                        f"{type(model).__name__}; an SBN alone has no inference model: use its exact log_prob "
                        "or train it inside a HelmholtzMachine")
    n_samples = check_count(n_samples, "n_samples", fn)
    chunk = check_count(chunk, "chunk", fn)
    batch_size = check_count(batch_size, "batch_size", fn)
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"{fn}: x must be a [batch, features] tensor")
    check_examples(x, fn, "x")
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise ValueError(f"{fn}: the model's parameter {name} holds NaN or Inf")
    logs, sq_logs = [], []
    for rows in x.split(batch_size):
        log_sum = log_sum_sq = None
        done = 0
        while done < n_samples:
            k = min(chunk, n_samples - done)
            lw = model.log_weights(rows, k, generator=generator).double()
            part, part_sq = torch.logsumexp(lw, 0), torch.logsumexp(2 * lw, 0)
            log_sum = part if log_sum is None else torch.logaddexp(log_sum, part)
            log_sum_sq = part_sq if log_sum_sq is None else torch.logaddexp(log_sum_sq, part_sq)
            done += k
        logs.append(log_sum)
        sq_logs.append(log_sum_sq)
    log_sum, log_sum_sq = torch.cat(logs), torch.cat(sq_logs)
    ess = torch.exp(2 * log_sum - log_sum_sq)
    # var(w) / mean(w)^2 = N sum w^2 / (sum w)^2 - 1 = N / ESS - 1
    std_error = torch.sqrt((n_samples / ess - 1).clamp(min=0) / n_samples)
    return ImportanceEstimate(log_sum - math.log(n_samples), std_error, ess, n_samples)
