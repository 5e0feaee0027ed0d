"""The RBM against exact enumeration: conditionals, free energy, partition function, the long-run
distribution of its Gibbs chain, CD gradients, and the detailed balance of tempering swaps."""


import pytest
import torch

from dgm_fast import evaluate
from dgm_fast.models.rbm import RBM
from dgm_fast.models.rbm.train import _tempered_free_energy, pt_swap_log_acceptance
from helpers import empirical_distribution, exact_visible_distribution, make_generator, random_rbm, states

@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_hidden_conditional_and_free_energy_match_enumeration(visible):
    rbm = random_rbm(5, 3, visible)
    g = torch.Generator().manual_seed(1)
    v = torch.randn(7, 5, generator=g, dtype=torch.float64) if visible == "gaussian" else torch.bernoulli(torch.full((7, 5), 0.5, dtype=torch.float64), generator=g)
    h = states(3, 0, 8, torch.float64, "cpu")  # all 8 hidden states
    with torch.no_grad():
        neg_e = torch.stack([-rbm.energy(v, hh.expand(7, 3)) for hh in h], 1)  # [7, 8]
        post = torch.softmax(neg_e, 1)
        torch.testing.assert_close(rbm.hidden_probs(v), post @ h, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(rbm.free_energy(v), -torch.logsumexp(neg_e, 1), rtol=1e-12, atol=1e-12)


def test_bernoulli_visible_conditional_matches_enumeration():
    rbm = random_rbm(4, 3)
    h = torch.bernoulli(torch.full((6, 3), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(2))
    v = states(4, 0, 16, torch.float64, "cpu")
    with torch.no_grad():
        neg_e = torch.stack([-rbm.energy(vv.expand(6, 4), h) for vv in v], 1)
        torch.testing.assert_close(rbm.visible_probs(h), torch.softmax(neg_e, 1) @ v, rtol=1e-12, atol=1e-14)


def test_gaussian_visible_conditional_is_the_energy_normalised():
    # log p(v | h) = -E(v, h) + const(h): the Gaussian N(mean, sigma^2) must differ from -E by a
    # constant over v.
    rbm = random_rbm(4, 3, "gaussian")
    g = torch.Generator().manual_seed(3)
    h = torch.bernoulli(torch.full((1, 3), 0.5, dtype=torch.float64), generator=g).expand(50, 3)
    v = torch.randn(50, 4, generator=g, dtype=torch.float64) * 3
    with torch.no_grad():
        mean, std = rbm.visible_probs(h), torch.exp(rbm.visible_log_std)
        log_normal = torch.distributions.Normal(mean, std).log_prob(v).sum(1)
        diff = -rbm.energy(v, h) - log_normal
    assert diff.std() < 1e-10


def test_log_partition_bernoulli_both_layers():
    for nv, nh in [(6, 4), (4, 6)]:  # enumerates the hidden, then the visible layer
        rbm = random_rbm(nv, nh)
        v, h = states(nv, 0, 1 << nv, torch.float64, "cpu"), states(nh, 0, 1 << nh, torch.float64, "cpu")
        with torch.no_grad():
            joint = torch.stack([-rbm.energy(v, hh.expand(v.shape[0], nh)) for hh in h])
        torch.testing.assert_close(evaluate.exact_log_partition(rbm), torch.logsumexp(joint.reshape(-1), 0), rtol=1e-12, atol=0)


def test_log_partition_gaussian_by_quadrature():
    rbm = random_rbm(2, 3, "gaussian", scale=0.7)
    grid = torch.linspace(-14, 14, 1401, dtype=torch.float64)
    step = grid[1] - grid[0]
    v = torch.cartesian_prod(grid, grid)
    with torch.no_grad():
        log_z_quad = torch.logsumexp(-rbm.free_energy(v), 0) + 2 * torch.log(step)
    torch.testing.assert_close(evaluate.exact_log_partition(rbm), log_z_quad, rtol=0, atol=1e-8)


def test_gibbs_long_run_matches_exact_distribution():
    # 20,000 independent chains, 300 sweeps each, of an 8x4 RBM with weights of scale 1. The
    # expected total-variation distance of the empirical distribution of 20,000 exact samples
    # over 256 states is about sum_v sqrt(p(v)/(2 pi N)) ~ 0.03 for this model; require < 0.05.
    rbm = random_rbm(8, 4, scale=1.0, dtype=torch.float32)
    samples = rbm.sample(20_000, steps=300, generator=make_generator("cpu", 5))
    _, p = exact_visible_distribution(rbm.double())
    tv = 0.5 * (empirical_distribution(samples, 8) - p).abs().sum()
    assert tv < 0.05, tv


def _exact_model_statistics(rbm):
    v, p = exact_visible_distribution(rbm)
    with torch.no_grad():
        hp = rbm.hidden_probs(v)
    return (p[:, None, None] * v[:, :, None] * hp[:, None, :]).sum(0), p @ v, p @ hp


def test_long_run_chain_gives_the_exact_gradient():
    # The negative statistics from 200,000 long-run chain samples against the enumerated model
    # expectation <v h>, <v>, <h>: standard errors are below 1.2e-3; require 6e-3.
    rbm = random_rbm(6, 4, scale=0.8, dtype=torch.float32)
    samples = rbm.sample(200_000, steps=200, generator=make_generator("cpu", 8))
    with torch.no_grad():
        hm = rbm.hidden_probs(samples)
    vh, v_mean, h_mean = _exact_model_statistics(rbm.double())
    torch.testing.assert_close((samples.T @ hm / samples.shape[0]).double(), vh, rtol=0, atol=6e-3)
    torch.testing.assert_close(samples.double().mean(0), v_mean, rtol=0, atol=6e-3)
    torch.testing.assert_close(hm.double().mean(0), h_mean, rtol=0, atol=6e-3)


def test_cd1_negative_statistics_match_their_enumerated_expectation():
    # CD-1 from a fixed data vector v0: E[v1 h1^T] with h0 ~ p(h|v0), v1 ~ p(v|h0), h1 = E[h|v1],
    # by enumeration of h0 and v1, against the mean over 200,000 native chains (tolerance 6e-3,
    # five standard errors or more).
    rbm = random_rbm(4, 3, scale=1.0)
    v0 = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    hs, vs = states(3, 0, 8, torch.float64, "cpu"), states(4, 0, 16, torch.float64, "cpu")
    with torch.no_grad():
        ph0 = torch.softmax(torch.stack([-rbm.energy(v0, hh[None]) for hh in hs]).reshape(-1), 0)  # p(h0 | v0)
        pv1 = torch.stack([torch.softmax(torch.stack([-rbm.energy(vv[None], hh[None]) for vv in vs]).reshape(-1), 0) for hh in hs])
        p_v1 = ph0 @ pv1  # [16]
        h1 = rbm.hidden_probs(vs)
        expected = (p_v1[:, None, None] * vs[:, :, None] * h1[:, None, :]).sum(0)
    rbm32 = rbm.float()
    _, v1, h1_mean = rbm32.chain(v0.float().expand(200_000, 4).contiguous(), 1, generator=make_generator("cpu", 10))
    torch.testing.assert_close((v1.T @ h1_mean / v1.shape[0]).double(), expected, rtol=0, atol=6e-3)


def test_tempering_swaps_satisfy_detailed_balance():
    # pi(x, y) = p_1(x) p_b(y); a swap (x, y) -> (y, x) is accepted with min(1, r). Detailed
    # balance: pi(x, y) min(1, r(x, y)) = pi(y, x) min(1, r(y, x)) for every pair of states.
    rbm = random_rbm(4, 3, scale=1.5)
    v = states(4, 0, 16, torch.float64, "cpu")
    with torch.no_grad():
        log_p = {beta: torch.log_softmax(-_tempered_free_energy(rbm, v, beta), 0) for beta in (1.0, 0.4)}
        x, y = v.repeat_interleave(16, 0), v.repeat(16, 1)
        ix, iy = torch.arange(16).repeat_interleave(16), torch.arange(16).repeat(16)
        log_r = pt_swap_log_acceptance(rbm, x, y, torch.ones(256, dtype=torch.float64), torch.full((256,), 0.4, dtype=torch.float64))
        flow = log_p[1.0][ix] + log_p[0.4][iy] + torch.clamp(log_r, max=0)
        back = log_p[1.0][iy] + log_p[0.4][ix] + torch.clamp(-log_r, max=0)  # r(y, x) = 1 / r(x, y)
        log_r_back = pt_swap_log_acceptance(rbm, y, x, torch.ones(256, dtype=torch.float64), torch.full((256,), 0.4, dtype=torch.float64))
    torch.testing.assert_close(log_r_back, -log_r, rtol=0, atol=1e-12)
    torch.testing.assert_close(flow, back, rtol=0, atol=1e-12)


def test_tempered_chain_samples_its_tempered_distribution():
    # With beta = 0.5 on every row, the chain's long-run distribution is p_0.5 (TV < 0.05, as in
    # the beta = 1 test).
    rbm = random_rbm(8, 4, scale=1.0, dtype=torch.float32)
    v0 = rbm.sample(20_000, steps=1, generator=make_generator("cpu", 1))
    beta = torch.full((20_000,), 0.5)
    _, samples, _ = rbm.chain(v0, 300, beta=beta, final_hidden=False, generator=make_generator("cpu", 2))
    v = states(8, 0, 256, torch.float64, "cpu")
    with torch.no_grad():
        p = torch.softmax(-_tempered_free_energy(rbm.double(), v, 0.5), 0)
    assert 0.5 * (empirical_distribution(samples, 8) - p).abs().sum() < 0.05


def test_compile_gibbs_without_graph_break():
    rbm = random_rbm(6, 4, dtype=torch.float32)
    v0 = torch.bernoulli(torch.full((32, 6), 0.5))
    f = torch.compile(lambda v: rbm.gibbs(v, steps=3), fullgraph=True)
    torch.manual_seed(4)
    a = f(v0)
    torch.manual_seed(4)
    assert torch.equal(a, rbm.gibbs(v0, steps=3))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda r: r.gibbs(torch.zeros(3, 5)), ValueError, r"v must be \[batch, 6\]"),
        (lambda r: r.gibbs(torch.zeros(3, 6, dtype=torch.float64)), ValueError, "torch.float64 on cpu but the model is torch.float32"),
        (lambda r: r.gibbs(torch.zeros(3, 6), steps=0), ValueError, "steps must be at least 1"),
        (lambda r: r.visible_probs(torch.zeros(2, 5)), ValueError, r"h must be \[batch, 4\]"),
        (lambda r: RBM(6, 4, visible="binary"), ValueError, "visible must be one of"),
        (lambda r: RBM(6, 4, learn_std=True), ValueError, "Gaussian visible units only"),
        (lambda r: evaluate.exact_log_partition(RBM(40, 40)), ValueError, "not practical"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(RBM(6, 4))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: RBM(6.5, 4), TypeError, "n_visible must be an integer, got 6.5"),
        (lambda: RBM("6", 4), TypeError, "n_visible must be an integer, got '6'"),
        (lambda: RBM(6, 4, dtype=torch.int32), TypeError, "dtype must be a floating-point dtype"),
        (lambda: RBM(6, 4).visible_probs(torch.zeros(2, 4, dtype=torch.float64)), ValueError, "h is torch.float64"),
        (lambda: RBM(6, 4).sample_visible(torch.zeros(2, 4, dtype=torch.int64)), ValueError, "h is torch.int64"),
        (lambda: RBM(6, 4).visible_probs(torch.zeros(2, 4, device="meta")), ValueError, "on meta but the model"),
        (lambda: RBM(6, 4).sample(2.5), ValueError, "n must be a positive integer, got 2.5"),
    ],
)
def test_model_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_nrelu_free_energy_in_closed_form_matches_the_long_sum():
    from dgm_fast.models.rbm.model import _stepped_sigmoid_log_partition

    x = torch.tensor([-60.0, -3.0, 0.0, 2.5, 40.0, 41.7, 45.0, 200.0, 1234.5], dtype=torch.float64)
    offsets = torch.arange(1, 3001, dtype=torch.float64) - 0.5  # every term that matters here
    brute = torch.nn.functional.softplus(x.unsqueeze(-1) - offsets).sum(-1)
    torch.testing.assert_close(_stepped_sigmoid_log_partition(x), brute, rtol=1e-13, atol=1e-13)
    huge = _stepped_sigmoid_log_partition(torch.tensor([1e9], dtype=torch.float64))  # no 3.8 GB allocation
    assert torch.isfinite(huge).all() and huge.item() == pytest.approx(1e18 / 2, rel=1e-6)
    assert torch.isnan(_stepped_sigmoid_log_partition(torch.tensor([float("nan")]))).all()  # no exception
    rbm = random_rbm(4, 3, hidden="nrelu")
    assert torch.isnan(rbm.free_energy(torch.full((1, 4), float("nan"), dtype=torch.float64))).all()
