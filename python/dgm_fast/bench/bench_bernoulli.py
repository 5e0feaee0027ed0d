"""The Bernoulli layer ops: a layer's draw with its log-probability, and the log-probability of
given states forward + backward, at an SBN layer's sizes (batches of 20 and 100 over 200 units,
and 100 images of 784 pixels).

sample_log_prob:
  dgm_fast        ops.bernoulli.bernoulli_sample_log_prob (one pass: one exp per unit)
  eager           torch.bernoulli(torch.sigmoid(l)), then -binary_cross_entropy_with_logits summed
  torch.compile   that function compiled by inductor
log_prob forward + backward (the gradient in the logits):
  dgm_fast        ops.bernoulli.bernoulli_log_prob;  eager: -binary_cross_entropy_with_logits summed
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from dgm_fast.bench._common import COMPILE, DGM_FAST, EAGER, fwd_bwd, size_id
from dgm_fast.ops.bernoulli import bernoulli_log_prob, bernoulli_sample_log_prob

QUICK = [(20, 200)]
FULL = [(20, 200), (100, 200), (100, 784)]


def eager_sample_log_prob(logits):
    sample = torch.bernoulli(torch.sigmoid(logits))
    return sample, -F.binary_cross_entropy_with_logits(logits, sample, reduction="none").sum(-1)


def eager_log_prob(x, logits):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def _inputs(size, device):
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(size, generator=g) * 2).to(device)
    x = (torch.rand(size, generator=g) < 0.5).float().to(device)
    return logits, x


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("size", FULL, ids=size_id)
def test_sample_log_prob(size, impl, setting, measure):
    if size not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")
    logits, _ = _inputs(size, setting.device)
    group = f"bernoulli sample_log_prob {size_id(size)}"
    if impl == DGM_FAST:
        gen = torch.Generator(device=setting.device).manual_seed(1)
        measure(group, impl, lambda l: bernoulli_sample_log_prob(l, generator=gen), logits)
    else:
        fn = torch.compile(eager_sample_log_prob) if impl == COMPILE else eager_sample_log_prob
        measure(group, impl, fn, logits, warmup=3 if impl == COMPILE else 1)


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("size", FULL, ids=size_id)
def test_log_prob_forward_backward(size, impl, setting, measure):
    if size not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")
    logits, x = _inputs(size, setting.device)
    logits.requires_grad_()
    group = f"bernoulli log_prob fwd+bwd {size_id(size)}"
    if impl == DGM_FAST:
        run = fwd_bwd(lambda l: bernoulli_log_prob(x, l).sum())
    else:
        plain = fwd_bwd(lambda l: eager_log_prob(x, l).sum())
        run = torch.compile(plain) if impl == COMPILE else plain
    measure(group, impl, run, logits, warmup=3 if impl == COMPILE else 1)
