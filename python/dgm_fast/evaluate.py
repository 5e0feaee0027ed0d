"""Measures of how good an RBM is. Exact ones for models small enough to enumerate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import ops
from .rbm import RBM

__all__ = [
    "AISResult",
    "ais",
    "reverse_ais",
    "default_betas",
    "exact_log_partition",
    "exact_log_likelihood",
    "log_likelihood",
    "pseudo_log_likelihood",
    "reconstruction_error",
]

_MAX_ENUMERATED_UNITS = 30


def _binary_states(n: int, start: int, stop: int, dtype, device) -> torch.Tensor:
    """Rows ``start .. stop-1`` of the ``2^n`` binary vectors, bit j of row r = state of unit j."""
    codes = torch.arange(start, stop, device=device, dtype=torch.int64)
    bits = torch.arange(n, device=device, dtype=torch.int64)
    return ((codes.unsqueeze(1) >> bits) & 1).to(dtype)


@torch.no_grad()
def exact_log_partition(rbm: RBM, chunk: int = 1 << 16) -> torch.Tensor:
    """``log Z`` by enumerating the smaller binary layer, in log space, in chunks on the model's
    device. Practical up to about 25-30 units in the enumerated layer.

    Gaussian visible units are integrated out in closed form (so the hidden layer is enumerated);
    NReLU hidden units cannot be enumerated.
    """
    if rbm.hidden == "nrelu":
        raise ValueError("exact_log_partition: NReLU hidden units are continuous; use AIS")
    enumerate_hidden = rbm.visible == "gaussian" or rbm.n_hidden <= rbm.n_visible
    n = rbm.n_hidden if enumerate_hidden else rbm.n_visible
    if n > _MAX_ENUMERATED_UNITS:
        raise ValueError(
            f"exact_log_partition: enumerating 2^{n} states is not practical "
            f"(limit 2^{_MAX_ENUMERATED_UNITS}); use AIS"
        )
    W, b, c = rbm.weight.double(), rbm.visible_bias.double(), rbm.hidden_bias.double()
    terms = []
    for start in range(0, 1 << n, chunk):
        states = _binary_states(n, start, min(1 << n, start + chunk), torch.float64, W.device)
        if not enumerate_hidden:  # sum over visible states of exp(-F(v))
            terms.append(states @ b + torch.nn.functional.softplus(states @ W + c).sum(1))
        elif rbm.visible == "bernoulli":  # sum over h of exp(c.h) prod_i (1 + exp(b_i + (W h)_i))
            terms.append(states @ c + torch.nn.functional.softplus(states @ W.t() + b).sum(1))
        else:  # Gaussian: integral over v of exp(-E) = exp(b.a/sigma + |a|^2/2) (2 pi)^(V/2) prod sigma
            log_std = rbm.visible_log_std.double()
            a = states @ W.t()  # [S, V]
            terms.append(states @ c + (a * b * torch.exp(-log_std)).sum(1) + 0.5 * (a * a).sum(1))
    log_z = torch.logsumexp(torch.cat(terms), 0)
    if rbm.visible == "gaussian":
        log_z = log_z + 0.5 * rbm.n_visible * math.log(2 * math.pi) + rbm.visible_log_std.double().sum()
    return log_z


@torch.no_grad()
def log_likelihood(rbm: RBM, data: torch.Tensor, log_z: float | torch.Tensor) -> torch.Tensor:
    """Mean ``log p(v) = -F(v) - log Z`` over the rows of ``data``, in nats (float64)."""
    return (-rbm.free_energy(data).double() - torch.as_tensor(log_z, dtype=torch.float64)).mean()


def exact_log_likelihood(rbm: RBM, data: torch.Tensor) -> torch.Tensor:
    """:func:`log_likelihood` with the exact ``log Z`` of :func:`exact_log_partition`."""
    return log_likelihood(rbm, data, exact_log_partition(rbm))


@torch.no_grad()
def pseudo_log_likelihood(rbm: RBM, data: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """Mean full pseudo-log-likelihood ``sum_i log p(v_i | v_-i)`` over the rows (binary visible
    units), every unit flipped in turn, not scikit-learn's one random bit:
    ``log p(v_i | v_-i) = -softplus(F(v) - F(v with bit i flipped))``."""
    if rbm.visible != "bernoulli":
        raise ValueError("pseudo_log_likelihood: defined here for Bernoulli visible units")
    rbm._check_visible(data, "data")
    x = rbm.hidden_preactivation(data)  # [B, H]
    free = rbm.free_energy(data)  # [B]
    total = torch.zeros(data.shape[0], dtype=torch.float64, device=data.device)
    for start in range(0, rbm.n_visible, chunk):
        idx = torch.arange(start, min(start + chunk, rbm.n_visible), device=data.device)
        sign = 1 - 2 * data[:, idx]  # +1 where the bit turns on, -1 where it turns off   [B, C]
        x_flip = x.unsqueeze(1) + sign.unsqueeze(2) * rbm.weight[idx].unsqueeze(0)  # [B, C, H]
        visible_term = (data @ rbm.visible_bias).unsqueeze(1) + sign * rbm.visible_bias[idx]  # b . v'
        free_flip = -visible_term - torch.nn.functional.softplus(x_flip).sum(2)  # F(v') [B, C]
        total += -torch.nn.functional.softplus((free.unsqueeze(1) - free_flip).double()).sum(1)
    return total.mean()


# ---- annealed importance sampling ------------------------------------------------------------


def default_betas(dtype=torch.float64) -> torch.Tensor:
    """The schedule of Salakhutdinov & Murray (2008): 0 to 0.5 in steps of 1e-3, 0.5 to 0.9 in
    1e-4, 0.9 to 1 in 1e-5: 14,501 inverse temperatures."""
    parts = [
        torch.arange(0, 500, dtype=torch.float64) * 1e-3,
        0.5 + torch.arange(0, 4000, dtype=torch.float64) * 1e-4,
        0.9 + torch.arange(0, 10001, dtype=torch.float64) * 1e-5,
    ]
    return torch.cat(parts).to(dtype)


@dataclass
class AISResult:
    """An estimate of ``log Z``. ``log_z_lower``/``log_z_upper``: ``log(Z_hat -/+ 3 sigma)``
    with sigma the standard error of the mean importance weight (Salakhutdinov & Murray's
    bounds; the lower one is -inf when 3 sigma exceeds the estimate). ``ess``: effective sample
    size of the weights. ``log_weights``: one per run, ``log Z_A`` included."""

    log_z: float
    log_z_lower: float
    log_z_upper: float
    ess: float
    log_weights: torch.Tensor
    reverse: bool = False

    def __str__(self) -> str:
        kind = "reverse AIS" if self.reverse else "AIS"
        return (f"{kind} log Z = {self.log_z:.3f} (+-3 sigma: [{self.log_z_lower:.3f}, {self.log_z_upper:.3f}]), "
                f"ESS {self.ess:.1f} of {self.log_weights.numel()}")


def _base_rate(rbm: RBM, data: torch.Tensor | None, eps: float = 1e-3) -> torch.Tensor:
    """Visible biases of the base-rate model A: the data's marginals (log-odds, or means for
    Gaussian units); without data, A is uniform (Bernoulli) or centred on the RBM's biases."""
    if data is None:
        return torch.zeros_like(rbm.visible_bias) if rbm.visible == "bernoulli" else rbm.visible_bias.detach().clone()
    rbm._check_visible(data, "data")
    if rbm.visible == "gaussian":
        return data.mean(0)
    p = data.mean(0).clamp(eps, 1 - eps)
    return torch.log(p) - torch.log1p(-p)


