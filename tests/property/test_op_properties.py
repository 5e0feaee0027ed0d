"""Property-based tests of every public op, with hypothesis.

- Every op against its plain-PyTorch reference, on generated shapes (empty ones included),
  dtypes, layouts (contiguous, transposed, sliced with a step, expanded) and extreme values.
- Every op's fake kernel against its eager kernel on generated arguments, good and bad: the same
  accept or reject (exception class and message), the same output shapes and dtypes.
- The in-place op's version counters.

Profiles: ``ci`` (the default: 40 examples per test, well inside CI's time) and ``nightly``
(1,000 examples per test): ``HYPOTHESIS_PROFILE=nightly python -m pytest tests/property``.
Every model added later goes through the same suite (CONTRIBUTING.md).
"""

import math
import os

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dgm_fast import losses, ops, reference  # noqa: E402
from helpers import outcome  # noqa: E402

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FLOATS = [torch.float32, torch.float64]
LAYOUTS = ["contiguous", "transposed", "strided", "expanded"]


@st.composite
def tensors(draw, dims=st.integers(1, 3), max_side=6, dtype=None, extreme=True, min_side=0):
    """A float tensor of a generated shape, dtype and memory layout, with generated values
    (standard normals scaled by up to 1e3, optionally +-inf and huge ones sprinkled in)."""
    ndim = draw(dims)
    shape = [draw(st.integers(min_side, max_side)) for _ in range(ndim)]
    dtype = dtype or draw(st.sampled_from(FLOATS))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1.0, 10.0, 1e3]))
    layout = draw(st.sampled_from(LAYOUTS))
    g = torch.Generator().manual_seed(seed)
    if layout == "expanded" and ndim >= 2 and shape[0] > 0:
        base = torch.randn([1] + shape[1:], generator=g, dtype=torch.float64) * scale
        t = base.expand(shape)
    else:
        t = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    if extreme and t.numel() and draw(st.booleans()):
        flat = t.contiguous().reshape(-1)
        idx = torch.randint(flat.numel(), (min(3, flat.numel()),), generator=g)
        flat[idx] = torch.tensor([float("inf"), -float("inf"), 1e30], dtype=torch.float64)[: idx.numel()]
        t = flat.reshape(shape)
    t = t.to(dtype)
    if layout == "transposed" and ndim >= 2:
        t = t.transpose(0, -1).contiguous().transpose(0, -1)
    elif layout == "strided" and ndim >= 1:
        t = torch.repeat_interleave(t, 2, dim=-1)[..., ::2]
    return t


def words_of(n, seed):
    return ops.uniform_bits(n, generator=torch.Generator().manual_seed(seed)).to(torch.int64)


# ---- ops against their references ---------------------------------------------------------------


@given(logits=tensors(), seed=st.integers(0, 2**62), with_bias=st.booleans())
def test_bernoulli_logits_is_its_reference(logits, seed, with_bias):
    bias = torch.linspace(-2, 2, logits.shape[-1], dtype=logits.dtype) if with_bias else None
    sample, probs = ops.bernoulli_logits(logits, bias, generator=torch.Generator().manual_seed(seed),
                                         return_probs=True)
    ref_sample, ref_probs = reference.samplers.bernoulli_logits(logits, bias, words_of(logits.numel(), seed))
    assert sample.shape == logits.shape and sample.dtype == logits.dtype
    torch.testing.assert_close(probs, ref_probs, rtol=2.5e-7, atol=1e-30)
    # the draws agree wherever the word is not within rounding distance of the threshold
    words = words_of(logits.numel(), seed).reshape(logits.shape).double()
    clear = (words - ref_probs.double() * 2.0**32).abs() > 2.0**32 * 1e-6
    assert torch.equal(sample[clear], ref_sample[clear])


@given(logits=tensors(), seed=st.integers(0, 2**62))
def test_bernoulli_sample_log_prob_is_its_reference(logits, seed):
    sample, log_prob = ops.bernoulli.bernoulli_sample_log_prob(logits, generator=torch.Generator().manual_seed(seed))
    words = words_of(logits.numel(), seed)
    ref_sample, ref_log_prob = reference.bernoulli.bernoulli_sample_log_prob(logits, words)
    assert sample.shape == logits.shape and log_prob.shape == logits.shape[:-1]
    # the draws agree wherever the word is not within rounding distance of the threshold, and so
    # do the log-probabilities of the rows where they all do
    p = torch.sigmoid(logits.double())
    clear = (words.reshape(logits.shape).double() - p * 2.0**32).abs() > 2.0**32 * 1e-6
    assert torch.equal(sample[clear], ref_sample[clear])
    rows = clear.all(-1)
    tol = 1e-12 if logits.dtype == torch.float64 else 2e-6
    scale = 1 + logits.double().abs().nan_to_num(posinf=0.0).sum(-1)
    assert torch.all((log_prob.double() - ref_log_prob.double())[rows].abs() <= tol * scale[rows])
    assert torch.isfinite(log_prob).all()


