"""Plain-PyTorch definitions of the Bernoulli layer ops of :mod:`dgm_fast.ops.bernoulli`: slow,
obvious, and what the tests hold the native kernels to. Differentiable by autograd.

Values are computed in float32 for float32, bfloat16 and float16 inputs (float64 for float64)
and returned in the input dtype, as the native ops do.
"""

from __future__ import annotations

import torch

from .elbo import bernoulli_nll
from .samplers import bernoulli_logits

__all__ = ["bernoulli_log_prob", "bernoulli_sample_log_prob"]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``sum_d log Bernoulli(x[..., d] | sigmoid(logits[..., d]))`` = ``sum_d x l - softplus(l)``:
    ``[..., D] -> [...]``."""
    c = _compute_dtype(logits.dtype)
    return (-bernoulli_nll(x.to(c), logits.to(c)).sum(-1)).to(logits.dtype)


def bernoulli_sample_log_prob(logits: torch.Tensor, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sample, log_prob)``: the sample :func:`dgm_fast.reference.samplers.bernoulli_logits`
    draws from ``words`` (the call's words, in element order), and its log-probability per row.
    A logit of +-inf gives its certain state with log-probability 0."""
    sample, _ = bernoulli_logits(logits, None, words)
    c = _compute_dtype(logits.dtype)
    l = logits.to(c)
    # softplus(-l) for a 1, softplus(l) for a 0: finite, and 0 for a saturated logit
    signed = torch.where(sample.to(c) == 1, -l, l)
    nll = torch.clamp(signed, min=0) + torch.log1p(torch.exp(-l.abs()))
    return sample, (-nll.sum(-1)).to(logits.dtype)
