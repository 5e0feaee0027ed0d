"""Importance-sampled log p(x) against a closed form, and its chunking."""

import math

import pytest
import torch

from dgm_fast.evaluate import importance_log_likelihood



def test_importance_log_likelihood_linear_gaussian():
    # z ~ N(0, I_2), x | z ~ N(W z + b, s^2 I_3): p(x) = N(b, W W^T + s^2 I) in closed form.
    torch.manual_seed(0)
    W = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, -0.6]], dtype=torch.float64)
    b = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    s = 0.8
    x = torch.randn(6, 3, dtype=torch.float64)
    cov = W @ W.T + s**2 * torch.eye(3, dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(b, cov).log_prob(x)
    prior = torch.distributions.Normal(torch.zeros(2, dtype=torch.float64), 1.5)  # a broad proposal
    gen = torch.Generator().manual_seed(1)

    def log_weight_fn(x, k):
        z = 1.5 * torch.randn(k, x.shape[0], 2, generator=gen, dtype=torch.float64)
        log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_px_z = torch.distributions.Normal(z @ W.T + b, s).log_prob(x).sum(-1)
        return log_pz + log_px_z - prior.log_prob(z).sum(-1)  # [k, B]

    est = importance_log_likelihood(log_weight_fn, x, n_samples=20000, chunk=3000)
    assert est.shape == (6,) and est.dtype == torch.float64
    assert (est - exact).abs().max() < 0.02  # nats


def test_importance_log_likelihood_chunks_combine_exactly():
    lw = torch.randn(1000, 4, dtype=torch.float64) * 20

    def fixed(it):
        def fn(x, k):
            return next(it)[:k]
        return fn

    whole = importance_log_likelihood(lambda x, k: lw, None, n_samples=1000, chunk=1000)
    parts = iter(lw.split(300))
    chunked = importance_log_likelihood(fixed(parts), None, n_samples=1000, chunk=300)
    torch.testing.assert_close(chunked, whole, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(whole, torch.logsumexp(lw, 0) - math.log(1000))


def test_importance_log_prob_of_a_helmholtz_machine_against_enumeration():
    # The estimate with its standard error: within 5 standard errors of the exact log p(x), and
    # the same number as importance_log_likelihood with the same draws.
    from dgm_fast import HelmholtzMachine
    from dgm_fast.evaluate import importance_log_prob

    g = torch.Generator().manual_seed(0)
    hm = HelmholtzMachine([6, 4, 3], init_std=1.0, generator=g, dtype=torch.float64)
    x = (torch.rand(9, 6, generator=g) < 0.5).double()
    result = importance_log_prob(hm, x, 20_000, 3_000, batch_size=4, generator=torch.Generator().manual_seed(1))
    exact = hm.log_prob(x)
    assert result.log_prob.shape == (9,) and result.n_samples == 20_000
    assert torch.all((result.log_prob - exact).abs() < 5 * result.std_error + 1e-6)
    assert torch.all((result.ess > 1) & (result.ess <= 20_000))
    gen = torch.Generator().manual_seed(1)
    same = torch.cat([importance_log_likelihood(lambda v, k: hm.log_weights(v, k, generator=gen), rows, 20_000, 3_000)
                      for rows in x.split(4)])
    torch.testing.assert_close(result.log_prob, same, rtol=0, atol=1e-9)


def test_importance_log_prob_bad_input():
    from dgm_fast import SBN, VAE
    from dgm_fast.evaluate import importance_log_prob

    with pytest.raises(TypeError, match="an SBN alone has no inference model"):
        importance_log_prob(SBN([4, 2]), torch.zeros(2, 4))
    vae = VAE([4, 2], [[3]])
    with pytest.raises(ValueError, match="x is empty"):
        importance_log_prob(vae, torch.zeros(0, 4))
    with pytest.raises(ValueError, match="n_samples must be at least 1"):
        importance_log_prob(vae, torch.zeros(2, 4), 0)
