"""rbm_train_epoch_, many training updates in one native call: bit for bit the Python loop of the
per-update ops it replaces (reference.rbm.rbm_train_epoch), at several thread counts; its checks,
and that bad input changes nothing."""

import pytest
import torch

from dgm_fast import ops, reference
from helpers import make_generator

KINDS = {  # name: (chains_hold or None for CD, k)
    "CD-1": (None, 1), "CD-3": (None, 3), "PCD-1": ("visible", 1), "PCD-2": ("visible", 2),
    "sklearn-PCD": ("hidden", 1),
}


def _setup(kind, dtype, nv=12, nh=7, n=53, n_chains=10, seed=0):
    """Parameters, momentum buffers, chains and data (53 rows: batches of 10 end with a short one)."""
    g = torch.Generator().manual_seed(seed)
    params = [0.3 * torch.randn(nv, nh, generator=g, dtype=dtype), 0.1 * torch.randn(nv, generator=g, dtype=dtype),
              0.1 * torch.randn(nh, generator=g, dtype=dtype)]
    buffers = [0.01 * torch.randn(p.shape, generator=g, dtype=dtype) for p in params]
    data = torch.bernoulli(torch.full((n, nv), 0.3, dtype=dtype), generator=g)
    hold, _ = KINDS[kind]
    chains = None if hold is None else torch.bernoulli(
        torch.full((n_chains, nv if hold == "visible" else nh), 0.5, dtype=dtype), generator=g)
    return params, buffers, chains, data


def _run_native(kind, params, buffers, chains, data, seed, **kw):
    hold, k = KINDS[kind]
    ops.rbm.rbm_train_epoch_(*params, *buffers, chains, data, 10, k=k, chains_hold=hold or "visible",
                             generator=make_generator("cpu", seed), **kw)
    return chains


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", list(KINDS))
def test_one_call_is_bit_identical_to_the_python_loop_of_per_update_ops(kind, dtype, threads):
    hyper = {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        params, buffers, chains, data = _setup(kind, dtype)
        native_chains = _run_native(kind, params, buffers, chains, data, seed=5, **hyper)
        r_params, r_buffers, r_chains, _ = _setup(kind, dtype)
        hold, k = KINDS[kind]
        r_chains = reference.rbm.rbm_train_epoch(r_params, r_buffers, r_chains, data, 10, k=k,
                                                 chains_hold=hold or "visible", generator=make_generator("cpu", 5),
                                                 **hyper)
    finally:
        torch.set_num_threads(previous)
    for a, b in zip(params + buffers, r_params + r_buffers):
        assert torch.equal(a, b)
    if chains is not None:
        assert torch.equal(native_chains, r_chains)
    assert not torch.equal(params[0], _setup(kind, dtype)[0][0])  # it did train


def test_the_generator_advances_as_the_loop_advances_it():
    """After the call the generator is where the Python loop leaves it, so that what follows
    (the next epoch, sampling) draws the same words either way."""
    params, buffers, chains, data = _setup("PCD-1", torch.float32)
    g = make_generator("cpu", 3)
    ops.rbm.rbm_train_epoch_(*params, *buffers, chains, data, 10, lr=0.1, momentum=0.5, generator=g)
    r_params, r_buffers, r_chains, _ = _setup("PCD-1", torch.float32)
    rg = make_generator("cpu", 3)
    reference.rbm.rbm_train_epoch(r_params, r_buffers, r_chains, data, 10, lr=0.1, momentum=0.5, generator=rg)
    assert torch.equal(g.get_state(), rg.get_state())


def test_it_bumps_version_counters_and_refuses_parameters_that_require_grad():
    params, buffers, chains, data = _setup("PCD-1", torch.float32)
    before = [t._version for t in params + buffers + [chains]]
    ops.rbm.rbm_train_epoch_(*params, *buffers, chains, data, 10, lr=0.1, momentum=0.5)
    assert all(t._version > b for t, b in zip(params + buffers + [chains], before))
    weight = params[0].clone().requires_grad_()
    with pytest.raises(RuntimeError, match=r"rbm_train_epoch_: weight requires grad.*detach\(\)"):
        ops.rbm.rbm_train_epoch_(weight, *params[1:], *buffers, chains, data, 10, lr=0.1, momentum=0.5)


def _bad(case):
    params, buffers, chains, data = _setup("PCD-1", torch.float32)
    kw = {"lr": 0.1, "momentum": 0.5, "k": 1, "chains_hold": "visible"}
    batch = 10
    if case == "nan_in_last_batch":
        data[-1, 0], match = float("nan"), "data contains NaN or Inf"
    elif case == "data_width":
        data, match = data[:, :5], r"data must be a non-empty \[n_samples, 12\] matrix"
    elif case == "empty_data":
        data, match = data[:0], "data must be a non-empty"
    elif case == "data_dtype":
        data, match = data.double(), "data has dtype Double but weight has Float"
    elif case == "batch_size":
        batch, match = 0, "batch_size must be at least 1"
    elif case == "k":
        kw["k"], match = 0, "k must be at least 1"
    elif case == "hidden_chains_k":
        kw.update(k=2, chains_hold="hidden")
        chains, match = torch.zeros(10, 7), "k must be 1"
    elif case == "chains_width":
        chains, match = torch.zeros(10, 7), r"chains holding visible states must be a non-empty \[n_chains, 12\]"
    elif case == "chains_hold":
        kw["chains_hold"], match = "both", "chains_hold must be 'visible' or 'hidden'"
    elif case == "negative_lr":
        kw["lr"], match = -0.1, "lr must be finite and non-negative"
    elif case == "buffer_shape":
        buffers[0], match = torch.zeros(7, 12), "momentum buffer must match"
    else:
        chains, match = data[:10], "chains share memory with data"
    return params, buffers, chains, data, batch, kw, match


@pytest.mark.parametrize("case", ["nan_in_last_batch", "data_width", "empty_data", "data_dtype", "batch_size", "k",
                                  "hidden_chains_k", "chains_width", "chains_hold", "negative_lr", "buffer_shape",
                                  "chains_alias_data"])
def test_bad_input_gets_a_clear_error_and_changes_nothing(case):
    params, buffers, chains, data, batch, kw, match = _bad(case)
    before = [t.clone() for t in params + buffers]
    with pytest.raises((ValueError, TypeError), match=match):
        ops.rbm.rbm_train_epoch_(*params, *buffers, chains, data, batch, **kw)
    for t, b in zip(params + buffers, before):
        assert torch.equal(t, b)


def test_opcheck_and_meta_tensors():
    params, buffers, chains, data = _setup("PCD-1", torch.float32, n=25)
    torch.library.opcheck(torch.ops.dgm_fast.rbm_train_epoch_.default, (*params, *buffers, chains, data, 10),
                          {"lr": 0.1, "momentum": 0.5, "generator": make_generator("cpu", 0)},
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))
    meta = [t.to("meta") for t in params + buffers + [chains, data]]
    ops.rbm.rbm_train_epoch_(*meta[:6], meta[6], meta[7], 10, lr=0.1, momentum=0.5)  # shapes only: no error
