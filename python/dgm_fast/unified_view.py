"""The unified view of deep generative models, in computations that can be checked exactly (Hu,
Yang, Salakhutdinov & Xing 2017, "On unifying deep generative models"; the seed lecture).

A VAE fits its generator by minimising KL(p_data || p_model) (through a bound): a mode-covering
fit. A GAN's generator, read as variational EM with the roles of inference and generation swapped,
minimises a KL in the other direction, KL(p_model || q^r): a mode-seeking fit. Three exact
pieces, each used by ``dgm-fast demo unified-view`` and held to its closed form by the tests:

* :func:`fit_gaussian_by_kl`: one Gaussian fitted to a 1-D mixture by minimising KL(p || q) (the
  closed form: moment matching) and KL(q || p) (numerically: it settles on one mode);
* :func:`lemma1_gradients`: Lemma 1 of Hu et al. on a discrete problem where every term is
  computable: the generator's gradient of ``-E log q^r(y | x)`` equals that of
  ``E_p(y) KL(p_theta(x | y) || q^r(x | y)) - JSD``;
* :func:`em_mixture_weight` and :func:`data_augmentation_mixture_weight`: EM and its stochastic
  twin, the data-augmentation algorithm (two-block Gibbs sampling: impute the latent assignments,
  then draw the parameter; Tanner & Wong 1987), for the weight of a two-component mixture, whose
  exact posterior is one-dimensional (:func:`mixture_weight_posterior`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["GaussianFit", "data_augmentation_mixture_weight", "em_mixture_weight", "fit_gaussian_by_kl",
           "lemma1_gradients", "mixture_log_density", "mixture_weight_posterior"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _normal_log_density(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - torch.log(torch.as_tensor(std, dtype=x.dtype)) - _LOG_SQRT_2PI


def mixture_log_density(x: torch.Tensor, weights, means, stds) -> torch.Tensor:
    """``log sum_k w_k N(x | m_k, s_k^2)`` at the points ``x`` (1-D)."""
    w, m, s = (torch.as_tensor(v, dtype=x.dtype) for v in (weights, means, stds))
    return torch.logsumexp(torch.log(w) + _normal_log_density(x.unsqueeze(-1), m, s), dim=-1)


@dataclass
class GaussianFit:
    """A Gaussian ``N(mean, std^2)`` and the divergence it attains (nats)."""

    mean: float
    std: float
    divergence: float


def _grid(means, stds, points: int = 40001) -> torch.Tensor:
    lo = min(m - 12 * s for m, s in zip(means, stds))
    hi = max(m + 12 * s for m, s in zip(means, stds))
    return torch.linspace(lo, hi, points, dtype=torch.float64)


def _kl_on_grid(log_a: torch.Tensor, log_b: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``KL(a || b) = int a (log a - log b)`` by the trapezoidal rule on ``grid``."""
    integrand = log_a.exp() * (log_a - log_b)
    return torch.trapezoid(integrand, grid)


