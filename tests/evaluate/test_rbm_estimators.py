"""AIS and reverse AIS against exact partition functions, and the other likelihood measures."""

import pytest
import torch

from dgm_fast import evaluate
from dgm_fast.data import load_digits
from dgm_fast.models.rbm import RBM, fit_rbm
from helpers import random_rbm, states


def exact_samples(rbm, n, seed):
    """Exact samples of a Bernoulli-hidden RBM with few hidden units: h from the enumerated p(h),
    then v from p(v | h)."""
    h = states(rbm.n_hidden, 0, 1 << rbm.n_hidden, rbm.weight.dtype, "cpu")
    with torch.no_grad():
        if rbm.visible == "bernoulli":
            log_p = h @ rbm.hidden_bias + torch.nn.functional.softplus(h @ rbm.weight.t() + rbm.visible_bias).sum(1)
        else:
            a = h @ rbm.weight.t()
            log_p = h @ rbm.hidden_bias + (a * rbm.visible_bias * torch.exp(-rbm.visible_log_std)).sum(1) + 0.5 * (a * a).sum(1)
        g = torch.Generator().manual_seed(seed)
        idx = torch.multinomial(torch.softmax(log_p.double(), 0), n, replacement=True, generator=g)
        return rbm.sample_visible(h[idx], generator=g)


def digits_rbm():
    images, _ = load_digits()
    data = torch.bernoulli(images, generator=torch.Generator().manual_seed(0))
    rbm = RBM(64, 12, generator=torch.Generator().manual_seed(0))
    rbm.init_visible_bias_from_data(data)
    fit_rbm(rbm, data, epochs=10, batch_size=20, lr=0.05, momentum=0.5,
                  generator=torch.Generator().manual_seed(0), progress=False)
    return rbm, data


CASES = {
    "random bernoulli 12x8, weights 0.5": lambda: (random_rbm(12, 8, scale=0.5, dtype=torch.float32), None),
    "random bernoulli 16x10, weights 1.0": lambda: (random_rbm(16, 10, scale=1.0, dtype=torch.float32), None),
    "random gaussian 12x8, weights 0.5": lambda: (random_rbm(12, 8, "gaussian", scale=0.5, dtype=torch.float32), None),
    "trained on digits 64x12": digits_rbm,
}


@pytest.mark.parametrize("case", list(CASES))
def test_ais_and_reverse_ais_bracket_the_exact_log_partition(case):
    # 100 runs, the published 14,501-step schedule; reverse AIS starts from exact samples. Both
    # estimates must be within 0.1 nats of the exact log Z and bracket it within their +-3 sigma
    # bounds: AIS's lower bound below the truth, reverse AIS's upper bound above it.
    rbm, data = CASES[case]()
    exact = evaluate.exact_log_partition(rbm).item()
    forward = evaluate.ais(rbm, 100, data=data, generator=torch.Generator().manual_seed(0))
    init = exact_samples(rbm, 100, seed=1)
    backward = evaluate.reverse_ais(rbm, 100, data=data, init=init, generator=torch.Generator().manual_seed(2))
    assert abs(forward.log_z - exact) < 0.1, (forward, exact)
    assert abs(backward.log_z - exact) < 0.1, (backward, exact)
    assert forward.log_z_lower <= exact <= backward.log_z_upper, (forward, backward, exact)
    assert forward.ess > 10 and backward.ess > 10


def test_reverse_ais_from_gibbs_samples():
    rbm = random_rbm(12, 8, scale=0.5, dtype=torch.float32)
    exact = evaluate.exact_log_partition(rbm).item()
    estimate = evaluate.reverse_ais(rbm, 100, burn_in=500, generator=torch.Generator().manual_seed(3))
    assert abs(estimate.log_z - exact) < 0.1


def test_log_likelihood_with_ais_matches_exact():
    rbm, data = digits_rbm()
    estimate = evaluate.ais(rbm, 100, data=data, generator=torch.Generator().manual_seed(4))
    exact = evaluate.exact_log_likelihood(rbm, data).item()
    assert abs(evaluate.log_likelihood(rbm, data, estimate.log_z).item() - exact) < 0.1


def test_default_schedule():
    betas = evaluate.default_betas()
    assert betas.numel() == 14_501 and betas[0] == 0 and betas[-1] == 1
    steps = betas.diff()
    assert (steps > 0).all()
    torch.testing.assert_close(steps[:499], torch.full((499,), 1e-3, dtype=torch.float64))
    torch.testing.assert_close(steps[-100:], torch.full((100,), 1e-5, dtype=torch.float64))


