"""VAE: the reparameterised ELBO gradient against the exact one of a linear-Gaussian model, the
IWAE bounds' order, the importance estimate against the exact log p(x), training, files and bad
input."""

import math

import pytest
import torch

from dgm_fast import VAE
from dgm_fast.evaluate import importance_log_likelihood
from dgm_fast.models.vae import fit_vae

D, Z = 5, 2


def linear_gaussian(seed=0):
    """A VAE with no hidden layers and a Gaussian likelihood: p(x | z) = N(W z + b, I), q(z | x)
    = N(A x + c, diag exp(G x + e)), everything linear, so the ELBO and log p(x) are closed-form."""
    g = torch.Generator().manual_seed(seed)
    vae = VAE([D, Z], [[]], likelihood="gaussian", generator=g, dtype=torch.float64)
    with torch.no_grad():
        for p in vae.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return vae


def closed_form_elbo(vae, x):
    """E_q[log p(x | z)] - KL(q || p) for the linear-Gaussian VAE, in plain PyTorch."""
    enc, dec = vae.encoders[0][0], vae.decoders[0][0]
    mu, log_var = (x @ enc.weight.t() + enc.bias).chunk(2, dim=-1)
    var = log_var.exp()
    W, b = dec.weight, dec.bias  # [D, Z], [D]
    resid = x - mu @ W.t() - b
    expected_ll = -0.5 * (resid**2).sum(1) - 0.5 * (var @ (W**2).sum(0)) - 0.5 * D * math.log(2 * math.pi)
    kl = 0.5 * (mu**2 + var - 1 - log_var).sum(1)
    return expected_ll - kl


def exact_log_marginal(vae, x):
    dec = vae.decoders[0][0]
    cov = dec.weight @ dec.weight.t() + torch.eye(D, dtype=torch.float64)
    return torch.distributions.MultivariateNormal(dec.bias, cov).log_prob(x)


X = torch.randn(4, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_elbo_matches_the_closed_form_in_expectation():
    vae = linear_gaussian()
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        samples = torch.stack([vae.elbo(X, generator=gen) for _ in range(4000)])
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(4000)
    exact = closed_form_elbo(vae, X)
    assert torch.all((mean - exact).abs() < 5 * se + 1e-9)
    # the k-sample average is the same estimator with k times the samples
    with torch.no_grad():
        mean20 = torch.stack([vae.elbo(X, 20, generator=gen) for _ in range(200)]).mean(0)
    assert torch.all((mean20 - exact).abs() < 5 * se + 1e-9)


def test_reparameterized_gradient_is_unbiased():
    # 20 batches of 500 samples of the gradient of the one-sample ELBO: the mean must match the
    # gradient of the closed form within 5 standard errors (+1e-4).
    vae = linear_gaussian(3)
    gen = torch.Generator().manual_seed(4)
    params = list(vae.parameters())
    exact = torch.cat([g.reshape(-1) for g in torch.autograd.grad(closed_form_elbo(vae, X).mean(), params)])
    rows = X.repeat(500, 1)
    gs = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(vae.elbo(rows, generator=gen).mean(), params)])
                      for _ in range(20)])
    mean, se = gs.mean(0), gs.std(0) / math.sqrt(20)
    assert exact.abs().max() > 0.1
    assert torch.all((mean - exact).abs() <= 5 * se + 1e-4), ((mean - exact).abs() / se).max()


def test_iwae_bounds_rise_with_k_towards_log_p():
    vae = linear_gaussian(5)
    gen = torch.Generator().manual_seed(6)
    exact = exact_log_marginal(vae, X).mean().item()
    means = {}
    with torch.no_grad():
        for k in (1, 5, 50):
            values = torch.stack([vae.iwae_bound(X, k, generator=gen).mean() for _ in range(400)])
            means[k] = (values.mean().item(), values.std().item() / 20)
    assert means[1][0] < means[5][0] - 3 * means[5][1] and means[5][0] < means[50][0] - 3 * means[50][1]
    assert means[50][0] < exact
    assert abs(means[1][0] - closed_form_elbo(vae, X).mean().item()) < 5 * means[1][1]