def fit_gaussian_by_kl(weights, means, stds, direction: str, *, init: tuple[float, float] | None = None,
                       steps: int = 200) -> GaussianFit:
    """The Gaussian q closest to the mixture p in KL, by ``direction``:

    * ``"forward"``, KL(p || q) (what maximum likelihood and a VAE minimise): the closed form,
      matching p's mean and variance, ``mean = sum w m``, ``var = sum w (s^2 + m^2) - mean^2``;
      q covers every mode and puts mass between them;
    * ``"reverse"``, KL(q || p) (what a GAN's generator minimises in the unified view):
      minimised numerically (L-BFGS on the mean and log std; ``E_q log p`` by 160-point
      Gauss-Hermite quadrature, q's entropy in closed form) from
      ``init = (mean, std)``; q settles on a mode (a local minimum per mode when they are well
      separated, near ``N(m_k, s_k^2)`` with divergence ``-log w_k``), and which one depends on
      the start.

    ``divergence`` is the attained divergence in that direction (the forward one by the
    trapezoidal rule on a grid spanning p)."""
    if direction not in ("forward", "reverse"):
        raise ValueError(f"fit_gaussian_by_kl: direction must be 'forward' or 'reverse', got {direction!r}")
    w = torch.tensor(weights, dtype=torch.float64)
    m = torch.tensor(means, dtype=torch.float64)
    s = torch.tensor(stds, dtype=torch.float64)
    if not torch.isclose(w.sum(), torch.tensor(1.0, dtype=torch.float64)) or (w <= 0).any() or (s <= 0).any():
        raise ValueError("fit_gaussian_by_kl: weights must be positive and sum to 1, stds positive")
    grid = _grid(means, stds)
    log_p = mixture_log_density(grid, w, m, s)
    if direction == "forward":
        mean = (w * m).sum()
        std = ((w * (s**2 + m**2)).sum() - mean**2).sqrt()
        return GaussianFit(mean.item(), std.item(), _kl_on_grid(log_p, _normal_log_density(grid, mean, std), grid).item())
    mean0, std0 = init if init is not None else (float(m[w.argmax()]), float(s[w.argmax()]))
    # E_q[log p] by Gauss-Hermite quadrature in q's own coordinates, H(q) in closed form: the
    # nodes move with q, so no step of the optimiser can carry q off a fixed grid.
    nodes, node_weights = (torch.from_numpy(a) for a in np.polynomial.hermite.hermgauss(160))
    node_weights = node_weights / math.sqrt(math.pi)

    def reverse_kl(mean, log_std):
        e_log_p = (node_weights * mixture_log_density(mean + math.sqrt(2) * log_std.exp() * nodes, w, m, s)).sum()
        return -(0.5 * math.log(2 * math.pi * math.e) + log_std) - e_log_p

    params = torch.tensor([mean0, math.log(std0)], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], max_iter=steps, tolerance_grad=1e-12, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = reverse_kl(params[0], params[1])
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return GaussianFit(params[0].item(), params[1].exp().item(), reverse_kl(params[0], params[1]).item())


def lemma1_gradients(p_data: torch.Tensor, theta0: torch.Tensor, theta: torch.Tensor | None = None):
    """Both sides of Lemma 1 (Hu et al. 2017) for a generator ``p_theta(x | y = 0) =
    softmax(theta)`` over K states and data ``p_data = p(x | y = 1)``, ``p(y)`` uniform, with the
    discriminator optimal for ``theta0``: ``q(y = 1 | x) = p_data / (p_data + p_theta0)``, and
    ``q^r(y | x) = q(1 - y | x)`` (the labels swapped).

    Returns ``(lhs, rhs)``, the gradients at ``theta`` (default ``theta0``) of

    * ``-E_{p(y)} E_{p_theta(x | y)} log q^r(y | x)`` (the GAN generator's label-swapped loss), and
    * ``E_{p(y)} KL(p_theta(x | y) || q^r(x | y)) - JSD(p_theta(x | y = 0) || p_theta(x | y = 1))``,
      with ``q^r(x | y) ∝ q^r(y | x) p_theta0(x)`` and ``p_theta0(x) = E_{p(y)} p_theta0(x | y)``.

    The lemma says they are equal at ``theta = theta0`` (not elsewhere). float64."""
    p_data = p_data.double()
    theta0 = theta0.detach().double()
    if p_data.dim() != 1 or theta0.shape != p_data.shape or (p_data <= 0).any():
        raise ValueError("lemma1_gradients: p_data must be a positive [K] distribution and theta0 [K]")
    p_data = p_data / p_data.sum()

    def kl(a, b):
        return (a * (a / b).log()).sum()

    p_g0 = torch.softmax(theta0, 0)
    d_star = p_data / (p_data + p_g0)  # q(y = 1 | x), optimal for theta0
    qr_fake, qr_real = d_star, 1 - d_star  # q^r(y = 0 | x), q^r(y = 1 | x)
    marginal = 0.5 * (p_g0 + p_data)  # p_theta0(x)
    qr_x_fake = qr_fake * marginal / (qr_fake * marginal).sum()  # q^r(x | y = 0)
    qr_x_real = qr_real * marginal / (qr_real * marginal).sum()  # q^r(x | y = 1)

    at = (theta0 if theta is None else theta.detach().double()).clone().requires_grad_()
    p_g = torch.softmax(at, 0)
    lhs = -(0.5 * (p_g * qr_fake.log()).sum() + 0.5 * (p_data * qr_real.log()).sum())
    (lhs_grad,) = torch.autograd.grad(lhs, at)
    at = at.detach().clone().requires_grad_()
    p_g = torch.softmax(at, 0)
    mix = 0.5 * (p_g + p_data)
    jsd = 0.5 * kl(p_g, mix) + 0.5 * kl(p_data, mix)
    rhs = 0.5 * kl(p_g, qr_x_fake) + 0.5 * kl(p_data, qr_x_real) - jsd
    (rhs_grad,) = torch.autograd.grad(rhs, at)
    return lhs_grad, rhs_grad


