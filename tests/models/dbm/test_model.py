"""The DBM module on models small enough to enumerate: its energy and marginals against a sum
over every joint state computed here from the energy's formula, mean-field's fixed point, the
mean-field bound against exact log p(v), and the block Gibbs chain's long-run law."""

import itertools
import math

import pytest
import torch

import dgm_fast
from dgm_fast import DBM
from dgm_fast.evaluate import dbm_lower_bound, exact_log_partition, exact_log_prob
from helpers import random_dbm

SIZES = [4, 3, 2]


def tiny(sizes=SIZES, scale=1.5, seed=0) -> DBM:
    """A DBM with weights and biases large enough that its law is far from uniform (float64)."""
    return random_dbm(sizes, scale, bias_scale=0.5, seed=seed)


def joint_states(sizes):
    """Every joint state, as one [S, n_l] tensor per layer, and the [S, sum(sizes)] codes."""
    codes = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(sizes))), dtype=torch.float64)
    return list(torch.split(codes, sizes, dim=1)), codes


def minus_energy(dbm, states):
    """-E written out from the definition, independently of DBM.energy."""
    w = [p.detach() for p in dbm.weights]
    b = [p.detach() for p in dbm.biases]
    total = sum((s * bb).sum(1) for s, bb in zip(states, b))
    for l in range(len(w)):
        total = total + torch.einsum("bi,ij,bj->b", states[l], w[l], states[l + 1])
    return total


@pytest.mark.parametrize("sizes", [[4, 3, 2], [3, 2, 3, 2]])
def test_energy_log_partition_and_marginals_match_the_sum_over_every_joint_state(sizes):
    dbm = tiny(sizes)
    states, _ = joint_states(sizes)
    neg_e = minus_energy(dbm, states)
    assert torch.allclose(-dbm.energy(states), neg_e, atol=1e-12)
    log_z = torch.logsumexp(neg_e, 0)
    assert abs(float(exact_log_partition(dbm)) - float(log_z)) < 1e-10

    # log p(v) per visible state: the brute-force marginal
    v_states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sizes[0])), dtype=torch.float64)
    codes_v = torch.stack(list(states[0]))
    brute = torch.stack([torch.logsumexp(neg_e[(codes_v == v).all(1)], 0) for v in v_states]) - log_z
    assert torch.allclose(exact_log_prob(dbm, v_states), brute, atol=1e-10)
    assert abs(float(torch.logsumexp(brute, 0))) < 1e-12  # a distribution


@pytest.mark.parametrize("summed_out", ["odd", "even"])
def test_unnormalized_log_prob_sums_the_other_parity_out(summed_out):
    sizes = [3, 2, 3, 2]
    dbm = tiny(sizes)
    states, codes = joint_states(sizes)
    neg_e = minus_energy(dbm, states)
    kept = [l for l in range(len(sizes)) if (l % 2 == 1) == (summed_out == "even")]
    kept_codes = torch.cat([states[l] for l in kept], 1)
    got = dbm.unnormalized_log_prob([s if l in kept else None for l, s in enumerate(states)], summed_out)
    for code in torch.unique(kept_codes, dim=0):
        rows = (kept_codes == code).all(1)
        expected = torch.logsumexp(neg_e[rows], 0)
        assert torch.allclose(got[rows], expected.expand(int(rows.sum())), atol=1e-12)


