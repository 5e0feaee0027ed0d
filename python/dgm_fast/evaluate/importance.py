"""Importance sampling: estimates of log p(x) for latent-variable models with an inference model
q(z | x) (VAEs, IWAEs, Helmholtz machines): :func:`importance_log_prob` for a model with
``log_weights(x, k)``, :func:`importance_log_likelihood` for any function of the log weights."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..models._checks import check_finite_parameters
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
    fn = "importance_log_likelihood"
    log_sum, _ = _log_sums(log_weight_fn, x, check_count(n_samples, "n_samples", fn), check_count(chunk, "chunk", fn),
                           fn, squares=False)
    return log_sum - math.log(n_samples)


def _log_sums(log_weight_fn, x, n_samples: int, chunk: int, fn: str, *, squares: bool):
    """``(log sum_k w_k, log sum_k w_k^2)`` over ``n_samples`` weights per row (the second None
    unless ``squares``), ``chunk`` at a time, by running log-sum-exps in float64."""
    total = total_sq = None
    done = 0
    while done < n_samples:
        k = min(chunk, n_samples - done)
        lw = log_weight_fn(x, k)
        if lw.dim() != 2 or lw.shape[0] != k:
            raise ValueError(f"{fn}: log_weight_fn(x, {k}) must return [{k}, batch] log weights, got shape "
                             f"{list(lw.shape)}")
        lw = lw.double()
        part = torch.logsumexp(lw, dim=0)  # [B]
        total = part if total is None else torch.logaddexp(total, part)
        if squares:
            part_sq = torch.logsumexp(2 * lw, dim=0)
            total_sq = part_sq if total_sq is None else torch.logaddexp(total_sq, part_sq)
        done += k
    return total, total_sq


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
    check_finite_parameters(model, fn)
    sums = [_log_sums(lambda v, k: model.log_weights(v, k, generator=generator), rows, n_samples, chunk, fn,
                      squares=True) for rows in x.split(batch_size)]
    log_sum, log_sum_sq = torch.cat([a for a, _ in sums]), torch.cat([b for _, b in sums])
    ess = torch.exp(2 * log_sum - log_sum_sq)
    # var(w) / mean(w)^2 = N sum w^2 / (sum w)^2 - 1 = N / ESS - 1
    std_error = torch.sqrt((n_samples / ess - 1).clamp(min=0) / n_samples)
    return ImportanceEstimate(log_sum - math.log(n_samples), std_error, ess, n_samples)
