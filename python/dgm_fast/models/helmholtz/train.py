"""Learning algorithms for a Helmholtz machine: the same pair of models, p(x, h) and q(h | x),
trained three ways (the seed lecture's point). Each is a surrogate loss whose gradient is the
algorithm's update, so that any torch optimizer applies it and :func:`fit_helmholtz` trains
through :func:`dgm_fast.train.fit` (checkpoints, resume, data-parallel).

* **Wake-sleep** (Hinton, Dayan, Frey & Neal 1995). Wake: ``h ~ q(h | x)``, and p climbs
  ``log p(x, h)``. Sleep: a dream ``(x~, h~) ~ p``, and q climbs ``log q(h~ | x~)``. The sleep
  phase fits q by ``KL(p(h | x) || q)`` averaged over dreams, not the ELBO's ``KL(q || p(h | x))``
  on the data: its gradient is biased for the bound (the tests show it by enumeration).
* **Reweighted wake-sleep** (Bornschein & Bengio 2015). ``K`` samples ``h_k ~ q(h | x)`` with
  normalised importance weights ``w_k = softmax_k(log p(x, h_k) - log q(h_k | x))``; p climbs
  ``sum_k w_k log p(x, h_k)`` (an estimate of the gradient of ``log p(x)``, biased for finite
  ``K``, consistent as ``K`` grows); q climbs ``sum_k w_k log q(h_k | x)`` (wake-phase q update)
  and, optionally, the sleep phase's ``log q(h~ | x~)``.
* **NVIL** (Mnih & Gregor 2014). One sample ``h ~ q(h | x)`` and the learning signal
  ``l = log p(x, h) - log q(h | x)``; p climbs ``log p(x, h)``, q follows the score-function
  gradient ``(l - b(x) - c) / max(1, sigma) * grad log q(h | x)``, with an input-dependent
  baseline ``b`` (an MLP trained to predict ``l``), centring by a running mean ``c`` and variance
  normalisation by a running standard deviation ``sigma``. Each layer of q gets its local signal:
  the terms of ``l`` that its units can change (``log p`` from the layer below it up, minus
  ``log q`` from itself up), with its own baseline and statistics. Unbiased for the ELBO's
  gradient, up to the positive factor ``1 / max(1, sigma)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from numbers import Real

import torch
from torch import nn

from ...train import distributed, fit, fused_adam
from ...ops.elbo import iwae_bound
from .._checks import check_choice, check_count, check_finite_parameters, training_rows
from .model import HelmholtzMachine

__all__ = ["ALGORITHMS", "NVILBaseline", "fit_helmholtz", "nvil_loss", "rws_loss", "wake_sleep_loss"]

ALGORITHMS = ("wake-sleep", "rws", "nvil")
Q_UPDATES = ("wake", "sleep", "both")


def _mean_dream_log_q(hm: HelmholtzMachine, n: int, generator) -> torch.Tensor:
    """The sleep phase's objective: the mean ``log q(h~ | x~)`` of ``n`` dreams ``(x~, h~) ~ p``."""
    dreams = hm.generative.sample_states(n, generator=generator)
    return sum(hm._recognition_log_probs(dreams)).mean()  # dreams are well-formed: no checks


def wake_sleep_loss(hm: HelmholtzMachine, x: torch.Tensor, *, generator: torch.Generator | None = None):
    """``(loss, metrics)``: ``-mean log p(x, h) - mean log q(h~ | x~)``, whose gradient is
    wake-sleep's update (the wake term reaches only p, the sleep term only q).
    ``metrics["elbo"]``: the batch's mean ``log p(x, h) - log q(h | x)``, a one-sample estimate
    of the ELBO."""
    with torch.no_grad():  # the wake phase trains p only: no graph through q
        states, log_q = hm.infer(x, generator=generator)
    log_p = torch.stack(hm.generative.layer_log_probs(states)).sum(0)
    loss = -log_p.mean() - _mean_dream_log_q(hm, x.shape[0], generator)
    elbo = (log_p - torch.stack(log_q).sum(0)).detach().mean()
    return loss, {"elbo": elbo}


