"""Evaluation: annealed importance sampling (AIS) of an RBM's log partition function.

A 784x500 RBM, 100 runs through the schedule's first N intermediate distributions (rescaled to
end at 1), float32 states and float64 log weights:
  dgm_fast        dgm_fast.evaluate.ais: one native op advances all runs through all temperatures
  eager           the same algorithm as a plain-PyTorch loop over the temperatures (eager_ais)
  torch.compile   that loop with its per-temperature step compiled (temperatures passed as tensors,
                  so the step compiles once)
On CUDA, eager+graph and dgm_fast+graph replay the whole run captured in a CUDA graph.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dgm_fast import RBM, evaluate
from dgm_fast.bench._common import COMPILE, DGM_FAST, DGM_FAST_GRAPH, EAGER, EAGER_GRAPH, graphed

N_RUNS = 100
QUICK_BETAS, FULL_BETAS = (200,), (200, 2000)


def eager_ais_step(v, log_w, W, b, c, base, beta, prev, sample: bool):
    """One temperature: the log-weight update, then (unless it is the last) one Gibbs transition."""
    x = torch.addmm(c, v, W)
    x64 = x.double()
    log_w = log_w + (v @ (b - base)).double() * (beta - prev)
    log_w = log_w + (F.softplus(beta * x64) - F.softplus(prev * x64)).sum(1)
    if sample:
        h = torch.bernoulli(torch.sigmoid(beta.float() * x))
        v = torch.bernoulli(torch.sigmoid((1 - beta.float()) * base + beta.float() * (b + h @ W.t())))
    return v, log_w


def eager_ais(rbm, base, betas, n_runs, step=eager_ais_step):
    """AIS from the base-rate model ``base`` to ``rbm`` over ``betas`` (a float64 tensor)."""
    W, b, c = rbm.weight, rbm.visible_bias, rbm.hidden_bias
    v = torch.bernoulli(torch.sigmoid(base).expand(n_runs, -1))
    log_w = torch.zeros(n_runs, dtype=torch.float64, device=v.device)
    for k in range(1, len(betas)):
        v, log_w = step(v, log_w, W, b, c, base, betas[k], betas[k - 1], k + 1 < len(betas))
    return log_w


def _model(device):
    g = torch.Generator().manual_seed(0)
    rbm = RBM(784, 500, init_std=0.05, device=device, generator=g)
    with torch.no_grad():
        rbm.hidden_bias.copy_(torch.randn(500, generator=g) * 0.5 - 1)
        rbm.visible_bias.copy_(torch.randn(784, generator=g) - 1)
    base = torch.full((784,), -1.0, device=device)
    data = torch.bernoulli(torch.full((1000, 784), torch.sigmoid(torch.tensor(-1.0)).item()), generator=g).to(device)
    return rbm, base, data


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE, EAGER_GRAPH, DGM_FAST_GRAPH])
@pytest.mark.parametrize("n_betas", FULL_BETAS)
def test_ais(n_betas, impl, setting, measure):
    if setting.quick and n_betas not in QUICK_BETAS:
        pytest.skip("not in --quick")
    if impl in (EAGER_GRAPH, DGM_FAST_GRAPH) and setting.device.type != "cuda":
        pytest.skip("CUDA graphs: GPU only")
    device = setting.device
    rbm, base, data = _model(device)
    full = evaluate.default_betas()
    betas = (full[:n_betas] / full[n_betas - 1]).to(device=device, dtype=torch.float64)
    group = f"evaluate ais 784x500 {N_RUNS} runs {n_betas} distributions"

    def ours():
        with torch.no_grad():
            return evaluate.ais(rbm, N_RUNS, betas, data=data)

    def eager(step=eager_ais_step):
        with torch.no_grad():
            return eager_ais(rbm, base, betas, N_RUNS, step)

    if impl == DGM_FAST:
        measure(group, impl, ours)
    elif impl == EAGER:
        measure(group, impl, eager)
    elif impl == COMPILE:
        step = torch.compile(eager_ais_step)
        measure(group, impl, lambda: eager(step))
    else:
        measure(group, impl, graphed(ours if impl == DGM_FAST_GRAPH else eager, ()))


# ---- Parzen-window log-densities ------------------------------------------------------------
# N_x test points under the kernel density of N samples (MNIST-sized in the full run: the GAN
# papers' 10,000 samples), float32:
#   dgm_fast        dgm_fast.evaluate.parzen_log_likelihood: the native tiled op
#   eager           the chunked plain-PyTorch log-sum-exp (eager_parzen): per chunk of 1,000
#                   points, the squared distances by one product, then torch.logsumexp
#   torch.compile   eager_parzen's per-chunk function compiled
PARZEN_QUICK, PARZEN_FULL = ((500, 2000, 64),), ((500, 2000, 64), (2000, 10000, 784))
PARZEN_CHUNK = 1000


def eager_parzen_chunk(x, s, s_sq, sigma: float):
    d2 = x.square().sum(1, keepdim=True) + s_sq - 2 * x @ s.t()
    return torch.logsumexp(d2 * (-0.5 / sigma**2), dim=1)


def eager_parzen(x, s, sigma: float, chunk_fn=eager_parzen_chunk):
    """The Parzen log-density of each row of ``x`` under ``s`` in chunks of PARZEN_CHUNK points."""
    import math

    s_sq = s.square().sum(1)
    log_norm = math.log(s.shape[0]) + 0.5 * s.shape[1] * math.log(2 * math.pi * sigma**2)
    return torch.cat([chunk_fn(block, s, s_sq, sigma) for block in x.split(PARZEN_CHUNK)]) - log_norm


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("size", PARZEN_FULL, ids=lambda size: "x".join(map(str, size)))
def test_parzen(size, impl, setting, measure):
    if setting.quick and size not in PARZEN_QUICK:
        pytest.skip("not in --quick")
    n_x, n, d = size
    g = torch.Generator().manual_seed(0)
    x, s = (torch.rand(rows, d, generator=g).to(setting.device) for rows in (n_x, n))
    group = f"evaluate parzen {n_x} points {n} samples D={d}"
    sigma = 0.2
    if impl == DGM_FAST:
        measure(group, impl, lambda: evaluate.parzen_log_likelihood(x, s, sigma))
    elif impl == EAGER:
        measure(group, impl, lambda: eager_parzen(x, s, sigma))
    else:
        chunk_fn = torch.compile(eager_parzen_chunk)
        measure(group, impl, lambda: eager_parzen(x, s, sigma, chunk_fn))
