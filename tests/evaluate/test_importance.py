"""Importance-sampled log p(x) against a closed form, and its chunking."""

import math

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
