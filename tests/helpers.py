"""Helpers shared by the tests (the fixtures are in conftest.py)."""

import pytest
import torch

import dgm_fast
from dgm_fast.evaluate.exact import _binary_states as states
from dgm_fast.models.dbm import DBM
from dgm_fast.models.rbm import RBM

HAS_CUDA = torch.cuda.is_available() and dgm_fast.build_info()["cuda"]

requires_cuda = pytest.mark.skipif(
    not HAS_CUDA, reason="needs a GPU and a build of dgm_fast with CUDA kernels"
)

DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])


def make_generator(device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def random_dbm(sizes, scale=1.5, bias_scale=0.5, seed=0, dtype=torch.float64) -> DBM:
    """A DBM with N(0, scale^2) weights and N(0, bias_scale^2) biases: large enough that its law
    is far from uniform."""
    g = torch.Generator().manual_seed(seed)
    dbm = DBM(sizes, generator=g, dtype=torch.float64)
    with torch.no_grad():
        for w in dbm.weights:
            w.copy_(torch.randn(w.shape, generator=g, dtype=torch.float64) * scale)
        for b in dbm.biases:
            b.copy_(torch.randn(b.shape, generator=g, dtype=torch.float64) * bias_scale)
    return dbm.to(dtype)


def random_rbm(nv, nh, visible="bernoulli", hidden="bernoulli", scale=1.0, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(nv, nh, visible=visible, hidden=hidden, learn_std=visible == "gaussian", init_std=scale, generator=g)
    rbm = rbm.to(dtype)
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.randn(nv, generator=g, dtype=dtype))
        rbm.hidden_bias.copy_(torch.randn(nh, generator=g, dtype=dtype))
        if visible == "gaussian":
            rbm.visible_log_std.copy_(0.3 * torch.randn(nv, generator=g, dtype=dtype))
    return rbm


def exact_visible_distribution(rbm):
    v = states(rbm.n_visible, 0, 1 << rbm.n_visible, torch.float64, "cpu")
    with torch.no_grad():
        logp = -rbm.free_energy(v) - dgm_fast.evaluate.exact_log_partition(rbm)
    return v, logp.exp()


def empirical_distribution(samples, n_visible):
    codes = (samples.round().long() << torch.arange(n_visible)).sum(1)
    return torch.bincount(codes, minlength=1 << n_visible).double() / samples.shape[0]


def outcome(call):
    """What a call gives, for comparing two ways of making it: ``(exception class, first line of
    its message)``, or ``("ok", [(shape, dtype) of each output])``."""
    try:
        out = call()
    except Exception as exc:  # noqa: BLE001  (the class is part of what is compared)
        return type(exc), str(exc).split("\n")[0]
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return "ok", [(tuple(t.shape), t.dtype) for t in outs]
