"""Parzen-window (Gaussian kernel density) estimates of log p(x) for models that can only be
sampled (GANs, GMMNs): the evaluation the GAN and GMMN papers report.

A model's ``N`` samples ``s_j`` define the density ``(1/N) sum_j N(x | s_j, sigma^2 I)``; the test
set's mean log-density under it is the reported figure, with ``sigma`` chosen on a validation set
(:func:`select_parzen_sigma`). The protocol of Goodfellow et al. (2014) and Li et al. (2015) is
10,000 samples, ``sigma`` from ``logspace(-1, 0, 10)`` by the mean validation log-density, and the
test mean with its standard error over the test points.

**Why it is a weak measure** (Theis, van den Oord & Bethge 2016): in a space of 784 dimensions a
kernel density from 10,000 points is far from the density it stands for, and the estimate
converges very slowly as N grows. It scores how near the test points lie to *some* sample, not how
likely the model makes them: a model that memorises its training images, or a few k-means centres
of them, can outscore the true data distribution's own samples, and a model can score well while
its samples are poor, or badly while they are good. Its value depends strongly on ``sigma`` and on
N, and it is not a bound on the model's log-likelihood in either direction. Compare models with it
only under one protocol, and prefer an exact likelihood (autoregressive models) or a bound
(importance sampling, AIS) where the model has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..ops.parzen import parzen_log_density
from ._checks import check_examples

__all__ = ["DEFAULT_SIGMAS", "ParzenSelection", "parzen_log_likelihood", "select_parzen_sigma"]

DEFAULT_SIGMAS = tuple(float(s) for s in torch.logspace(-1, 0, 10, dtype=torch.float64))  # Goodfellow et al.'s grid


def _check_finite(t: torch.Tensor, name: str, fn: str) -> None:
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise ValueError(f"{fn}: {name} contains NaN or Inf")


@torch.no_grad()
def parzen_log_likelihood(x: torch.Tensor, samples: torch.Tensor, sigma: float | Sequence[float]) -> torch.Tensor:
    """``log p(x_i)`` of each row of ``x`` under the Gaussian kernel density of ``samples`` with
    standard deviation ``sigma``, ``[N_x]`` (a sequence of widths: ``[len(sigma), N_x]`` from one
    pass) (the native tiled op
    :func:`dgm_fast.ops.parzen.parzen_log_density`: memory O((N_x + N) D), not O(N_x N)).

    Args:
        x: ``[N_x, D]`` float32 or float64 points (test images as real values).
        samples: ``[N, D]``, the model's samples, same dtype and device.
        sigma: the kernels' standard deviation (choose it with :func:`select_parzen_sigma`).

    Raises a ValueError naming the problem for empty or non-finite inputs, mismatched columns
    and a non-positive ``sigma``. See the module's note on why this is a weak measure."""
    fn = "parzen_log_likelihood"
    for t, name in ((x, "x"), (samples, "samples")):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{fn}: {name} must be a Tensor, got {type(t).__name__}")
    check_examples(x, fn, "x")
    _check_finite(x, "x", fn)
    _check_finite(samples, "samples", fn)
    return parzen_log_density(x, samples, sigma)


@dataclass
class ParzenSelection:
    """The bandwidth chosen on a validation set.

    Attributes:
        sigma: the ``sigma`` with the highest mean validation log-density.
        sigmas: the candidates, in the order tried.
        mean_log_likelihoods: the validation set's mean log-density for each candidate.
    """

    sigma: float
    sigmas: list[float]
    mean_log_likelihoods: list[float]


@torch.no_grad()
def select_parzen_sigma(validation: torch.Tensor, samples: torch.Tensor,
                        sigmas: Sequence[float] = DEFAULT_SIGMAS) -> ParzenSelection:
    """Picks the kernel width that gives ``validation`` the highest mean log-density under the
    kernel density of ``samples`` (default candidates: ``logspace(-1, 0, 10)``, the grid of
    Goodfellow et al. for images in [0, 1])."""
    sigmas = [float(s) for s in sigmas]
    if not sigmas:
        raise ValueError("select_parzen_sigma: sigmas must name at least one candidate bandwidth")
    # one pass for all the candidates: each tile's product serves every width
    means = parzen_log_likelihood(validation, samples, sigmas).double().mean(1).tolist()
    best = max(range(len(sigmas)), key=lambda i: means[i])  # NaN never wins a comparison
    return ParzenSelection(sigmas[best], sigmas, means)