def rws_loss(hm: HelmholtzMachine, x: torch.Tensor, k: int = 5, *, q_update: str = "both",
             generator: torch.Generator | None = None):
    """``(loss, metrics)`` of reweighted wake-sleep with ``k`` samples per row: the gradient is
    ``-sum_k w_k grad log p(x, h_k)`` for p and ``-sum_k w_k grad log q(h_k | x)`` (``q_update``
    ``"wake"``), ``-grad log q(h~ | x~)`` of dreams (``"sleep"``) or both, for q.
    ``metrics["bound"]``: the batch's mean ``log (1/k) sum_k exp(log p(x, h_k) - log q(h_k | x))``,
    the importance-weighted lower bound on ``log p(x)``."""
    check_choice(q_update, Q_UPDATES, "rws_loss", "q_update")
    states, log_q_layers = hm.infer(x, k, generator=generator)
    log_p = torch.stack(hm.generative.layer_log_probs(states)).sum(0)  # [k, B]
    log_q = torch.stack(log_q_layers).sum(0)
    log_w = (log_p - log_q).detach()
    weights = torch.softmax(log_w, dim=0)
    loss = -(weights * log_p).sum(0).mean()
    if q_update in ("wake", "both"):
        loss = loss - (weights * log_q).sum(0).mean()
    if q_update in ("sleep", "both"):
        loss = loss - _mean_dream_log_q(hm, x.shape[0], generator)
    return loss, {"bound": iwae_bound(log_w).mean()}


class NVILBaseline(nn.Module):
    """NVIL's variance reduction for a Helmholtz machine's recognition layers: per layer ``l``, an
    input-dependent baseline ``b_l(h_{l-1})`` (an MLP with one tanh hidden layer of ``hidden``
    units; Mnih & Gregor used 100) and running estimates of the mean ``c_l`` and variance ``v_l``
    of ``signal_l - b_l``, updated with decay ``alpha`` (0.8 in the paper). A ``state_dict``
    holds it all, so a checkpoint resumes it."""

    def __init__(self, layer_sizes, *, hidden: int = 100, alpha: float = 0.8,
                 generator: torch.Generator | None = None, device=None, dtype=None):
        super().__init__()
        if not isinstance(alpha, Real) or not 0 <= alpha < 1:
            raise ValueError(f"NVILBaseline: alpha must lie in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)
        inputs = list(layer_sizes)[:-1]  # the layer each recognition layer is conditioned on
        self.nets = nn.ModuleList()
        for n in inputs:
            net = nn.Sequential(nn.Linear(n, hidden), nn.Tanh(), nn.Linear(hidden, 1))
            with torch.no_grad():  # seeded, so that every rank of a data-parallel run starts alike
                for p in net.parameters():
                    bound = 1 / max(p.shape[-1], 1) ** 0.5
                    p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)
            self.nets.append(net.to(device=device, dtype=dtype))
        self.register_buffer("mean", torch.zeros(len(inputs), device=device, dtype=dtype))
        self.register_buffer("var", torch.ones(len(inputs), device=device, dtype=dtype))

    def forward(self, lower: torch.Tensor, layer: int) -> torch.Tensor:
        """``b_layer(lower)``, ``[...]``."""
        return self.nets[layer](lower).squeeze(-1)