def test_importance_estimate_converges_to_the_exact_log_p():
    # The proposal: q with the exact posterior's mean and marginal variances (it lacks only the
    # posterior's correlation). Measured error at N = 10^5: below 0.01 nats; require < 0.03.
    vae = linear_gaussian(7)
    enc, dec = vae.encoders[0][0], vae.decoders[0][0]
    with torch.no_grad():
        W, b = dec.weight, dec.bias
        cov = torch.linalg.inv(torch.eye(Z, dtype=torch.float64) + W.t() @ W)
        enc.weight.zero_()
        enc.weight[:Z] = cov @ W.t()
        enc.bias[:Z] = -(cov @ W.t() @ b)
        enc.bias[Z:] = torch.log(torch.diagonal(cov))
    gen = torch.Generator().manual_seed(8)
    with torch.no_grad():
        estimate = importance_log_likelihood(lambda x, k: vae.log_weights(x, k, generator=gen), X, 100_000, 10_000)
    assert (estimate - exact_log_marginal(vae, X)).abs().max() < 0.03


def binary_digits(n=300):
    from dgm_fast.data import load_digits
    images, _ = load_digits()
    return (torch.rand(images[:n].shape, generator=torch.Generator().manual_seed(0)) < images[:n]).float()


@pytest.mark.parametrize("layers,objective,k", [([64, 8], "elbo", 1), ([64, 8], "iwae", 5), ([64, 12, 6], "iwae", 3)])
def test_training_raises_the_bound(layers, objective, k):
    data = binary_digits()
    vae = VAE(layers, [[32]] * (len(layers) - 1), generator=torch.Generator().manual_seed(0))
    history = fit_vae(vae, data, objective=objective, k=k, epochs=6, generator=torch.Generator().manual_seed(1),
                      progress=False)
    assert history[-1]["bound"] > history[0]["bound"] + 2
    s = vae.sample(5, generator=torch.Generator().manual_seed(2))
    assert s.shape == (5, 64) and set(s.unique().tolist()) <= {0.0, 1.0}
    m = vae.sample(5, means=True)
    assert ((m >= 0) & (m <= 1)).all()


def test_resume_is_bit_exact(tmp_path):
    data = binary_digits(100)

    def run(epochs, path):
        vae = VAE([64, 6], [[16]], generator=torch.Generator().manual_seed(0))
        fit_vae(vae, data, objective="iwae", k=4, epochs=epochs, generator=torch.Generator().manual_seed(1),
                checkpoint=path, progress=False)
        return vae

    straight = run(3, tmp_path / "a.pt")
    run(1, tmp_path / "b.pt")
    resumed = run(3, tmp_path / "b.pt")
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    loaded = VAE.load(tmp_path / "a.pt")
    assert loaded.config() == straight.config()
    for a, b in zip(straight.parameters(), loaded.parameters()):
        assert torch.equal(a, b)


def test_bad_input():
    vae = VAE([6, 2], [[4]])
    with pytest.raises(TypeError, match="has no closed form"):
        vae.log_prob(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        vae.iwae_bound(torch.zeros(2, 6), 0)
    with pytest.raises(ValueError, match=r"x must be \[batch, 6\]"):
        vae.elbo(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="binary values"):
        fit_vae(vae, torch.full((4, 6), 0.5), progress=False)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        fit_vae(vae, torch.zeros(4, 6), k=0, progress=False)
    with pytest.raises(ValueError, match="objective must be one of"):
        fit_vae(vae, torch.zeros(4, 6), objective="kl", progress=False)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VAE([6, 2], likelihood="poisson")
    with pytest.raises(ValueError, match="hidden_sizes must list"):
        VAE([6, 3, 2], [[4]])
    with pytest.raises(ValueError, match="layer sizes must be positive"):
        VAE([6, 0])
    with torch.no_grad():
        vae.encoders[0][0].weight[0, 0] = math.nan
    with pytest.raises(ValueError, match=r"encoders.0.0.weight holds NaN"):
        fit_vae(vae, torch.zeros(4, 6), progress=False)
