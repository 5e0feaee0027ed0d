"""The RBM ops (chain, CD gradient, fused SGD update) against their plain-PyTorch definitions
and the Python loops they replace; their argument checks."""

import pytest
import torch

from dgm_fast import ops, reference
from helpers import make_generator, random_rbm


@pytest.mark.parametrize("visible,hidden", [("bernoulli", "bernoulli"), ("gaussian", "bernoulli"), ("bernoulli", "nrelu")])
def test_native_chain_is_bit_identical_to_the_python_loop(visible, hidden):
    rbm = random_rbm(7, 5, visible, hidden, scale=0.5, dtype=torch.float32)
    v0 = rbm.sample(64, steps=1, generator=make_generator("cpu", 9))
    native = rbm.gibbs(v0, steps=5, generator=make_generator("cpu", 4))
    g = make_generator("cpu", 4)
    v = v0
    with torch.no_grad():
        for _ in range(5):
            v = rbm.sample_visible(rbm.sample_hidden(v, generator=g), generator=g)
    assert torch.equal(native, v)


def test_cd_gradient_op_equals_autograd_of_free_energy():
    for visible in ("bernoulli", "gaussian"):
        rbm = random_rbm(6, 4, visible)
        g = torch.Generator().manual_seed(6)
        vd = torch.bernoulli(torch.full((9, 6), 0.5, dtype=torch.float64), generator=g)
        vm = torch.bernoulli(torch.full((13, 6), 0.5, dtype=torch.float64), generator=g)
        if visible == "gaussian":
            vd, vm = vd * 2 - 0.5, vm * 3 - 1
        wd = 0.01
        loss = rbm.free_energy(vd).mean() - rbm.free_energy(vm).mean() + 0.5 * wd * (rbm.weight**2).sum()
        ref = torch.autograd.grad(loss, (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
        with torch.no_grad():
            ours = ops.rbm.rbm_cd_gradient(
                vd, rbm.hidden_probs(vd), vm, rbm.hidden_probs(vm), rbm.weight, weight_decay=wd,
                visible_log_std=rbm.visible_log_std,
            )
        closed_form = reference.rbm.rbm_cd_gradient(
            vd, rbm.hidden_probs(vd), vm, rbm.hidden_probs(vm), rbm.weight, weight_decay=wd,
            visible_log_std=rbm.visible_log_std,
        )
        for a, b, c in zip(ours, ref, closed_form):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
            torch.testing.assert_close(c, b, rtol=1e-12, atol=1e-13)


def test_rbm_ops_reject_bad_arguments():
    W, b, c = torch.zeros(6, 4), torch.zeros(6), torch.zeros(4)
    with pytest.raises(ValueError, match="visible units must be 'bernoulli' or 'gaussian'"):
        ops.rbm.rbm_gibbs_chain(torch.zeros(2, 6), W, b, c, 1, visible="poisson")
    with pytest.raises(ValueError, match="beta must hold one inverse temperature per row"):
        ops.rbm.rbm_gibbs_chain(torch.zeros(2, 6), W, b, c, 1, beta=torch.ones(3))
    with pytest.raises(ValueError, match="non-empty"):
        ops.rbm.rbm_cd_gradient(torch.zeros(0, 6), torch.zeros(0, 4), torch.zeros(2, 6), torch.zeros(2, 4), W)



def _phases(nv, nh, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    vd = torch.bernoulli(torch.full((8, nv), 0.4, dtype=dtype), generator=g)
    vm = torch.bernoulli(torch.full((6, nv), 0.6, dtype=dtype), generator=g)
    return vd, torch.rand(8, nh, generator=g, dtype=dtype), vm, torch.rand(6, nh, generator=g, dtype=dtype)


@pytest.mark.parametrize("layout", ["contiguous", "strided", "gaussian"])
def test_sgd_update_op_is_sgd_with_momentum_on_the_cd_gradient(layout):
    # float64, so that the fused arithmetic (products accumulated into the buffer, one pass for
    # the rest) must match the spelled-out rule to rounding. "contiguous" takes the CPU kernel's
    # fused pass, "strided" and "gaussian" the generic composite (the one CUDA runs).
    nv, nh = 7, 5
    g = torch.Generator().manual_seed(3)
    params = [torch.randn(nv, nh, generator=g, dtype=torch.float64), torch.randn(nv, generator=g, dtype=torch.float64),
              torch.randn(nh, generator=g, dtype=torch.float64)]
    buffers = [torch.randn_like(p) for p in params]
    vd, hd, vm, hm = _phases(nv, nh, torch.float64)
    log_std = torch.randn(nv, generator=g, dtype=torch.float64) * 0.3 if layout == "gaussian" else None
    if layout == "strided":
        hd = hd.t().contiguous().t()
    expected_params, expected_buffers = reference.rbm.rbm_sgd_update(
        params, buffers, vd, hd, vm, hm, lr=0.1, momentum=0.9, weight_decay=0.01, visible_log_std=log_std)
    ops.rbm.rbm_sgd_update_(*params, *buffers, vd, hd, vm, hm, lr=0.1, momentum=0.9, weight_decay=0.01,
                                        visible_log_std=log_std)
    for got, want in zip(params + buffers, expected_params + expected_buffers):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_sgd_update_op_checks_and_opcheck():
    nv, nh = 6, 4
    params = [torch.zeros(nv, nh), torch.zeros(nv), torch.zeros(nh)]
    buffers = [torch.zeros_like(p) for p in params]
    vd, hd, vm, hm = _phases(nv, nh, torch.float32)
    torch.library.opcheck(torch.ops.dgm_fast.rbm_sgd_update_.default,
                          (*params, *buffers, vd, hd, vm, hm), {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.01})
    with pytest.raises(ValueError, match="momentum buffer must match"):
        ops.rbm.rbm_sgd_update_(*params, torch.zeros(nh, nv), *buffers[1:], vd, hd, vm, hm, lr=0.1, momentum=0.5)
    with pytest.raises(ValueError, match="non-negative"):
        ops.rbm.rbm_sgd_update_(*params, *buffers, vd, hd, vm, hm, lr=-1.0, momentum=0.5)
    with pytest.raises(ValueError, match="v_model must be"):
        ops.rbm.rbm_sgd_update_(*params, *buffers, vd, hd, vm[:, :3], hm, lr=0.1, momentum=0.5)


# ---- bad input (the bad-input sweep's findings on the RBM ops) ---------------------------------


def _sgd_args(nv=6, nh=4, seed=0):
    params = [torch.randn(nv, nh, dtype=torch.float64), torch.randn(nv, dtype=torch.float64),
              torch.randn(nh, dtype=torch.float64)]
    buffers = [torch.zeros_like(p) for p in params]
    return params, buffers, _phases(nv, nh, torch.float64, seed)


def test_sgd_update_bumps_the_version_counters_as_in_place_ops_do():
    # A loss formed before the update must refuse to backpropagate through the changed weights,
    # as it does after torch.optim.SGD.step().
    rbm = random_rbm(6, 4)
    v = torch.bernoulli(torch.full((5, 6), 0.5, dtype=torch.float64))
    reference_model = random_rbm(6, 4)  # the same, stepped by torch's own optimizer
    torch_loss = reference_model.free_energy(v).mean() + (reference_model.weight ** 2).sum()
    with torch.no_grad():
        reference_model.weight.sub_(0.1)  # what SGD.step does to it: an in-place update
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch_loss.backward()

    loss = rbm.free_energy(v).mean() + (rbm.weight ** 2).sum()  # the L2 term saves the weight
    params = [rbm.weight, rbm.visible_bias, rbm.hidden_bias]
    before = [p._version for p in params]
    buffers = [torch.zeros_like(p) for p in params]
    vd, hd, vm, hm = _phases(6, 4, torch.float64)
    ops.rbm.rbm_sgd_update_(*(p.detach() for p in params), *buffers, vd, hd, vm, hm, lr=0.1, momentum=0.5)
    assert all(p._version > b for p, b in zip(params, before))
    assert all(b._version > 0 for b in buffers)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_sgd_update_refuses_parameters_that_require_grad():
    rbm = random_rbm(6, 4)
    buffers = [torch.zeros_like(p) for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
    vd, hd, vm, hm = _phases(6, 4, torch.float64)
    with pytest.raises(RuntimeError, match=r"rbm_sgd_update_: weight requires grad.*detach\(\)"):
        ops.rbm.rbm_sgd_update_(rbm.weight, rbm.visible_bias, rbm.hidden_bias, *buffers, vd, hd, vm, hm,
                                lr=0.1, momentum=0.5)
    with torch.no_grad():  # as an optimizer step does it
        ops.rbm.rbm_sgd_update_(rbm.weight, rbm.visible_bias, rbm.hidden_bias, *buffers, vd, hd, vm, hm,
                                lr=0.1, momentum=0.5)


@pytest.mark.parametrize("case", ["buffer_is_weight", "data_is_a_bias_view", "two_buffers_share_memory"])
def test_sgd_update_refuses_aliased_arguments(case):
    (w, b, c), (mw, mb, mc), (vd, hd, vm, hm) = _sgd_args()
    if case == "buffer_is_weight":
        mw, match = w, "weight_momentum and weight share memory"
    elif case == "data_is_a_bias_view":
        vd, match = b.expand(8, 6), "v_data and visible_bias share memory"
    else:
        shared = torch.zeros(6 + 4, dtype=torch.float64)
        mb, mc, match = shared[:6], shared[2:6], "hidden_momentum and visible_momentum share memory"
    with pytest.raises(ValueError, match=match):
        ops.rbm.rbm_sgd_update_(w, b, c, mw, mb, mc, vd, hd, vm, hm, lr=0.1, momentum=0.5)


@pytest.mark.parametrize("name", ["lr", "momentum", "weight_decay"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0])
def test_sgd_update_refuses_non_finite_or_negative_hyperparameters(name, value):
    (w, b, c), (mw, mb, mc), (vd, hd, vm, hm) = _sgd_args()
    kwargs = {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.0, name: value}
    with pytest.raises(ValueError, match=f"{name} must be finite and non-negative"):
        ops.rbm.rbm_sgd_update_(w, b, c, mw, mb, mc, vd, hd, vm, hm, **kwargs)


def test_cd_gradient_checks_its_hyperparameters_as_the_chain_does():
    w = torch.zeros(6, 4)
    vd, hd, vm, hm = _phases(6, 4, torch.float32)
    with pytest.raises(ValueError, match="matmul_dtype must be bfloat16 or float16, got Int"):
        ops.rbm.rbm_cd_gradient(vd, hd, vm, hm, w, matmul_dtype=torch.int32)
    for bad in (float("nan"), float("inf"), -0.1):
        with pytest.raises(ValueError, match="weight_decay must be finite and non-negative"):
            ops.rbm.rbm_cd_gradient(vd, hd, vm, hm, w, weight_decay=bad)
    with pytest.raises(ValueError, match=r"visible_log_std must be \[6\]"):
        ops.rbm.rbm_cd_gradient(vd, hd, vm, hm, w, visible_log_std=torch.zeros(5))
    with pytest.raises(TypeError, match="visible_log_std has dtype Double but weight has Float"):
        ops.rbm.rbm_cd_gradient(vd, hd, vm, hm, w, visible_log_std=torch.zeros(6, dtype=torch.float64))


def test_chain_and_ais_name_their_optional_tensors():
    W, b, c = torch.zeros(6, 4), torch.zeros(6), torch.zeros(4)
    with pytest.raises(TypeError, match="rbm_gibbs_chain: visible_log_std has dtype Double but v has Float"):
        ops.rbm.rbm_gibbs_chain(torch.zeros(2, 6), W, b, c, 1, visible="gaussian",
                                visible_log_std=torch.zeros(6, dtype=torch.float64))
    with pytest.raises(TypeError, match="rbm_gibbs_chain: beta has dtype Double but v has Float"):
        ops.rbm.rbm_gibbs_chain(torch.zeros(2, 6), W, b, c, 1, beta=torch.ones(2, dtype=torch.float64))
    with pytest.raises(TypeError, match="rbm_ais: base_visible_bias has dtype Double but v has Float"):
        ops.rbm.rbm_ais(torch.zeros(2, 6), W, b, c, torch.zeros(6, dtype=torch.float64), [0.0, 1.0])
    with pytest.raises(ValueError, match=r"rbm_ais: base_visible_bias must be \[6\]"):
        ops.rbm.rbm_ais(torch.zeros(2, 6), W, b, c, torch.zeros(5), [0.0, 1.0])