def _base_log_partition(rbm: RBM, base: torch.Tensor) -> float:
    hidden = rbm.n_hidden * math.log(2.0)  # A's hidden units: no bias, no weights
    if rbm.visible == "gaussian":
        return hidden + 0.5 * rbm.n_visible * math.log(2 * math.pi) + float(rbm.visible_log_std.double().sum())
    return hidden + float(torch.nn.functional.softplus(base.double()).sum())


def _sample_base(rbm: RBM, base: torch.Tensor, n: int, generator) -> torch.Tensor:
    like = base.expand(n, -1).contiguous()
    if rbm.visible == "gaussian":
        return ops.normal_reparam(like, (2 * rbm.visible_log_std.detach()).expand_as(like).contiguous(), generator=generator)[0]
    return ops.bernoulli_logits(like, generator=generator)


def _result(log_w: torch.Tensor, log_z_a: float, reverse: bool) -> AISResult:
    m = log_w.numel()
    # forward: log Z_B = log Z_A + log mean w; reverse: w estimates Z_A / Z_B
    sign = -1.0 if reverse else 1.0
    shift = log_w.max()
    w = torch.exp(log_w - shift)
    mean, sem = w.mean(), w.std(unbiased=True) / math.sqrt(m) if m > 1 else torch.tensor(0.0)
    log_mean = float(torch.log(mean) + shift)
    up, down = float(torch.log(mean + 3 * sem) + shift), float(torch.log(torch.clamp(mean - 3 * sem, min=0)) + shift)
    if reverse:
        lower, upper = log_z_a - up, log_z_a - down
    else:
        lower, upper = log_z_a + down, log_z_a + up
    ess = float(w.sum() ** 2 / (w**2).sum())
    return AISResult(log_z_a + sign * log_mean, lower, upper, ess, log_z_a + sign * log_w, reverse)