def nvil_loss(hm: HelmholtzMachine, x: torch.Tensor, baseline: NVILBaseline, *, center: bool = True,
              normalize: bool = True, generator: torch.Generator | None = None):
    """``(loss, metrics)`` of NVIL with one sample per row. The gradient of ``loss`` is
    ``-grad log p(x, h)`` for p, ``-A_l grad log q(h_l | h_{l-1})`` summed over the layers for q,
    with ``A_l = (signal_l - b_l - c_l) / max(1, sqrt(v_l))``, and for the baselines that of
    ``(signal_l - b_l - c_l)^2``. ``center`` and ``normalize`` switch the running mean and the
    variance normalisation (on in the paper); the running statistics are updated from the batch
    first, as in the paper's Algorithm 1. ``metrics["elbo"]``: the batch's mean learning signal."""
    states, log_q_layers = hm.infer(x, generator=generator)
    log_p_layers = hm.generative.layer_log_probs(states)  # [log p(h_0 | h_1), ..., log p(h_L)]
    n_layers = len(log_q_layers)
    log_p = torch.stack(log_p_layers).sum(0)
    loss = -log_p.mean()
    with torch.no_grad():
        lp, lq = torch.stack(log_p_layers), torch.stack(log_q_layers)
        # signal of q's layer l + 1 (h_{l+1} | h_l): log p(h_l, ..., h_L) - log q(h_{l+1}, ..., h_L | h_l)
        p_suffix = lp.flip(0).cumsum(0).flip(0)  # p_suffix[j] = sum_{i >= j} lp[i]
        q_suffix = lq.flip(0).cumsum(0).flip(0)
        signals = [p_suffix[l] - q_suffix[l] for l in range(n_layers)]
    for layer in range(n_layers):
        b = baseline(states[layer].detach(), layer)
        residual = signals[layer] - b.detach()
        with torch.no_grad():
            if center:
                baseline.mean[layer].mul_(baseline.alpha).add_((1 - baseline.alpha) * residual.mean())
            if normalize and residual.numel() > 1:
                baseline.var[layer].mul_(baseline.alpha).add_((1 - baseline.alpha) * residual.var())
            c = baseline.mean[layer] if center else 0.0
            scale = baseline.var[layer].sqrt().clamp(min=1.0) if normalize else 1.0
            advantage = (residual - c) / scale
        loss = loss - (advantage * log_q_layers[layer]).mean()
        loss = loss + ((signals[layer] - b - (baseline.mean[layer] if center else 0.0)) ** 2).mean()
    return loss, {"elbo": signals[0].mean()}


def fit_helmholtz(
    hm: HelmholtzMachine,
    data: torch.Tensor,
    *,
    algorithm: str = "rws",
    k: int = 5,
    q_update: str = "both",
    epochs: int = 10,
    batch_size: int = 100,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    lr_schedule: str | Callable[[int], float] | None = None,
    baseline: NVILBaseline | None = None,
    generator: torch.Generator | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
    eval_fn: Callable[[HelmholtzMachine, int], dict] | None = None,
) -> list[dict]:
    """Trains ``hm`` on the binary rows of ``data`` with ``algorithm`` (``"wake-sleep"``,
    ``"rws"`` with ``k`` samples and ``q_update``, or ``"nvil"`` with ``baseline``, a new
    :class:`NVILBaseline` if None), by Adam with ``lr`` unless an ``optimizer`` is given, through
    :func:`dgm_fast.train.fit`. Returns ``fit``'s history: per epoch the mean training ``elbo``
    (wake-sleep, NVIL) or ``bound`` (RWS), and what ``eval_fn(hm, epoch)`` returns."""
    fn = "fit_helmholtz"
    check_choice(algorithm, ALGORITHMS, fn, "algorithm")
    check_count(k, "k", fn)
    check_choice(q_update, Q_UPDATES, fn, "q_update")
    data = training_rows(data, hm.n_visible, hm.generative.biases[0].dtype, fn, binary=True)
    check_finite_parameters(hm, fn)
    device, dtype = hm.generative.biases[0].device, hm.generative.biases[0].dtype
    generator, shuffle_gen = distributed.run_generators(generator, device)
    state = {}
    params = list(hm.parameters())
    if algorithm == "nvil":
        # seeded from the shuffle generator's seed (no draw): the same initial baseline on every rank
        seed = torch.Generator().manual_seed(shuffle_gen.initial_seed() + 1)
        baseline = baseline or NVILBaseline(hm.layer_sizes, generator=seed, device=device, dtype=dtype)
        state["baseline"] = baseline
        params += list(baseline.parameters())
    optimizer = optimizer or fused_adam(params, device, lr=lr)

    def step(batch) -> dict:
        x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device=device, dtype=dtype)
        if algorithm == "wake-sleep":
            loss, metrics = wake_sleep_loss(hm, x, generator=generator)
        elif algorithm == "rws":
            loss, metrics = rws_loss(hm, x, k, q_update=q_update, generator=generator)
        else:
            loss, metrics = nvil_loss(hm, x, baseline, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return metrics

    evaluate = None if eval_fn is None else (lambda epoch: eval_fn(hm, epoch))
    return fit(step, data, model=hm, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
               lr_schedule=lr_schedule, state=state, generators={"generator": generator},
               shuffle_generator=shuffle_gen, eval_fn=evaluate, checkpoint=checkpoint,
               checkpoint_every=checkpoint_every, extra=hm.checkpoint_header(), progress=progress,
               desc=f"{algorithm} epochs")