def test_mean_field_converges_to_a_fixed_point_of_its_equations():
    dbm = tiny([6, 5, 4], scale=0.8)
    v = torch.bernoulli(torch.full((10, 6), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    means = dbm.mean_field(v, iterations=500, tol=1e-13)
    states = [v, *means]
    for layer in (1, 2):
        assert torch.allclose(means[layer - 1], torch.sigmoid(dbm.layer_input(states, layer)), atol=1e-12)
    # damping moves more slowly to the same point
    damped = dbm.mean_field(v, iterations=2000, tol=1e-14, damping=0.5)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(means, damped))


def test_mean_field_bound_is_below_exact_log_p_and_equal_when_the_posterior_factorises():
    dbm = tiny([4, 3, 2])
    v = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    log_z = exact_log_partition(dbm)
    exact = exact_log_prob(dbm, v)
    bound = dbm_lower_bound(dbm, v, log_z, iterations=200)
    assert (bound <= exact + 1e-12).all()
    assert (exact - bound).max() > 1e-3  # coupled layers: the posterior does not factorise

    # With W_1 = 0 the posterior is p(h1 | v) p(h2), both factorial: mean-field is exact.
    with torch.no_grad():
        dbm.weights[1].zero_()
    bound = dbm_lower_bound(dbm, v, exact_log_partition(dbm), iterations=200)
    assert torch.allclose(bound, exact_log_prob(dbm, v), atol=1e-10)


def test_gibbs_chain_long_run_law_is_the_exact_joint_law():
    """100,000 chains, 40 sweeps each from uniform states, on the 4-3-2 model (512 joint states).
    The expected total-variation distance of an exact sample of that size is below
    0.5 * sqrt(2 * 512 / (pi * 100000)) = 0.029; we allow 0.04."""
    dbm = tiny([4, 3, 2], scale=1.0)
    states, codes = joint_states([4, 3, 2])
    exact = torch.softmax(minus_energy(dbm, states), 0)
    g = torch.Generator().manual_seed(5)
    final = dbm.gibbs(dbm.random_states(100_000, generator=g), 40, generator=g)
    bits = torch.cat(final, 1)
    index = (bits * (2 ** torch.arange(bits.shape[1] - 1, -1, -1, dtype=torch.float64))).sum(1).long()
    empirical = torch.bincount(index, minlength=512).double() / index.numel()
    tv = 0.5 * (empirical - exact).abs().sum()
    assert tv < 0.04, float(tv)


def test_gibbs_clamps_the_visible_layer_and_repeats_with_the_same_seed():
    dbm = tiny([5, 4, 3])
    start = dbm.random_states(7, generator=torch.Generator().manual_seed(2))
    a = dbm.gibbs(start, 3, clamp_visible=True, generator=torch.Generator().manual_seed(3))
    b = dbm.gibbs(start, 3, clamp_visible=True, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], start[0])
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[1], start[1]) or not torch.equal(a[2], start[2])


def test_sample_returns_binary_visible_states():
    dbm = DBM([6, 4, 3], generator=torch.Generator().manual_seed(0))
    x = dbm.sample(9, steps=5, generator=torch.Generator().manual_seed(1))
    assert x.shape == (9, 6) and x.dtype == torch.float32
    assert ((x == 0) | (x == 1)).all()
    means = dbm.sample(9, steps=5, visible_means=True, generator=torch.Generator().manual_seed(1))
    assert means.shape == (9, 6) and ((means > 0) & (means < 1)).all()
    assert [list(w.shape) for w in dbm.weights] == [[6, 4], [4, 3]]
    assert [b.shape[0] for b in dbm.biases] == [6, 4, 3]
    assert dgm_fast.DBM is DBM


@pytest.mark.parametrize("sizes, error, match", [
    ([5, 3], ValueError, "at least two hidden layers"),
    ([5], ValueError, "at least two hidden layers"),
    ([5, 0, 3], ValueError, "must be positive"),
    ([5, -2, 3], ValueError, "must be positive"),
    ([5, 3.0, 2], TypeError, "list of integers"),
    ("5-3-2", TypeError, "list of integers"),
])
def test_bad_layer_sizes_are_refused(sizes, error, match):
    with pytest.raises(error, match=match):
        DBM(sizes)


def test_mismatched_inputs_are_refused():
    dbm = DBM([6, 4, 3])
    with pytest.raises(ValueError, match=r"v must be \[batch, 6\]"):
        dbm.mean_field(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="float64 on cpu but the model is torch.float32"):
        dbm.mean_field(torch.zeros(2, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="list of 3 tensors"):
        dbm.energy([torch.zeros(2, 6)])
    with pytest.raises(ValueError, match="different batch sizes"):
        dbm.energy([torch.zeros(2, 6), torch.zeros(3, 4), torch.zeros(2, 3)])
    with pytest.raises(ValueError, match="summed_out"):
        dbm.unnormalized_log_prob([torch.zeros(2, 6), None, torch.zeros(2, 3)], "both")
    with pytest.raises(ValueError, match="damping"):
        dbm.mean_field(torch.zeros(2, 6), damping=1.0)
    with pytest.raises(ValueError, match="x contains NaN"):
        dbm_lower_bound(dbm, torch.full((2, 6), math.nan), 0.0)


def test_visible_biases_start_at_the_data_log_odds():
    dbm = DBM([6, 4, 3])
    data = torch.tensor([[1, 0, 1, 1, 0, 0]] * 3 + [[1, 1, 0, 1, 0, 0]], dtype=torch.float32)
    dbm.init_visible_bias_from_data(data)
    p = torch.tensor([1, 0.25, 0.75, 1, 0, 0]).clamp(1e-3, 1 - 1e-3)
    torch.testing.assert_close(dbm.biases[0].detach(), torch.log(p / (1 - p)))
    with pytest.raises(ValueError, match=r"data must be \[batch, 6\]"):
        dbm.init_visible_bias_from_data(data[:, :5])