def test_pseudo_log_likelihood_flips_every_bit():
    rbm = random_rbm(7, 5)
    v = torch.bernoulli(torch.full((9, 7), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    expected = 0
    with torch.no_grad():
        for i in range(7):
            flipped = v.clone()
            flipped[:, i] = 1 - flipped[:, i]
            expected = expected - torch.nn.functional.softplus(rbm.free_energy(v) - rbm.free_energy(flipped))
    torch.testing.assert_close(evaluate.pseudo_log_likelihood(rbm, v, chunk=3), expected.mean(), rtol=1e-12, atol=1e-12)


def test_reconstruction_error_of_a_perfect_model_is_small():
    rbm = RBM(4, 4)
    with torch.no_grad():
        rbm.weight.copy_(torch.eye(4) * 20)
        rbm.visible_bias.fill_(-10)
        rbm.hidden_bias.fill_(-10)
    v = torch.tensor([[1.0, 0, 1, 0], [0, 1, 1, 1]])
    assert evaluate.reconstruction_error(rbm, v) < 1e-6


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: evaluate.ais(RBM(4, 3, hidden="nrelu")), "Bernoulli hidden units"),
        (lambda: evaluate.ais(RBM(4, 3), betas=torch.tensor([0.0, 0.5])), "from 0 to 1"),
        (lambda: evaluate.ais(RBM(4, 3), n_runs=0), "n_runs must be at least 1"),
        (lambda: evaluate.pseudo_log_likelihood(RBM(4, 3, visible="gaussian"), torch.zeros(2, 4)), "Bernoulli visible"),
        (lambda: evaluate.ais(RBM(4, 3), data=torch.zeros(2, 5)), r"data must be \[batch, 4\]"),
        # the bad-input sweep's findings
        (lambda: evaluate.ais(RBM(4, 3), betas=[]), "at least two values, got 0 values"),
        (lambda: evaluate.ais(RBM(4, 3), data=torch.zeros(0, 4)), "ais: data is empty"),
        (lambda: evaluate.log_likelihood(RBM(4, 3), torch.zeros(0, 4), 1.0), "log_likelihood: data is empty"),
        (lambda: evaluate.log_likelihood(RBM(4, 3), torch.zeros(2, 4), torch.zeros(2)), "log_z must be one number"),
        (lambda: evaluate.pseudo_log_likelihood(RBM(4, 3), torch.zeros(0, 4)), "pseudo_log_likelihood: data is empty"),
        (lambda: evaluate.pseudo_log_likelihood(RBM(4, 3), torch.zeros(2, 4), chunk=0), "chunk must be at least 1"),
        (lambda: evaluate.reconstruction_error(RBM(4, 3), torch.zeros(0, 4)), "reconstruction_error: data is empty"),
        (lambda: evaluate.exact_log_partition(RBM(4, 3), chunk=-1), "chunk must be at least 1"),
        (lambda: evaluate.reverse_ais(RBM(4, 3), n_runs=10, init=torch.zeros(5, 4)), "init has 5 rows but n_runs is 10"),
        (lambda: evaluate.reverse_ais(RBM(4, 3), n_runs=2, init=torch.full((2, 4), float("nan"))), "init contains NaN"),
        (lambda: evaluate.reverse_ais(RBM(4, 3), burn_in=-1), "burn_in must be at least 0"),
        (lambda: RBM(4, 3).sample(-1), "n must be a positive integer"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: evaluate.ais(RBM(4, 3), n_runs=2.5), "n_runs must be an integer, got 2.5"),
        (lambda: evaluate.log_likelihood(RBM(4, 3), torch.zeros(2, 4), "abc"), "log_z must be a number"),
        (lambda: evaluate.importance_log_likelihood(lambda x, k: x, torch.zeros(2), n_samples=2.5),
         "n_samples must be an integer"),
    ],
)
def test_wrong_types_are_named(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_reverse_ais_without_burn_in_starts_from_the_base_model():
    result = evaluate.reverse_ais(RBM(4, 3, generator=torch.Generator().manual_seed(0)), n_runs=8,
                                  betas=torch.linspace(0, 1, 50, dtype=torch.float64), burn_in=0,
                                  generator=torch.Generator().manual_seed(1))
    assert result.log_weights.shape == (8,) and torch.isfinite(result.log_weights).all()


def test_the_refined_schedule_splits_each_step_of_the_papers():
    betas = evaluate.default_betas()
    refined = evaluate.default_betas(refine=3)
    assert betas.shape == (14_501,) and refined.shape == (43_501,)
    torch.testing.assert_close(refined[::3], betas, rtol=0, atol=1e-15)
    assert (refined.diff() > 0).all() and refined[0] == 0 and refined[-1] == 1
    with pytest.raises(ValueError, match="refine must be a positive integer"):
        evaluate.default_betas(refine=0)
