"""The Helmholtz machine's learning algorithms against exact gradients by enumeration (written in
plain PyTorch, independent of the model's code): NVIL's and the score-function estimator's
unbiasedness, the bias of the sleep phase and of RWS at finite K; then training through fit."""

import math

import pytest
import torch
from torch.nn import functional as F

from dgm_fast import HelmholtzMachine
from dgm_fast.models.helmholtz import NVILBaseline, fit_helmholtz, nvil_loss, rws_loss, wake_sleep_loss

SIZES = [4, 3, 2]


def states(n):
    codes = torch.arange(1 << n)
    return ((codes.unsqueeze(1) >> torch.arange(n)) & 1).double()


def random_hm(seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    hm = HelmholtzMachine(SIZES, init_std=scale, generator=g, dtype=torch.float64)
    with torch.no_grad():
        for p in hm.parameters():
            if p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return hm


def log_bern(s, logits):
    return (s * F.logsigmoid(logits) - (s - 1) * F.logsigmoid(-logits)).sum(-1)


def all_hidden():
    h1, h2 = states(SIZES[1]), states(SIZES[2])
    grid = torch.cartesian_prod(torch.arange(h1.shape[0]), torch.arange(h2.shape[0]))
    return h1[grid[:, 0]], h2[grid[:, 1]]  # [S, 3], [S, 2]


def exact_terms(hm, x):
    """log p(x, h) and log q(h | x) for every row of x and every joint hidden state: [B, S]."""
    (w0, w1), (b0, b1, b2) = hm.generative.weights, hm.generative.biases
    (r0, r1), (c1, c2) = hm.recognition_weights, hm.recognition_biases
    h1, h2 = all_hidden()
    X, H1, H2 = x[:, None, :], h1[None], h2[None]
    log_p = log_bern(H2, b2.expand_as(H2)) + log_bern(H1, H2 @ w1.t() + b1) + log_bern(X, H1 @ w0.t() + b0)
    log_q = log_bern(H1, X @ r0 + c1) + log_bern(H2, H1 @ r1 + c2)
    return log_p, log_q


def exact_elbo(hm, x):
    log_p, log_q = exact_terms(hm, x)
    return (log_q.exp() * (log_p - log_q)).sum(1)  # [B]


def exact_log_marginal(hm, x):
    log_p, _ = exact_terms(hm, x)
    return torch.logsumexp(log_p, 1)


def grads(params, objective):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(objective, params)])


def monte_carlo(params, loss_fn, batches=20):
    """The mean and standard error over ``batches`` independent batches of the gradient of
    ``loss_fn()`` with respect to ``params``."""
    gs = torch.stack([grads(params, loss_fn()) for _ in range(batches)])
    return gs.mean(0), gs.std(0) / math.sqrt(batches)


X = states(4)[[1, 6, 11]]
REPEAT = 2000  # rows per batch: each x repeated


def data():
    return X.repeat_interleave(REPEAT, 0)