def _component_densities(x: torch.Tensor, means, std: float) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.double()
    return _normal_log_density(x, means[0], std).exp(), _normal_log_density(x, means[1], std).exp()


def mixture_weight_posterior(x: torch.Tensor, means=(-1.0, 1.0), std: float = 1.0, prior=(2.0, 2.0),
                             points: int = 100001) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact posterior of the weight ``pi`` of component 1 in
    ``x_i ~ pi N(means[1], std^2) + (1 - pi) N(means[0], std^2)`` with ``pi ~ Beta(prior)``: its
    density on a grid of ``points`` values in (0, 1), ``(grid, density)``, normalised by the
    trapezoidal rule."""
    grid = torch.linspace(0, 1, points, dtype=torch.float64)[1:-1]
    n0, n1 = _component_densities(x, means, std)
    a, b = prior
    log_post = ((a - 1) * grid.log() + (b - 1) * torch.log1p(-grid)
                + torch.log(grid.unsqueeze(1) * n1 + (1 - grid.unsqueeze(1)) * n0).sum(1))
    density = (log_post - log_post.max()).exp()
    return grid, density / torch.trapezoid(density, grid)


def em_mixture_weight(x: torch.Tensor, means=(-1.0, 1.0), std: float = 1.0, prior=(2.0, 2.0), *,
                      init: float = 0.5, steps: int = 200) -> list[float]:
    """EM for the posterior mode of ``pi``: the E-step takes each point's responsibility
    ``r_i = pi N_1 / (pi N_1 + (1 - pi) N_0)``, the M-step the mode of the Beta posterior given
    them, ``pi = (sum r + a - 1) / (n + a + b - 2)``. Returns ``pi`` after each step (the first
    entry is ``init``)."""
    n0, n1 = _component_densities(x, means, std)
    a, b = prior
    pi, path = init, [init]
    for _ in range(steps):
        r = pi * n1 / (pi * n1 + (1 - pi) * n0)
        pi = ((r.sum() + a - 1) / (len(x) + a + b - 2)).item()
        path.append(pi)
    return path


def data_augmentation_mixture_weight(x: torch.Tensor, means=(-1.0, 1.0), std: float = 1.0, prior=(2.0, 2.0), *,
                                     chains: int = 1000, steps: int = 100, init: float = 0.5,
                                     seed: int = 0) -> torch.Tensor:
    """The data-augmentation algorithm (two-block Gibbs sampling) for ``pi``: the imputation step
    draws each point's component ``z_i ~ Bernoulli(r_i)`` (where EM takes its expectation
    ``r_i``), the posterior step draws ``pi ~ Beta(a + sum z, b + n - sum z)`` (where EM takes the
    mode). Runs ``chains`` independent chains from ``init`` for ``steps`` sweeps and returns each
    chain's ``pi`` after every sweep, ``[steps, chains]``: after burn-in, draws from the exact
    posterior. Seeded by ``seed`` (torch's generator, forked: the caller's is left alone)."""
    n0, n1 = _component_densities(x, means, std)
    a, b = prior
    out = torch.empty(steps, chains, dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pi = torch.full((chains, 1), float(init), dtype=torch.float64)
        for step in range(steps):
            r = pi * n1 / (pi * n1 + (1 - pi) * n0)  # [chains, n]
            ones = torch.bernoulli(r).sum(1)
            pi = torch.distributions.Beta(a + ones, b + len(x) - ones).sample().unsqueeze(1)
            out[step] = pi.squeeze(1)
    return out
