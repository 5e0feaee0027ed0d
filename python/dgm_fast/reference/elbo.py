"""Plain-PyTorch definitions of the VAE loss ops of :mod:`dgm_fast.ops.elbo`: slow, obvious,
and what the tests hold the native kernels to. Differentiable by autograd.

Values are computed in float32 for float32, bfloat16 and float16 inputs (float64 for float64)
and returned in the input dtype, as the native ops do.
"""

from __future__ import annotations

import math

import torch

__all__ = ["bernoulli_nll", "gaussian_nll", "gaussian_kl", "gaussian_elbo", "iwae_bound"]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def bernoulli_nll(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Elementwise ``-log Bernoulli(x | sigmoid(logits)) = softplus(logits) - x * logits``, as
    ``max(l, 0) - x l + log1p(exp(-|l|))``: finite for any logit, no clamping, any x in [0, 1]."""
    return torch.clamp(logits, min=0) - x * logits + torch.log1p(torch.exp(-logits.abs()))


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Elementwise ``-log N(x | mean, 1) = 0.5 (x - mean)^2 + 0.5 log(2 pi)``."""
    return 0.5 * (x - mean) ** 2 + 0.5 * math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(log_var)) || N(0, 1))`` per example: ``[B, Z] -> [B]``."""
    return 0.5 * (mu**2 + torch.exp(log_var) - 1 - log_var).sum(-1)


def gaussian_elbo(
    x: torch.Tensor,  # [B, D]
    recon: torch.Tensor,  # [B, D] logits (bernoulli) or means (gaussian)
    mu: torch.Tensor,  # [B, Z]
    log_var: torch.Tensor,  # [B, Z]
    *,
    likelihood: str = "bernoulli",
    reduction: str = "mean",
) -> torch.Tensor:
    """The negative ELBO per example (sum over features of the reconstruction NLL plus the KL to
    the standard normal prior), reduced over the batch ("mean", "sum" or "none": ``[B]``)."""
    dtype = x.dtype
    c = _compute_dtype(dtype)
    x, recon, mu, log_var = (t.to(c) for t in (x, recon, mu, log_var))
    nll = bernoulli_nll(x, recon) if likelihood == "bernoulli" else gaussian_nll(x, recon)
    per_example = (nll.sum(-1) + gaussian_kl(mu, log_var)).to(dtype)
    if reduction == "none":
        return per_example
    return per_example.sum() if reduction == "sum" else per_example.mean()


def iwae_bound(log_weights: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``log (1/K) sum_k exp(log_weights[k])`` over ``dim`` (K = its size)."""
    k = log_weights.shape[dim]
    c = _compute_dtype(log_weights.dtype)
    return (torch.logsumexp(log_weights.to(c), dim) - math.log(k)).to(log_weights.dtype)