def _checked_schedule(name: str, rbm: RBM, n_runs: int, betas) -> torch.Tensor:
    if rbm.hidden != "bernoulli":
        raise ValueError(f"{name}: implemented for Bernoulli hidden units")
    if n_runs < 1:
        raise ValueError(f"{name}: n_runs must be positive, got {n_runs}")
    betas = default_betas() if betas is None else torch.as_tensor(betas, dtype=torch.float64)
    if betas.dim() != 1 or betas[0] != 0 or betas[-1] != 1:
        raise ValueError(f"{name}: betas must be a 1-D schedule from 0 to 1")
    return betas


def _anneal(rbm: RBM, start, base, betas, generator, reverse: bool) -> AISResult:
    """All runs from ``start`` through the temperatures ``betas`` in one native call."""
    log_w, _ = torch.ops.dgm_fast.rbm_ais(
        start, rbm.weight, rbm.visible_bias, rbm.hidden_bias, base, betas.tolist(),
        visible_log_std=rbm.visible_log_std, generator=generator,
    )
    return _result(log_w.cpu(), _base_log_partition(rbm, base), reverse=reverse)


@torch.no_grad()
def ais(
    rbm: RBM,
    n_runs: int = 100,
    betas: torch.Tensor | None = None,
    *,
    data: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> AISResult:
    """Annealed importance sampling estimate of ``log Z`` (Salakhutdinov & Murray 2008).

    ``n_runs`` runs anneal together from a base-rate model fitted to ``data``'s marginals to the
    RBM along ``betas`` (default: :func:`default_betas`, 14,501 inverse temperatures), one native
    call in all. In expectation the estimate is below the true ``log Z`` (Jensen), so the
    likelihoods computed with it err on the optimistic side; :func:`reverse_ais` errs the other way.
    """
    betas = _checked_schedule("ais", rbm, n_runs, betas)
    base = _base_rate(rbm, data).to(rbm.weight.dtype)
    return _anneal(rbm, _sample_base(rbm, base, n_runs, generator), base, betas, generator, reverse=False)


@torch.no_grad()
def reverse_ais(
    rbm: RBM,
    n_runs: int = 100,
    betas: torch.Tensor | None = None,
    *,
    data: torch.Tensor | None = None,
    init: torch.Tensor | None = None,
    burn_in: int = 1000,
    generator: torch.Generator | None = None,
) -> AISResult:
    """Reverse AIS (Burda, Grosse & Salakhutdinov 2015): anneal from the RBM back to the base
    rate, starting from samples of the RBM; the weights estimate ``Z_A / Z_B`` without bias, so
    in expectation the ``log Z`` estimate is above the truth and, with :func:`ais`, brackets it.

    The start ``init`` (``[n_runs, n_visible]``) should be exact samples of the RBM; by default
    they are the end of ``burn_in`` Gibbs sweeps from the base-rate model, which is exact only in
    the limit (the bracket is then as good as the chain's mixing).
    """
    betas = _checked_schedule("reverse_ais", rbm, n_runs, betas)
    base = _base_rate(rbm, data).to(rbm.weight.dtype)
    if init is None:
        init = rbm.gibbs(_sample_base(rbm, base, n_runs, generator), burn_in, generator=generator)
    return _anneal(rbm, init, base, betas.flip(0), generator, reverse=True)


@torch.no_grad()
def reconstruction_error(rbm: RBM, data: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel of ``E[v | E[h | data]]`` against ``data``."""
    return ((rbm.visible_probs(rbm.hidden_probs(data)) - data) ** 2).mean()
