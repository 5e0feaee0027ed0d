"""The unified view's exact pieces against their closed forms: the two KL fits, Lemma 1, EM and
data augmentation against the exact posterior; and the 2-D mode-coverage measure."""

import math

import pytest
import torch

from dgm_fast import unified_view as uv
from dgm_fast.data import grid_of_gaussians, ring_of_gaussians
from dgm_fast.evaluate import mode_coverage

WEIGHTS, MEANS, STDS = [0.3, 0.7], [-2.0, 2.0], [0.5, 0.5]


def test_forward_kl_is_moment_matching():
    fit = uv.fit_gaussian_by_kl(WEIGHTS, MEANS, STDS, "forward")
    mean = 0.3 * -2 + 0.7 * 2
    var = 0.3 * (0.25 + 4) + 0.7 * (0.25 + 4) - mean**2
    assert fit.mean == pytest.approx(mean, abs=1e-12) and fit.std == pytest.approx(math.sqrt(var), abs=1e-12)
    # and it is the minimum: moving the mean or the width raises KL(p || q), by quadrature
    grid = torch.linspace(-10, 10, 40001, dtype=torch.float64)
    log_p = uv.mixture_log_density(grid, WEIGHTS, MEANS, STDS)

    def forward_kl(m, s):
        log_q = -0.5 * ((grid - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
        return torch.trapezoid(log_p.exp() * (log_p - log_q), grid).item()

    assert fit.divergence == pytest.approx(forward_kl(fit.mean, fit.std), abs=1e-9)
    for dm, ds in [(0.05, 0), (-0.05, 0), (0, 0.05), (0, -0.05)]:
        assert forward_kl(fit.mean + dm, fit.std + ds) > fit.divergence


@pytest.mark.parametrize("init,mode", [((1.0, 1.0), 1), ((-1.0, 1.0), 0)])
def test_reverse_kl_seeks_the_mode_it_starts_near(init, mode):
    # well-separated modes: a local minimum near each component, KL(q || p) about -log w_k
    fit = uv.fit_gaussian_by_kl(WEIGHTS, MEANS, STDS, "reverse", init=init)
    assert fit.mean == pytest.approx(MEANS[mode], abs=2e-3) and fit.std == pytest.approx(STDS[mode], abs=2e-3)
    assert fit.divergence == pytest.approx(-math.log(WEIGHTS[mode]), abs=1e-3)


def test_lemma1_holds_at_theta0_and_only_there():
    g = torch.Generator().manual_seed(0)
    for k in (2, 5, 12):
        p_data = torch.softmax(torch.randn(k, generator=g, dtype=torch.float64), 0)
        theta0 = torch.randn(k, generator=g, dtype=torch.float64)
        lhs, rhs = uv.lemma1_gradients(p_data, theta0)
        assert lhs.abs().max() > 1e-3  # not trivially zero
        torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-15)
        moved = theta0 + torch.randn(k, generator=g, dtype=torch.float64)  # (a constant shift is no move)
        lhs, rhs = uv.lemma1_gradients(p_data, theta0, theta=moved)
        assert (lhs - rhs).abs().max() > 1e-3


def _mixture_data():
    g = torch.Generator().manual_seed(1)
    z = torch.rand(200, generator=g) < 0.3
    return torch.where(z, torch.randn(200, generator=g, dtype=torch.float64) + 1,
                       torch.randn(200, generator=g, dtype=torch.float64) - 1)


def test_em_converges_to_the_exact_posterior_mode():
    x = _mixture_data()
    grid, density = uv.mixture_weight_posterior(x)
    spacing = (grid[1] - grid[0]).item()
    path = uv.em_mixture_weight(x, init=0.9)
    assert abs(path[-1] - grid[density.argmax()].item()) <= spacing
    # EM's ascent: the posterior density never decreases along its path
    at = [density[(torch.tensor(p) - grid).abs().argmin()].item() for p in path[:30]]
    assert all(b >= a - 1e-9 for a, b in zip(at, at[1:]))


def test_data_augmentation_draws_from_the_exact_posterior():
    # 1,000 independent chains after 100 sweeps (the chain mixes in a few): mean and standard
    # deviation of the draws within 4 standard errors of the exact posterior's
    x = _mixture_data()
    grid, density = uv.mixture_weight_posterior(x)
    mean = torch.trapezoid(grid * density, grid).item()
    std = torch.trapezoid((grid - mean) ** 2 * density, grid).sqrt().item()
    draws = uv.data_augmentation_mixture_weight(x, chains=1000, steps=100, init=0.9)[-1]
    assert abs(draws.mean().item() - mean) < 4 * std / 1000**0.5
    assert abs(draws.std().item() - std) < 4 * std / (2 * 999) ** 0.5


def test_mode_coverage():
    samples, centres = ring_of_gaussians(2000, generator=torch.Generator().manual_seed(2))
    full = mode_coverage(samples, centres, 0.02)
    assert full.captured == 8 and full.good_share > 0.98 and full.counts.sum() > 1900
    collapsed = mode_coverage(samples[(samples[:, 0] > 1.5)], centres, 0.02)  # one mode's samples (angle 0)
    assert collapsed.captured == 1
    spread = mode_coverage(torch.randn(2000, 2, generator=torch.Generator().manual_seed(3)) * 2, centres, 0.02)
    assert spread.good_share < 0.05
    grid_samples, grid_centres = grid_of_gaussians(5000, generator=torch.Generator().manual_seed(4))
    assert grid_centres.shape == (25, 2) and mode_coverage(grid_samples, grid_centres, 0.05).captured == 25
    with pytest.raises(ValueError, match="same D"):
        mode_coverage(samples, torch.zeros(3, 3), 0.02)
    with pytest.raises(ValueError, match="NaN or Inf"):
        mode_coverage(torch.full((2, 2), float("nan")), centres, 0.02)
