"""The DBM ops (mean-field, block Gibbs chain, AIS) against their plain-PyTorch definitions in
dgm_fast.reference.dbm: the chain bit for bit (same generator, same draws), AIS with the same
draws and log-weights to float64 rounding, mean-field to float64 rounding; opcheck, meta tensors,
and their argument checks."""

import pytest
import torch

from dgm_fast import ops
from dgm_fast.reference import dbm as reference
from helpers import make_generator, random_dbm

SHAPES = [[8, 5, 4], [7, 6, 5, 4]]  # two and three hidden layers


def params(sizes, dtype=torch.float64, scale=0.8, seed=0):
    dbm = random_dbm(sizes, scale, seed=seed, dtype=dtype)
    return [w.detach() for w in dbm.weights], [b.detach() for b in dbm.biases], dbm


def random_states(sizes, n, dtype, seed):
    g = make_generator("cpu", seed)
    return [torch.bernoulli(torch.full((n, size), 0.5, dtype=dtype), generator=g) for size in sizes]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sizes", SHAPES)
@pytest.mark.parametrize("clamp_visible", [False, True])
def test_chain_is_bit_identical_to_the_reference_loop(sizes, dtype, clamp_visible):
    weights, biases, _ = params(sizes, dtype)
    states = random_states(sizes, 33, dtype, seed=1)
    g_op, g_ref = make_generator("cpu", 5), make_generator("cpu", 5)
    native = ops.dbm.dbm_gibbs_chain(states, weights, biases, 7, clamp_visible=clamp_visible, generator=g_op)
    plain = reference.dbm_gibbs_chain(weights, biases, states, 7, clamp_visible=clamp_visible, generator=g_ref)
    for a, b in zip(native, plain):
        assert torch.equal(a, b)
    assert torch.equal(g_op.get_state(), g_ref.get_state())  # the same number of draws
    assert torch.equal(native[0], states[0]) == clamp_visible


def test_chain_outputs_never_alias_the_inputs():
    weights, biases, _ = params(SHAPES[0])
    states = random_states(SHAPES[0], 4, torch.float64, seed=2)
    for steps, clamp in ((0, False), (3, True)):
        out = ops.dbm.dbm_gibbs_chain(states, weights, biases, steps, clamp_visible=clamp)
        for a, b in zip(out, states):
            assert a.data_ptr() != b.data_ptr()
    assert all(torch.equal(a, b) for a, b in zip(ops.dbm.dbm_gibbs_chain(states, weights, biases, 0), states))


@pytest.mark.parametrize("sizes", SHAPES)
@pytest.mark.parametrize("tol, damping", [(None, 0.0), (None, 0.4), (1e-10, 0.0), (1e-6, 0.3)])
def test_mean_field_equals_the_reference_to_rounding(sizes, tol, damping):
    weights, biases, _ = params(sizes, scale=1.2)
    v = random_states(sizes, 21, torch.float64, seed=3)[0]
    native = ops.dbm.dbm_mean_field(v, weights, biases, 40, tol=tol, damping=damping)
    plain = reference.dbm_mean_field(weights, biases, v, iterations=40, tol=tol, damping=damping)
    assert [m.shape for m in native] == [(21, n) for n in sizes[1:]]
    for a, b in zip(native, plain):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)


def test_mean_field_stops_at_the_tolerance():
    """With tol, the sweeps stop once no mean moves by tol: the result is then within about tol
    of the fixed point, not far from it after a fixed budget of sweeps."""
    weights, biases, _ = params(SHAPES[1], scale=0.5)
    v = random_states(SHAPES[1], 9, torch.float64, seed=4)[0]
    fixed = ops.dbm.dbm_mean_field(v, weights, biases, 500)
    early = ops.dbm.dbm_mean_field(v, weights, biases, 500, tol=1e-5)
    one = ops.dbm.dbm_mean_field(v, weights, biases, 1)
    gap = max((a - b).abs().max().item() for a, b in zip(early, fixed))
    assert 0 < gap < 1e-4
    assert max((a - b).abs().max().item() for a, b in zip(one, fixed)) > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sizes", SHAPES)
def test_ais_draws_the_reference_states_and_its_log_weights(sizes, dtype):
    """The CPU kernel's fused pass computes the softplus terms with dgm_fast's portable exp and
    log, the reference with torch's, so the log-weights agree to float64 rounding; the logits,
    hence every draw, are the reference's bits (a single differing draw would move a
    log-weight by far more than the tolerance), and the generator ends in the same state."""
    weights, biases, _ = params(sizes, dtype, scale=1.0)
    g = make_generator("cpu", 6)
    base = [torch.randn(n, generator=g, dtype=torch.float64).to(dtype) for n in sizes]
    odd = random_states(sizes, 17, dtype, seed=7)[1::2]
    betas = torch.linspace(0, 1, 40, dtype=torch.float64).tolist()
    g_op, g_ref = make_generator("cpu", 8), make_generator("cpu", 8)
    native = ops.dbm.dbm_ais(odd, weights, biases, base, betas, generator=g_op)
    plain = reference.dbm_ais(weights, biases, base, odd, betas, generator=g_ref)
    assert native.dtype == torch.float64 and native.shape == (17,)
    torch.testing.assert_close(native, plain, rtol=0, atol=1e-11)
    assert torch.equal(g_op.get_state(), g_ref.get_state())


