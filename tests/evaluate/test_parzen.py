"""The Parzen-window evaluation: its law in a case with a closed form, the bandwidth selection,
and bad input."""

import math

import pytest
import torch

from dgm_fast.evaluate import parzen_log_likelihood, select_parzen_sigma


def test_kernel_density_of_gaussian_samples_is_the_widened_gaussian():
    # Samples s ~ N(0, I_2): the kernel density's mean is N(0, (1 + sigma^2) I) exactly, and with
    # N = 40,000 samples its log at points near the mode is that log-density within 0.02 nats
    # (the relative standard deviation of the density estimate there is below 0.5 %).
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(40000, 2, generator=g, dtype=torch.float64)
    x = 0.5 * torch.randn(200, 2, generator=g, dtype=torch.float64)
    sigma = 0.5
    var = 1 + sigma**2
    want = -(x**2).sum(1) / (2 * var) - math.log(2 * math.pi * var)
    got = parzen_log_likelihood(x, samples, sigma)
    assert (got - want).abs().max().item() < 0.02
    assert abs((got - want).mean().item()) < 0.005


def test_selection_picks_the_best_candidate():
    g = torch.Generator().manual_seed(1)
    samples, validation = torch.randn(3000, 3, generator=g), torch.randn(500, 3, generator=g)
    sigmas = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6]
    chosen = select_parzen_sigma(validation, samples, sigmas)
    means = [parzen_log_likelihood(validation, samples, s).double().mean().item() for s in sigmas]
    # (float32: the one-pass product for all widths rounds otherwise than one product per width)
    assert chosen.sigmas == sigmas and chosen.mean_log_likelihoods == pytest.approx(means, rel=1e-5)
    assert chosen.sigma == sigmas[max(range(len(sigmas)), key=means.__getitem__)]
    # too narrow a kernel scores far worse than the choice, too wide a little worse
    assert chosen.sigma not in (sigmas[0], sigmas[-1])


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: parzen_log_likelihood(torch.zeros(0, 3), torch.zeros(4, 3), 1.0), ValueError, "x is empty"),
        (lambda: parzen_log_likelihood(torch.zeros(2, 3), torch.zeros(0, 3), 1.0), ValueError, "samples is empty"),
        (lambda: parzen_log_likelihood(torch.zeros(2, 3), torch.zeros(4, 2), 1.0), ValueError, "same number of columns"),
        (lambda: parzen_log_likelihood(torch.zeros(2, 3), torch.zeros(4, 3), 0.0), ValueError, "positive and finite"),
        (lambda: parzen_log_likelihood(torch.full((2, 3), float("nan")), torch.zeros(4, 3), 1.0), ValueError,
         "x contains NaN or Inf"),
        (lambda: parzen_log_likelihood(torch.zeros(2, 3), torch.full((4, 3), float("inf")), 1.0), ValueError,
         "samples contains NaN or Inf"),
        (lambda: parzen_log_likelihood([[0.0]], torch.zeros(4, 1), 1.0), TypeError, "x must be a Tensor"),
        (lambda: select_parzen_sigma(torch.zeros(2, 3), torch.zeros(4, 3), []), ValueError, "at least one candidate"),
        (lambda: select_parzen_sigma(torch.zeros(2, 3), torch.zeros(4, 3), [0.5, -1.0]), ValueError,
         "positive and finite"),
    ],
)
def test_bad_input_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
