"""SBN: exact log p(x) against brute-force enumeration written in plain PyTorch, the sampler's law
against it, files and bad input."""

import math

import pytest
import torch
from torch.nn import functional as F

from dgm_fast import SBN, HelmholtzMachine
from dgm_fast.evaluate import importance_log_likelihood


def states(n):
    codes = torch.arange(1 << n)
    return ((codes.unsqueeze(1) >> torch.arange(n)) & 1).double()


def random_sbn(sizes, seed=0, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    sbn = SBN(sizes, init_std=scale, generator=g, dtype=torch.float64)
    with torch.no_grad():
        for b in sbn.biases:
            b.copy_(torch.randn(b.shape, generator=g, dtype=torch.float64))
    return sbn


def brute_force_log_prob(sbn, x):
    """log sum_h p(x, h) over every joint hidden state, each term a product of
    Bernoulli(sigmoid(.)) factors spelled with logsigmoid: independent of the model's code."""
    w = [p.detach() for p in sbn.weights]
    b = [p.detach() for p in sbn.biases]
    hidden = [states(n) for n in sbn.layer_sizes[1:]]
    grids = torch.cartesian_prod(*[torch.arange(h.shape[0]) for h in hidden]).reshape(-1, len(hidden))
    terms = []
    for idx in grids:
        layers = [x] + [hidden[j][idx[j]].expand(x.shape[0], -1) for j in range(len(hidden))]

        def log_bern(s, logit):
            return (s * F.logsigmoid(logit) + (1 - s) * F.logsigmoid(-logit)).sum(-1)

        total = log_bern(layers[-1], b[-1].expand_as(layers[-1]))
        for l in range(len(w)):
            total = total + log_bern(layers[l], layers[l + 1] @ w[l].t() + b[l])
        terms.append(total)
    return torch.logsumexp(torch.stack(terms), 0)


@pytest.mark.parametrize("sizes", [[5, 3], [6, 4, 3], [4, 3, 2, 2]])
def test_log_prob_is_the_enumerated_marginal(sizes):
    sbn = random_sbn(sizes)
    x = states(sizes[0])
    lp = sbn.log_prob(x)
    assert lp.shape == (1 << sizes[0],) and lp.dtype == torch.float64
    torch.testing.assert_close(lp, brute_force_log_prob(sbn, x), rtol=0, atol=1e-12)
    assert abs(torch.logsumexp(lp, 0).item()) < 1e-12  # a distribution over the 2^V images


def test_log_joint_against_plain_formula():
    sbn = random_sbn([5, 4, 3], seed=2)
    g = torch.Generator().manual_seed(0)
    layers = [(torch.rand(7, n, generator=g) < 0.5).double() for n in sbn.layer_sizes]
    lp = sbn.log_joint(layers)
    w, b = [p.detach() for p in sbn.weights], [p.detach() for p in sbn.biases]
    expected = -F.binary_cross_entropy_with_logits(b[2].expand(7, -1), layers[2], reduction="none").sum(1)
    for l in range(2):
        logits = layers[l + 1] @ w[l].t() + b[l]
        expected -= F.binary_cross_entropy_with_logits(logits, layers[l], reduction="none").sum(1)
    torch.testing.assert_close(lp, expected, rtol=1e-12, atol=1e-12)


def test_ancestral_samples_follow_the_exact_law():
    # 200,000 samples over 32 images: the total-variation distance to exp(log_prob) is about
    # sum_x sqrt(p (1 - p) / n) / 2 = 0.006 here; require < 0.015.
    sbn = random_sbn([5, 3, 2], seed=1)
    n = 200_000
    x = sbn.sample(n, generator=torch.Generator().manual_seed(3))
    assert x.shape == (n, 5) and x.dtype == torch.float64
    codes = (x.long() << torch.arange(5)).sum(1)
    empirical = torch.bincount(codes, minlength=32).double() / n
    exact = sbn.log_prob(states(5)).exp()
    assert 0.5 * (empirical - exact).abs().sum() < 0.015


def test_importance_estimate_converges_to_the_exact_value():
    # The recognition model's prior-like q (random small weights) as proposal; the error falls
    # as 1/sqrt(N) (measured: 0.09 nats at N = 10^4, 0.006 at 10^6): at N = 10^6 it must be
    # within 0.015 nats of the exact log p(x) for each row. At N = 10 the estimate is below the
    # exact value on average over 200 repeats (a stochastic lower bound).
    hm = HelmholtzMachine([6, 4, 3], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hm.generative.load_state_dict(random_sbn([6, 4, 3], seed=4).state_dict())
    x = states(6)[::7]
    exact = hm.log_prob(x)
    gen = torch.Generator().manual_seed(5)
    estimate = importance_log_likelihood(lambda v, k: hm.log_weights(v, k, generator=gen), x, 1_000_000, 50_000)
    assert (estimate - exact).abs().max() < 0.015
    small = torch.stack([importance_log_likelihood(lambda v, k: hm.log_weights(v, k, generator=gen), x, 10, 10)
                         for _ in range(200)]).mean(0)
    assert (small < exact).all()


def test_save_and_load_round_trip(tmp_path):
    sbn = random_sbn([6, 4, 3])
    sbn.save(tmp_path / "sbn.pt")
    back = SBN.load(tmp_path / "sbn.pt")
    assert back.layer_sizes == [6, 4, 3]
    for a, b in zip(sbn.parameters(), back.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="does not hold a HelmholtzMachine"):
        HelmholtzMachine.load(tmp_path / "sbn.pt")


@pytest.mark.parametrize("sizes,error,match", [
    ([5], ValueError, "at least one hidden layer"),
    ([5, 0], ValueError, "must be positive"),
    ([5, 2.5], TypeError, "list of integers"),
    ("5,3", TypeError, "list of integers"),
])
def test_bad_layer_sizes(sizes, error, match):
    with pytest.raises(error, match=match):
        SBN(sizes)
    with pytest.raises(error, match=match):
        HelmholtzMachine(sizes)


def test_bad_inputs_to_log_prob_and_sample():
    sbn = random_sbn([5, 3])
    with pytest.raises(ValueError, match="binary values"):
        sbn.log_prob(torch.full((2, 5), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"must be \[batch, 5\]"):
        sbn.log_prob(torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="float32"):
        sbn.log_prob(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="positive integer"):
        sbn.sample(0)
    with pytest.raises(ValueError, match="enumerates every state"):
        SBN([5, 30]).log_prob(torch.zeros(1, 5))
    with torch.no_grad():
        sbn.weights[0][0, 0] = math.nan
    with pytest.raises(ValueError, match="weights.0 holds NaN"):
        sbn.log_prob(torch.zeros(2, 5, dtype=torch.float64))