def test_ais_weight_of_one_step_is_the_log_probability_ratio():
    """With two temperatures there is no transition: the log-weight is exactly
    log p*_1(h) - log p*_0(h) of the starting odd states, from the annealed log-probability."""
    sizes = SHAPES[1]
    weights, biases, _ = params(sizes)
    base = [torch.full((n,), 0.3, dtype=torch.float64) for n in sizes]
    states = random_states(sizes, 5, torch.float64, seed=9)
    log_w = ops.dbm.dbm_ais(states[1::2], weights, biases, base, [0.0, 1.0])
    expected = (reference.dbm_annealed_log_prob(weights, biases, base, states, 1.0)
                - reference.dbm_annealed_log_prob(weights, biases, base, states, 0.0))
    torch.testing.assert_close(log_w, expected, rtol=0, atol=1e-12)


def test_ops_pass_opcheck():
    weights, biases, _ = params(SHAPES[0], torch.float32)
    states = random_states(SHAPES[0], 6, torch.float32, seed=10)
    base = [torch.zeros_like(b) for b in biases]
    lib = torch.ops.dgm_fast
    torch.library.opcheck(lib.dbm_mean_field.default, (states[0], weights, biases, 5), {"damping": 0.2})
    # The AOT-dispatch checks compare a second run's outputs with the first's; a random op's
    # second run draws new bits from the advanced generator, so those two are left out for the
    # random ops (test_rbm_train_epoch.py does the same).
    random_op_checks = ("test_schema", "test_autograd_registration", "test_faketensor")
    torch.library.opcheck(lib.dbm_gibbs_chain.default, (states, weights, biases, 2),
                          {"generator": make_generator("cpu", 1)}, test_utils=random_op_checks)
    torch.library.opcheck(lib.dbm_ais.default, (states[1::2], weights, biases, base, [0.0, 0.5, 1.0]),
                          {"generator": make_generator("cpu", 1)}, test_utils=random_op_checks)


def test_ops_run_on_meta_tensors():
    sizes = [784, 500, 1000]
    weights = [torch.empty(a, b, device="meta") for a, b in zip(sizes, sizes[1:])]
    biases = [torch.empty(n, device="meta") for n in sizes]
    states = [torch.empty(100, n, device="meta") for n in sizes]
    means = ops.dbm.dbm_mean_field(states[0], weights, biases, 10)
    assert [m.shape for m in means] == [(100, 500), (100, 1000)] and means[0].is_meta
    chain = ops.dbm.dbm_gibbs_chain(states, weights, biases, 3)
    assert [s.shape for s in chain] == [(100, n) for n in sizes]
    assert ops.dbm.dbm_ais(states[1::2], weights, biases, biases, [0.0, 1.0]).shape == (100,)


def bad_cases():
    w, b, _ = params([6, 4, 3], torch.float32)
    s = random_states([6, 4, 3], 5, torch.float32, seed=0)
    base = [torch.zeros_like(x) for x in b]
    mf, chain, ais = ops.dbm.dbm_mean_field, ops.dbm.dbm_gibbs_chain, ops.dbm.dbm_ais
    return {
        "one layer of weights": (lambda: mf(s[0], w[:1], b[:2], 3), ValueError, "at least two layers of weights"),
        "bias count": (lambda: mf(s[0], w, b[:2], 3), ValueError, "need 3 biases"),
        "weight shape": (lambda: mf(s[0], [w[0], w[1].t()], b, 3), ValueError, r"weights\[1\] must be \[4, 3\]"),
        "weight dtype": (lambda: mf(s[0], [w[0].double(), w[1]], b, 3), TypeError, "weights"),
        "bias dtype": (lambda: mf(s[0], w, [b[0], b[1].double(), b[2]], 3), TypeError, r"biases\[1\] has dtype"),
        "integer model": (lambda: mf(s[0], [x.long() for x in w], [x.long() for x in b], 3), TypeError,
                          "must be float32"),
        "v width": (lambda: mf(s[1], w, b, 3), ValueError, r"must be a non-empty \[batch, 6\] matrix"),
        "empty v": (lambda: mf(s[0][:0], w, b, 3), ValueError, "non-empty"),
        "v dtype": (lambda: mf(s[0].double(), w, b, 3), TypeError, "v.0. has dtype"),
        "no iterations": (lambda: mf(s[0], w, b, 0), ValueError, "iterations must be at least 1"),
        "tol": (lambda: mf(s[0], w, b, 3, tol=0.0), ValueError, "tol must be finite and > 0"),
        "damping": (lambda: mf(s[0], w, b, 3, damping=1.0), ValueError, r"damping must be in \[0, 1\)"),
        "chain layers": (lambda: chain(s[:2], w, b, 1), ValueError, "states must hold 3 tensors"),
        "chain batch": (lambda: chain([s[0], s[1][:3], s[2]], w, b, 1), ValueError, "same batch size"),
        "chain steps": (lambda: chain(s, w, b, -1), ValueError, "steps must be >= 0"),
        "ais odd layers": (lambda: ais(s, w, b, base, [0.0, 1.0]), ValueError, "odd_states must hold 1 tensors"),
        "ais base count": (lambda: ais(s[1::2], w, b, base[:2], [0.0, 1.0]), ValueError, "base must hold one"),
        "ais base shape": (lambda: ais(s[1::2], w, b, [base[0], base[2], base[1]], [0.0, 1.0]), ValueError,
                           r"base\[1\] must be \[4\]"),
        "ais one beta": (lambda: ais(s[1::2], w, b, base, [0.0]), ValueError, "at least 2 inverse temperatures"),
        "ais beta range": (lambda: ais(s[1::2], w, b, base, [0.0, 1.5]), ValueError, r"lie in \[0, 1\]"),
        "ais nan beta": (lambda: ais(s[1::2], w, b, base, [0.0, float("nan")]), ValueError, r"lie in \[0, 1\]"),
    }


@pytest.mark.parametrize("name", sorted(bad_cases()))
def test_bad_arguments_get_a_clear_error(name):
    call, exc, message = bad_cases()[name]
    with pytest.raises(exc, match=message):
        call()