@given(logits=tensors(extreme=False), seed=st.integers(0, 2**31 - 1))
def test_bernoulli_log_prob_is_its_reference(logits, seed):
    x = (torch.rand(logits.shape, generator=torch.Generator().manual_seed(seed)) < 0.5).to(logits.dtype)
    ours = ops.bernoulli.bernoulli_log_prob(x, logits)
    ref = reference.bernoulli.bernoulli_log_prob(x.double(), logits.double())
    tol = 1e-12 if logits.dtype == torch.float64 else 2e-6
    torch.testing.assert_close(ours.double(), ref, rtol=tol, atol=tol * (1 + logits.double().abs().sum().item()))


@given(mu=tensors(extreme=False), seed=st.integers(0, 2**62))
def test_normal_reparam_is_its_reference(mu, seed):
    log_var = torch.full_like(mu, 0.5).contiguous()
    z, eps = ops.normal_reparam(mu, log_var, generator=torch.Generator().manual_seed(seed))
    per_block = 2 if mu.dtype == torch.float64 else 4
    n_words = 4 * ((mu.numel() + per_block - 1) // per_block)
    ref_eps = reference.samplers.normals_from_words(words_of(n_words, seed), mu.numel(), mu.dtype)
    tol = dict(rtol=1e-12, atol=1e-12) if mu.dtype == torch.float64 else dict(rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(eps.double().reshape(-1), ref_eps, **tol)
    ref_z = reference.samplers.normal_reparam(mu.double(), log_var.double(), eps.double())
    torch.testing.assert_close(z.double(), ref_z, rtol=tol["rtol"], atol=tol["atol"] * (1 + mu.abs().max().item() if mu.numel() else 1))


@given(x=tensors(dims=st.just(2), extreme=False, min_side=1), latents=st.integers(1, 4),
       likelihood=st.sampled_from(["bernoulli", "gaussian"]), reduction=st.sampled_from(["mean", "sum", "none"]))
def test_gaussian_elbo_is_its_reference(x, latents, likelihood, reduction):
    g = torch.Generator().manual_seed(x.numel())
    data = torch.rand(x.shape, generator=g, dtype=torch.float64).to(x.dtype)
    mu = torch.randn(x.shape[0], latents, generator=g, dtype=torch.float64).to(x.dtype)
    log_var = torch.randn(x.shape[0], latents, generator=g, dtype=torch.float64).to(x.dtype)
    ours = losses.gaussian_elbo(data, x, mu, log_var, likelihood=likelihood, reduction=reduction)
    ref = reference.elbo.gaussian_elbo(data.double(), x.double(), mu.double(), log_var.double(),
                                       likelihood=likelihood, reduction=reduction)
    tol = 1e-12 if x.dtype == torch.float64 else 1e-5
    torch.testing.assert_close(ours.double(), ref, rtol=tol, atol=tol * (1 + ref.abs().max().item()))


@given(log_w=tensors(dims=st.just(2), min_side=1))
def test_iwae_bound_is_its_reference(log_w):
    finite = log_w.nan_to_num(posinf=50.0, neginf=-math.inf).clamp(max=1e6)
    ours = losses.iwae_bound(finite)
    ref = reference.elbo.iwae_bound(finite.double())
    tol = 1e-12 if log_w.dtype == torch.float64 else 1e-5
    torch.testing.assert_close(ours.double(), ref, rtol=tol, atol=tol, equal_nan=True)


@given(real=tensors(min_side=1), fake=tensors(min_side=1), kind=st.sampled_from(["minimax", "non_saturating", "reversed"]))
def test_gan_losses_are_their_reference(real, fake, kind):
    fake = fake.to(real.dtype)
    d, g = losses.gan_losses(real, fake, kind)
    rd, rg = reference.gan.gan_losses(real.double(), fake.double(), kind)
    tol = 1e-12 if real.dtype == torch.float64 else 2e-6
    torch.testing.assert_close(d.double(), rd.double(), rtol=tol, atol=tol, equal_nan=True)
    torch.testing.assert_close(g.double(), rg.double(), rtol=tol, atol=tol, equal_nan=True)


@given(x=tensors(dims=st.just(2), extreme=False, min_side=2, max_side=7), offset=st.sampled_from([0.0, 100.0, -1e4]),
       unbiased=st.booleans())
def test_mmd_is_the_direct_pairwise_formula(x, offset, unbiased):
    # In float32 a centred squared distance carries an absolute error of about |x|^2 2^-24: with
    # a spread of 1,000 that is 0.1, which moves a kernel of bandwidth 1 (ops/mmd.py says so).
    assume(x.dtype == torch.float64 or x.abs().max() < 100)
    y = (x.flip(0) * 0.5 + 1.0).contiguous()
    xs, ys = x + offset, y + offset  # the inputs the op gets, rounded to their dtype
    ours = losses.mmd(xs, ys, (1.0, 4.0), unbiased=unbiased)
    ref = reference.mmd.direct_mmd(xs.double(), ys.double(), (1.0, 4.0), unbiased=unbiased)
    tol = 1e-10 if x.dtype == torch.float64 else 2e-4
    torch.testing.assert_close(ours.double(), ref, rtol=tol, atol=tol)


# ---- fake kernels against eager kernels ---------------------------------------------------------

ANY_DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.int32]


@st.composite
def raw_tensors(draw, max_dims=3):
    shape = [draw(st.integers(0, 4)) for _ in range(draw(st.integers(0, max_dims)))]
    dtype = draw(st.sampled_from(ANY_DTYPES))
    return lambda device: torch.zeros(shape, dtype=dtype, device=device)


OPS = {
    "bernoulli_logits": (2, lambda a: torch.ops.dgm_fast.bernoulli_logits(a[0], a[1], return_probs=True)),
    "bernoulli_sample_log_prob": (1, lambda a: torch.ops.dgm_fast.bernoulli_sample_log_prob(a[0])),
    "bernoulli_log_prob": (2, lambda a: torch.ops.dgm_fast.bernoulli_log_prob(a[0], a[1])),
    "bernoulli_log_prob_backward": (3, lambda a: torch.ops.dgm_fast.bernoulli_log_prob_backward(*a)),
    "normal_reparam": (2, lambda a: torch.ops.dgm_fast.normal_reparam(a[0], a[1])),
    "gaussian_elbo": (4, lambda a: torch.ops.dgm_fast.gaussian_elbo(*a)),
    "gaussian_elbo_with_grad": (4, lambda a: torch.ops.dgm_fast.gaussian_elbo_with_grad(*a)),
    "iwae_bound": (1, lambda a: torch.ops.dgm_fast.iwae_bound(a[0])),
    "iwae_bound_with_grad": (1, lambda a: torch.ops.dgm_fast.iwae_bound_with_grad(a[0])),
    "gan_losses": (2, lambda a: torch.ops.dgm_fast.gan_losses(a[0], a[1], "minimax")),
    "mmd": (2, lambda a: torch.ops.dgm_fast.mmd(a[0], a[1], [1.0])),
    "mmd_with_grad": (2, lambda a: torch.ops.dgm_fast.mmd_with_grad(a[0], a[1], [1.0], unbiased=False)),
}


@pytest.mark.parametrize("op", sorted(OPS))
@given(data=st.data())
def test_fake_kernel_accepts_and_rejects_what_the_eager_kernel_does(op, data):
    arity, call = OPS[op]
    makers = [data.draw(raw_tensors()) for _ in range(arity)]
    eager = outcome(lambda: call([m("cpu") for m in makers]))
    fake = outcome(lambda: call([m("meta") for m in makers]))
    assert fake == eager


# ---- in-place ops ------------------------------------------------------------------------------


@given(nv=st.integers(1, 6), nh=st.integers(1, 6), b=st.integers(1, 5), dtype=st.sampled_from(FLOATS),
       gaussian=st.booleans())
def test_rbm_sgd_update_bumps_every_written_tensor(nv, nh, b, dtype, gaussian):
    params = [torch.zeros(nv, nh, dtype=dtype), torch.zeros(nv, dtype=dtype), torch.zeros(nh, dtype=dtype)]
    buffers = [torch.zeros_like(p) for p in params]
    phases = [torch.rand(b, nv, dtype=dtype), torch.rand(b, nh, dtype=dtype),
              torch.rand(b + 1, nv, dtype=dtype), torch.rand(b + 1, nh, dtype=dtype)]
    log_std = torch.zeros(nv, dtype=dtype) if gaussian else None
    before = [t._version for t in params + buffers + phases]
    ops.rbm.rbm_sgd_update_(*params, *buffers, *phases, lr=0.1, momentum=0.5, visible_log_std=log_std)
    after = [t._version for t in params + buffers + phases]
    assert all(a > b_ for a, b_ in zip(after[:6], before[:6]))  # written
    assert after[6:] == before[6:]  # only read