def test_the_enumeration_is_a_distribution():
    hm = random_hm()
    log_p, log_q = exact_terms(hm, states(4))
    assert abs(torch.logsumexp(log_p.reshape(-1), 0).item()) < 1e-12
    torch.testing.assert_close(torch.logsumexp(log_q, 1), torch.zeros(16, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(exact_log_marginal(hm, states(4)), hm.log_prob(states(4)), atol=1e-12, rtol=0)


@pytest.mark.parametrize("baseline_kind", ["none", "input-dependent"])
def test_nvil_gradient_is_unbiased_for_the_elbo(baseline_kind):
    # With the running mean and variance normalisation off, NVIL's update is the score-function
    # estimator of the ELBO's gradient (minus a baseline that does not depend on h). Its mean over
    # 20 batches of 6,000 rows must match the exact gradient within 5 standard errors (+1e-3).
    hm = random_hm(1)
    baseline = NVILBaseline(SIZES, hidden=8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    if baseline_kind == "none":  # the plain score-function estimator (REINFORCE)
        with torch.no_grad():
            for p in baseline.parameters():
                p.zero_()
    gen = torch.Generator().manual_seed(3)
    params = list(hm.parameters())
    exact = grads(params, -exact_elbo(hm, X).mean())
    mean, se = monte_carlo(params, lambda: nvil_loss(hm, data(), baseline, center=False, normalize=False,
                                                     generator=gen)[0])
    assert exact.abs().max() > 0.05
    assert torch.all((mean - exact).abs() <= 5 * se + 1e-3), ((mean - exact).abs() / se).max()


def test_nvil_baseline_reduces_the_variance():
    hm = random_hm(1)
    baseline = NVILBaseline(SIZES, hidden=8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    opt = torch.optim.Adam(baseline.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(4)
    q_params = hm.recognition_parameters()

    def spread():
        return monte_carlo(q_params, lambda: nvil_loss(hm, X.repeat_interleave(20, 0), baseline, center=False,
                                                       normalize=False, generator=gen)[0], batches=200)[1]

    before = spread()
    for _ in range(300):  # train the baseline alone
        opt.zero_grad()
        nvil_loss(hm, data(), baseline, center=False, normalize=False, generator=gen)[0].backward()
        opt.step()
    after = spread()
    assert after.norm() < 0.6 * before.norm()


def test_wake_phase_is_the_elbo_gradient_and_the_sleep_phase_is_biased():
    hm = random_hm(5)
    gen = torch.Generator().manual_seed(6)
    p_params, q_params = hm.generative_parameters(), hm.recognition_parameters()
    # wake: p's update is unbiased for the ELBO's gradient
    exact_p = grads(p_params, -exact_elbo(hm, X).mean())
    mean, se = monte_carlo(p_params, lambda: wake_sleep_loss(hm, data(), generator=gen)[0])
    assert torch.all((mean - exact_p).abs() <= 5 * se + 1e-3)
    # sleep: q's update is unbiased for its own objective, E_p(x,h) log q(h | x) ...
    xs = states(4)
    log_p, log_q = exact_terms(hm, xs)
    sleep_objective = (log_p.exp().detach() * log_q).sum()
    exact_sleep = grads(q_params, -sleep_objective)
    mean, se = monte_carlo(q_params, lambda: wake_sleep_loss(hm, data(), generator=gen)[0])
    assert torch.all((mean - exact_sleep).abs() <= 5 * se + 1e-3)
    # ... which is not the ELBO's: over the same x ~ p(x), the ELBO's q-gradient differs from it
    # (exact values on both sides, so no sampling noise: a difference is a bias)
    p_x = exact_log_marginal(hm, xs).exp().detach()
    exact_elbo_q = grads(q_params, -(p_x * exact_elbo(hm, xs)).sum())
    cosine = F.cosine_similarity(exact_sleep, exact_elbo_q, dim=0)
    relative = (exact_sleep - exact_elbo_q).norm() / exact_elbo_q.norm()
    assert relative > 0.15 and cosine < 0.99, (relative, cosine)  # measured: 0.27 and 0.965


def test_rws_p_gradient_is_biased_at_finite_k_and_the_bias_shrinks():
    # The target is grad log p(x). At K = 1 RWS's p-update is the ELBO's gradient (biased);
    # the bias must shrink as K grows: below a fifth of K = 1's at K = 100.
    hm = random_hm(7)
    gen = torch.Generator().manual_seed(8)
    p_params = hm.generative_parameters()
    target = grads(p_params, -exact_log_marginal(hm, X).mean())
    elbo_grad = grads(p_params, -exact_elbo(hm, X).mean())
    bias = {}
    for k in (1, 10, 100):
        rows = X.repeat_interleave(REPEAT // k if k > 1 else REPEAT, 0)
        mean, se = monte_carlo(p_params, lambda: rws_loss(hm, rows, k, q_update="wake", generator=gen)[0])
        if k == 1:
            assert torch.all((mean - elbo_grad).abs() <= 5 * se + 1e-3)
        bias[k] = (mean - target).norm().item()
    assert bias[1] > 0.05
    assert bias[1] > bias[10] > bias[100]
    assert bias[100] < bias[1] / 5, bias


def test_rws_wake_q_update_targets_the_posterior():
    # As K grows, RWS's wake-phase q-update tends to the gradient of -KL(p(h | x) || q(h | x)),
    # i.e. of sum_h p(h | x) log q(h | x): a self-normalised importance estimate, biased at
    # finite K. With this random q the relative error measured 0.44, 0.20 and 0.10 at K = 10,
    # 100 and 1,000; it must fall with K and be below 0.15 at K = 1,000.
    hm = random_hm(9)
    gen = torch.Generator().manual_seed(10)
    q_params = hm.recognition_parameters()
    log_p, log_q = exact_terms(hm, X)
    posterior = torch.softmax(log_p.detach(), 1)
    exact = grads(q_params, -(posterior * log_q).sum(1).mean())
    error = {}
    for k in (10, 100, 1000):
        rows = X.repeat_interleave(20_000 // k, 0)
        mean, _ = monte_carlo(q_params, lambda: rws_loss(hm, rows, k, q_update="wake", generator=gen)[0])
        error[k] = ((mean - exact).norm() / exact.norm()).item()
    assert error[10] > error[100] > error[1000], error
    assert error[1000] < 0.15, error


def binary_digits(n=400):
    from dgm_fast.data import load_digits
    images, _ = load_digits(torch.float64)
    return (images[:n] > 0.5).double()


@pytest.mark.parametrize("algorithm", ["wake-sleep", "rws", "nvil"])
def test_training_raises_the_exact_log_likelihood(algorithm):
    data = binary_digits()
    hm = HelmholtzMachine([64, 10, 5], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    hm.generative.init_visible_bias_from_data(data)
    before = hm.log_prob(data).mean().item()
    history = fit_helmholtz(hm, data, algorithm=algorithm, epochs=15, batch_size=20, lr=1e-2,
                            generator=torch.Generator().manual_seed(1), progress=False)
    after = hm.log_prob(data).mean().item()
    assert after > before + 0.5, (before, after)  # measured gains: 0.7 (wake-sleep) to 1.5 nats
    key = "bound" if algorithm == "rws" else "elbo"
    assert history[-1][key] > history[0][key]
    assert history[-1][key] <= after + 0.5  # a lower bound (one-sample or K-sample) on average


def test_resume_is_bit_exact(tmp_path):
    data = binary_digits(200)

    def run(epochs, path):
        hm = HelmholtzMachine([64, 8, 4], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        fit_helmholtz(hm, data, algorithm="nvil", epochs=epochs, batch_size=20,
                      generator=torch.Generator().manual_seed(1), checkpoint=path, progress=False)
        return hm

    straight = run(4, tmp_path / "a.pt")
    run(2, tmp_path / "b.pt")
    resumed = run(4, tmp_path / "b.pt")
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    loaded = HelmholtzMachine.load(tmp_path / "a.pt")
    for a, b in zip(straight.parameters(), loaded.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"algorithm": "em"}, ValueError, "algorithm must be one of"),
    ({"k": 0}, ValueError, "k must be a positive integer"),
    ({"q_update": "dream"}, ValueError, "q_update must be one of"),
])
def test_bad_arguments(kwargs, error, match):
    hm = HelmholtzMachine([4, 3])
    with pytest.raises(error, match=match):
        fit_helmholtz(hm, torch.zeros(10, 4), progress=False, **kwargs)


def test_bad_data_and_parameters():
    hm = HelmholtzMachine([4, 3])
    with pytest.raises(ValueError, match="binary values"):
        fit_helmholtz(hm, torch.full((10, 4), 0.3), progress=False)
    with pytest.raises(ValueError, match=r"data must be \[rows, 4\]"):
        fit_helmholtz(hm, torch.zeros(10, 5), progress=False)
    with pytest.raises(ValueError, match="data is empty"):
        fit_helmholtz(hm, torch.zeros(0, 4), progress=False)
    with torch.no_grad():
        hm.recognition_weights[0][0, 0] = math.nan
    with pytest.raises(ValueError, match="recognition_weights.0 holds NaN"):
        fit_helmholtz(hm, torch.zeros(10, 4), progress=False)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        hm.infer(torch.zeros(2, 4), 0)
