"""Outputs recorded before the package was reorganised (the model-zoo layout), held bit for bit.

``tests/golden_outputs.pt`` was written by ``python tests/test_golden_outputs.py --record``
at the commit that added this file, before any code moved; the cases below have not changed
since, only the imports at the top follow the code to its new home. Each case seeds its own
generators, so the outputs are a pure function of the code. Re-recorded once, on purpose: when
the MMD began centring its inputs (the bad-input issue: precision far from the origin), its 15
entries moved by rounding (at most 3e-8 in float32, 4e-16 in float64); nothing else changed.
And the scikit-learn case alone, once, when ``BernoulliRBM.fit`` moved its updates into the native
epoch (the fused SGD update's two products instead of the stacked gradient's one): its floats
moved by rounding (at most 2e-14; the parameters 1e-16), its samples not at all. And all of it
once more, on an AMD EPYC, when exp, log, sin and cos began using fused multiply-adds
(``pm::fma_rn``, the directed-models issue): against the Intel recording, 27 float entries moved,
by at most 9e-6 relative in float32 and 1.3e-13 in float64 (the new rounding of the functions and
this CPU's matrix products together); no sample, count or integer changed. And the IWAE
bound's two gradient entries alone, on the same AMD EPYC, when the gradient moved into the forward
pass (``iwae_bound_with_grad``: exp(w - m_t) exp(m_t - m) / s, one exp per weight, in place of
the backward op's exp(w - lse)): by at most 1.2e-6 relative in float32 and 2.7e-15 in float64;
the bounds and every other entry kept their bits.

On the CPU model that recorded them every tensor must be equal bit for bit. On another CPU,
ATen's matrix products may sum in another order (MKL picks its kernels by CPU), so float values
are held to 1e-9 relative in float64 and 1e-4 in float32, and samples must still agree: most
models run in float64, where a product that moves in its last bit flips a Bernoulli draw with
probability about 1e-7.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dgm_fast
from dgm_fast import evaluate, ops
from dgm_fast.models.rbm import RBM, train
from dgm_fast.ops import elbo as losses_elbo
from dgm_fast.ops import gan as losses_gan
from dgm_fast.ops import mmd as losses_mmd
from dgm_fast.sklearn import BernoulliRBM

GOLDEN = Path(__file__).parent / "golden_outputs.pt"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rbm(n_visible: int, n_hidden: int, dtype=torch.float64, seed: int = 1) -> RBM:
    rbm = RBM(n_visible, n_hidden, generator=_gen(seed), dtype=dtype, init_std=0.3)
    with torch.no_grad():
        rbm.visible_bias.copy_(torch.randn(n_visible, generator=_gen(seed + 1), dtype=dtype) * 0.5)
        rbm.hidden_bias.copy_(torch.randn(n_hidden, generator=_gen(seed + 2), dtype=dtype) * 0.5)
    return rbm


def _data(n: int, v: int, dtype=torch.float64, seed: int = 3) -> torch.Tensor:
    return torch.bernoulli(torch.rand(n, v, generator=_gen(seed), dtype=dtype) * 0.8 + 0.1, generator=_gen(seed + 1))


def _params(rbm: RBM) -> dict:
    return {name: p.detach().clone() for name, p in rbm.named_parameters()}


def case_samplers() -> dict:
    logits = torch.randn(37, 19, generator=_gen(10))
    bias = torch.randn(19, generator=_gen(11))
    sample, probs = ops.bernoulli_logits(logits, bias, generator=_gen(12), return_probs=True)
    mu, log_var = torch.randn(33, 7, generator=_gen(13)), torch.randn(33, 7, generator=_gen(14))
    z, eps = ops.normal_reparam(mu, log_var, generator=_gen(15))
    z64, eps64 = ops.normal_reparam(mu.double(), log_var.double(), generator=_gen(15))
    words = ops.uniform_bits([5, 9], generator=_gen(16))
    return {"sample": sample, "probs": probs, "z": z, "eps": eps, "z64": z64, "eps64": eps64,
            "words": words.to(torch.int64)}


def case_chain() -> dict:
    out = {}
    for dtype in (torch.float64, torch.float32):
        rbm = _rbm(20, 12, dtype)
        v = _data(16, 20, dtype)
        h0, vk, hk = rbm.chain(v, 5, generator=_gen(20))
        out[str(dtype)] = {"h0_mean": h0, "v": vk, "h_mean": hk,
                           "sample": rbm.sample(8, steps=25, generator=_gen(21))}
    return out


def case_cd_step() -> dict:
    out = {}
    for name, make_opt in (("sgd_momentum_fused", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5)),
                           ("adam", lambda p: torch.optim.Adam(p, lr=0.01))):
        rbm = _rbm(20, 12)
        opt = make_opt(rbm.parameters())
        v = _data(16, 20)
        negatives = [train.cd_step(rbm, v, opt, train.CD(2), weight_decay=1e-3, generator=_gen(30))
                     for _ in range(3)]
        out[name] = {"params": _params(rbm), "negatives": torch.stack(negatives)}
    return out


def case_fit() -> dict:
    """A PCD epoch, FPCD and PT updates, and CD with a schedule and a sparsity target."""
    data = _data(50, 20, seed=40)
    out = {}
    runs = {
        "pcd_epoch": dict(method="pcd", k=1, epochs=1, batch_size=10, lr=0.05),
        "fpcd": dict(method="fpcd", k=1, epochs=2, batch_size=25, lr=0.05, n_chains=8),
        "pt": dict(method="pt", k=1, epochs=2, batch_size=25, lr=0.05, n_chains=6,
                   method_options={"betas": [1.0, 0.9, 0.8]}),
        "cd_linear_sparsity": dict(method="cd", k=1, epochs=2, batch_size=10, lr=0.1,
                                   lr_schedule="linear", sparsity_target=0.2),
    }
    for name, kwargs in runs.items():
        rbm = _rbm(20, 12)
        history = train.fit_rbm(rbm, data, generator=_gen(41), progress=False, **kwargs)
        out[name] = {"params": _params(rbm),
                     "reconstruction_error": torch.tensor([r["reconstruction_error"] for r in history],
                                                          dtype=torch.float64)}
    return out


def case_evaluate() -> dict:
    rbm = _rbm(20, 10)
    data = _data(30, 20, seed=50)
    betas = torch.linspace(0, 1, 300, dtype=torch.float64)
    forward = evaluate.ais(rbm, n_runs=16, betas=betas, data=data, generator=_gen(51))
    backward = evaluate.reverse_ais(rbm, n_runs=16, betas=betas, data=data, burn_in=20, generator=_gen(52))
    return {"ais_log_weights": forward.log_weights, "reverse_ais_log_weights": backward.log_weights,
            "exact_log_partition": evaluate.exact_log_partition(rbm),
            "pseudo_log_likelihood": evaluate.pseudo_log_likelihood(rbm, data),
            "reconstruction_error": evaluate.reconstruction_error(rbm, data)}


def _with_grads(fn, *tensors) -> dict:
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    outputs = fn(*leaves)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    sum(o for o in outputs).backward()
    return {"values": torch.stack([o.detach() for o in outputs]),
            "grads": [t.grad for t in leaves]}


def case_losses() -> dict:
    out = {}
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(12, 30, generator=_gen(60), dtype=dtype)
        recon = torch.randn(12, 30, generator=_gen(61), dtype=dtype) * 3
        mu, log_var = torch.randn(12, 5, generator=_gen(62), dtype=dtype), torch.randn(12, 5, generator=_gen(63), dtype=dtype)
        for likelihood in ("bernoulli", "gaussian"):
            out[f"elbo_{likelihood}_{dtype}"] = _with_grads(
                lambda r, m, lv: losses_elbo.gaussian_elbo(x, r, m, lv, likelihood=likelihood), recon, mu, log_var)
        out[f"elbo_nograd_{dtype}"] = losses_elbo.gaussian_elbo(x, recon, mu, log_var, reduction="none")
        log_w = torch.randn(9, 12, generator=_gen(64), dtype=dtype) * 4
        out[f"iwae_{dtype}"] = _with_grads(lambda w: losses_elbo.iwae_bound(w).sum(), log_w)
        real, fake = torch.randn(40, generator=_gen(65), dtype=dtype) * 5, torch.randn(40, generator=_gen(66), dtype=dtype) * 5
        for kind in losses_gan.KINDS:
            out[f"gan_{kind}_{dtype}"] = _with_grads(lambda r, f: losses_gan.gan_losses(r, f, kind), real, fake)
        a, b = torch.randn(20, 6, generator=_gen(67), dtype=dtype), torch.randn(15, 6, generator=_gen(68), dtype=dtype) + 0.5
        for unbiased in (True, False):
            out[f"mmd_{unbiased}_{dtype}"] = _with_grads(
                lambda p, q: losses_mmd.mmd(p, q, bandwidths=(0.5, 1.0, 3.0), unbiased=unbiased), a, b)
            out[f"mmd_nograd_{unbiased}_{dtype}"] = losses_mmd.mmd(a, b, bandwidths=(0.5, 1.0, 3.0), unbiased=unbiased)
    return out


def case_sklearn() -> dict:
    X = _data(60, 16, seed=70).numpy()
    model = BernoulliRBM(n_components=8, learning_rate=0.1, batch_size=10, n_iter=3, random_state=7).fit(X)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return {"components": as_tensor(model.components_), "intercept_hidden": as_tensor(model.intercept_hidden_),
            "intercept_visible": as_tensor(model.intercept_visible_), "h_samples": as_tensor(model.h_samples_),
            "transform": as_tensor(model.transform(X)), "score_samples": as_tensor(model.score_samples(X))}


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _flatten(value, f"{prefix}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _flatten(value, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def _recorded() -> dict:
    return torch.load(GOLDEN, weights_only=True)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


@pytest.fixture
def recorded_threads():
    golden = _recorded()
    threads = torch.get_num_threads()
    # The native kernels give the same bits at any thread count; ATen's parallel sums do not all.
    torch.set_num_threads(golden["num_threads"])
    yield golden
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_outputs_as_before_the_move(name, recorded_threads):
    golden = recorded_threads
    same_cpu = (golden["cpu_isa"], golden["cpu_model"]) == (dgm_fast.build_info()["cpu_isa"], _cpu_model())
    now = dict(_flatten(CASES[name]()))
    then = dict(_flatten(golden["cases"][name]))
    assert now.keys() == then.keys()
    for key, expected in then.items():
        actual = now[key]
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, key
        if same_cpu or not actual.is_floating_point():
            assert torch.equal(actual, expected), f"{name}{key} differs from the recorded output"
        else:
            tol = 1e-9 if actual.dtype == torch.float64 else 1e-4
            torch.testing.assert_close(actual, expected, rtol=tol, atol=tol, msg=f"{name}{key}")


def record() -> None:
    torch.set_num_threads(2)
    info = dgm_fast.build_info()
    golden = {"cpu_isa": info["cpu_isa"], "cpu_model": _cpu_model(), "num_threads": 2, "torch": str(torch.__version__),
              "cases": {name: fn() for name, fn in CASES.items()}}
    GOLDEN.parent.mkdir(exist_ok=True)
    torch.save(golden, GOLDEN)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes) on {_cpu_model()}, cpu_isa={info['cpu_isa']}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_golden_outputs.py --record")
    record()
