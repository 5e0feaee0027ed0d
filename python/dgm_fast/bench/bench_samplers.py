"""Fused samplers against what a PyTorch user would write instead."""

from __future__ import annotations

import pytest
import torch

from dgm_fast import ops
from dgm_fast.bench._common import COMPILE, DGM_FAST, DGM_FAST_GRAPH, EAGER, EAGER_GRAPH, graphed, size_id

QUICK = {"bernoulli_logits": [(100, 500)], "normal_reparam": [(1024, 50)]}
FULL = {"bernoulli_logits": [(100, 500), (1024, 4096), (4096, 4096)], "normal_reparam": [(1024, 50), (4096, 4096)]}


def eager_bernoulli(x, b):
    return torch.bernoulli(torch.sigmoid(x + b))


def fused_bernoulli(x, b):
    return ops.bernoulli_logits(x, b)


def eager_reparam(mu, log_var):
    eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * log_var) * eps, eps


def fused_reparam(mu, log_var):
    return ops.normal_reparam(mu, log_var)


def _inputs(op, size, device):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(*size, generator=g).to(device)
    b = torch.randn(size[-1] if op == "bernoulli_logits" else size, generator=g).to(device)
    return a, b


_FNS = {"bernoulli_logits": (fused_bernoulli, eager_bernoulli), "normal_reparam": (fused_reparam, eager_reparam)}
IMPLS = [DGM_FAST, EAGER, COMPILE, EAGER_GRAPH, DGM_FAST_GRAPH]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("op,size", [(op, s) for op, sizes in FULL.items() for s in sizes],
                         ids=lambda v: size_id(v) if isinstance(v, tuple) else v)
def test_sampler(op, size, impl, setting, measure):
    if setting.quick and size not in QUICK[op]:
        pytest.skip("not in --quick")
    if impl in (EAGER_GRAPH, DGM_FAST_GRAPH) and setting.device.type != "cuda":
        pytest.skip("CUDA graphs: GPU only")
    fused, eager = _FNS[op]
    args = _inputs(op, size, setting.device)
    fn = fused if impl in (DGM_FAST, DGM_FAST_GRAPH) else eager
    if impl == COMPILE:
        fn = torch.compile(eager)
    elif impl in (EAGER_GRAPH, DGM_FAST_GRAPH):
        fn = graphed(fn, args)
    measure(f"samplers {op} {size_id(size)}", impl, fn, *args)
