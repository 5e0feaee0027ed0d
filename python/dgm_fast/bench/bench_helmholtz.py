"""One training update of a Helmholtz machine (a sigmoid belief net and its recognition model) by
each learning algorithm, and ancestral sampling, at Mnih & Gregor's SBN 200-200 on MNIST with
batches of 20, and a small digits-sized one.

Update (wake-sleep, RWS with K = 5, NVIL): the algorithm's loss on one batch, its backward pass
and torch's fused Adam step (fit_helmholtz's optimizer; the same in every row).
  dgm_fast        models.helmholtz's wake_sleep_loss / rws_loss / nvil_loss (what fit_helmholtz
                  runs per batch): the fused Bernoulli layer ops (a draw with its log-probability
                  in one pass, the log-probability of given states with a native backward)
  eager           the same algorithm in plain PyTorch: torch.bernoulli(torch.sigmoid(logits)) per
                  layer, binary_cross_entropy_with_logits for the log-probabilities
  torch.compile   that loss function compiled by inductor (the backward through AOTAutograd)
Sampling: 100 ancestral samples of every layer of the SBN.
  dgm_fast        SBN.sample_states;  eager: torch.bernoulli(torch.sigmoid(.)) top-down
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from dgm_fast import HelmholtzMachine
from dgm_fast.bench._common import COMPILE, DGM_FAST, EAGER, optimizer_update
from dgm_fast.bench.bench_rbm import binary_batch
from dgm_fast.models.helmholtz import NVILBaseline, nvil_loss, rws_loss, wake_sleep_loss

K = 5
LR = 3e-4
QUICK = [((64, 32, 16), 20)]
FULL = [((64, 32, 16), 20), ((784, 200, 200), 20)]
ALGORITHMS = ("wake-sleep", "rws", "nvil")


def _case_id(case) -> str:
    sizes, batch = case
    return "-".join(map(str, sizes)) + f"-b{batch}"


def _select(case, setting) -> None:
    if case not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")


def _machine(sizes, device) -> HelmholtzMachine:
    return HelmholtzMachine(list(sizes), init_std=0.1, generator=torch.Generator().manual_seed(0), device=device)


# ---- the plain-PyTorch baselines ----------------------------------------------------------------
# p = (gen_weights, gen_biases, rec_weights, rec_biases), lists of leaf tensors as in HelmholtzMachine.


def _log_bernoulli(x, logits):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def _draw(logits):
    h = torch.bernoulli(torch.sigmoid(logits.detach()))
    return h, _log_bernoulli(h, logits)


def eager_log_p_layers(gw, gb, states):
    terms = [_log_bernoulli(states[l], F.linear(states[l + 1], gw[l], gb[l])) for l in range(len(gw))]
    return terms + [_log_bernoulli(states[-1], gb[-1].expand_as(states[-1]))]


def eager_infer(rw, rb, x):
    states, log_q = [x], []
    for w, b in zip(rw, rb):
        h, lq = _draw(states[-1] @ w + b)
        states.append(h)
        log_q.append(lq)
    return states, log_q


def eager_dream(gw, gb, n):
    states = [torch.bernoulli(torch.sigmoid(gb[-1].detach()).expand(n, -1))]
    for l in range(len(gw) - 1, -1, -1):
        states.insert(0, torch.bernoulli(torch.sigmoid(F.linear(states[0], gw[l], gb[l]).detach())))
    return states


def eager_sleep(rw, rb, dreams):
    return sum(_log_bernoulli(dreams[l + 1], dreams[l] @ w + b) for l, (w, b) in enumerate(zip(rw, rb))).mean()


def eager_wake_sleep_loss(gw, gb, rw, rb, x):
    with torch.no_grad():
        states, _ = eager_infer(rw, rb, x)
    log_p = sum(eager_log_p_layers(gw, gb, states))
    return -log_p.mean() - eager_sleep(rw, rb, eager_dream(gw, gb, x.shape[0]))


def eager_rws_loss(gw, gb, rw, rb, x):
    states, log_q = eager_infer(rw, rb, x.expand(K, *x.shape))
    log_p, log_q = sum(eager_log_p_layers(gw, gb, states)), sum(log_q)
    weights = torch.softmax((log_p - log_q).detach(), 0)
    wake = -(weights * (log_p + log_q)).sum(0).mean()
    return wake - eager_sleep(rw, rb, eager_dream(gw, gb, x.shape[0]))


def eager_nvil_loss(gw, gb, rw, rb, baseline, stats, x, alpha=0.8):
    """``baseline``: per layer (W1, b1, W2, b2) of the tanh MLP; ``stats``: [2, L] running mean and
    variance, updated in place."""
    states, log_q = eager_infer(rw, rb, x)
    log_p = eager_log_p_layers(gw, gb, states)
    loss = -sum(log_p).mean()
    lp, lq = torch.stack(log_p).detach(), torch.stack(log_q).detach()
    p_suffix, q_suffix = lp.flip(0).cumsum(0).flip(0), lq.flip(0).cumsum(0).flip(0)
    for l, (w1, b1, w2, b2) in enumerate(baseline):
        signal = p_suffix[l] - q_suffix[l]
        b = (torch.tanh(states[l] @ w1.t() + b1) @ w2.t() + b2).squeeze(-1)
        residual = signal - b.detach()
        with torch.no_grad():
            stats[0, l] = alpha * stats[0, l] + (1 - alpha) * residual.mean()
            stats[1, l] = alpha * stats[1, l] + (1 - alpha) * residual.var()
            advantage = (residual - stats[0, l]) / stats[1, l].sqrt().clamp(min=1.0)
        loss = loss - (advantage * log_q[l]).mean() + ((signal - b - stats[0, l]) ** 2).mean()
    return loss


# ---- the cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", FULL, ids=_case_id)
def test_update(case, algorithm, impl, setting, measure):
    _select(case, setting)
    sizes, batch = case
    device = setting.device
    hm = _machine(sizes, device)
    x = binary_batch(batch, sizes[0], device, torch.Generator().manual_seed(1))
    group = f"helmholtz {algorithm}{f' k={K}' if algorithm == 'rws' else ''} update {'-'.join(map(str, sizes))} batch {batch}"
    baseline = NVILBaseline(sizes, generator=torch.Generator().manual_seed(2), device=device)
    if impl == DGM_FAST:
        gen = torch.Generator(device=device).manual_seed(3)
        losses = {"wake-sleep": lambda v: wake_sleep_loss(hm, v, generator=gen)[0],
                  "rws": lambda v: rws_loss(hm, v, K, generator=gen)[0],
                  "nvil": lambda v: nvil_loss(hm, v, baseline, generator=gen)[0]}
        params = [*hm.parameters(), *(baseline.parameters() if algorithm == "nvil" else [])]
        loss_fn = losses[algorithm]
    else:
        gw = [w.detach().clone().requires_grad_() for w in hm.generative.weights]
        gb = [b.detach().clone().requires_grad_() for b in hm.generative.biases]
        rw = [w.detach().clone().requires_grad_() for w in hm.recognition_weights]
        rb = [b.detach().clone().requires_grad_() for b in hm.recognition_biases]
        nets = [[p.detach().clone().requires_grad_() for p in (net[0].weight, net[0].bias, net[2].weight, net[2].bias)]
                for net in baseline.nets]
        stats = torch.stack([torch.zeros(len(nets)), torch.ones(len(nets))]).to(device)
        plain = {"wake-sleep": lambda v: eager_wake_sleep_loss(gw, gb, rw, rb, v),
                 "rws": lambda v: eager_rws_loss(gw, gb, rw, rb, v),
                 "nvil": lambda v: eager_nvil_loss(gw, gb, rw, rb, nets, stats, v)}[algorithm]
        params = [*gw, *gb, *rw, *rb, *(p for net in nets for p in net)] if algorithm == "nvil" else [*gw, *gb, *rw, *rb]
        loss_fn = torch.compile(plain) if impl == COMPILE else plain
    update = optimizer_update(loss_fn, torch.optim.Adam(params, lr=LR, fused=True))  # fit_helmholtz's, for all three
    measure(group, impl, update, x, warmup=3 if impl == COMPILE else 1)


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("case", FULL, ids=_case_id)
def test_sample(case, impl, setting, measure):
    _select(case, setting)
    sizes, _ = case
    hm = _machine(sizes, setting.device)
    group = f"helmholtz sample(100) {'-'.join(map(str, sizes))}"
    if impl == DGM_FAST:
        gen = torch.Generator(device=setting.device).manual_seed(3)
        measure(group, impl, lambda: hm.generative.sample_states(100, generator=gen))
        return
    gw = [w.detach() for w in hm.generative.weights]
    gb = [b.detach() for b in hm.generative.biases]
    fn = torch.compile(eager_dream) if impl == COMPILE else eager_dream
    measure(group, impl, lambda: fn(gw, gb, 100), warmup=3 if impl == COMPILE else 1)
