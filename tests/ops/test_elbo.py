import math

import pytest
import torch
import torch.nn.functional as F

from dgm_fast import losses
from dgm_fast.reference import elbo as reference_elbo

LIKELIHOODS = ["bernoulli", "gaussian"]


def make_inputs(B=5, D=7, Z=3, dtype=torch.float64, device="cpu", seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, D, generator=g, dtype=torch.float64)
    recon = 3 * torch.randn(B, D, generator=g, dtype=torch.float64)
    mu = torch.randn(B, Z, generator=g, dtype=torch.float64)
    log_var = torch.randn(B, Z, generator=g, dtype=torch.float64)
    out = [t.to(dtype=dtype, device=device) for t in (x, recon, mu, log_var)]
    if requires_grad:
        for t in out[1:]:
            t.requires_grad_(True)
    return out


# ---- gaussian_elbo: values and gradients -------------------------------------------------------


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_elbo_matches_reference_float64(device, likelihood, reduction):
    x, recon, mu, log_var = make_inputs(device=device)
    ours = losses.gaussian_elbo(x, recon, mu, log_var, likelihood=likelihood, reduction=reduction)
    ref = reference_elbo.gaussian_elbo(x, recon, mu, log_var, likelihood=likelihood, reduction=reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ours)
    ours_grads = torch.autograd.grad(ours, (recon, mu, log_var), g)
    ref_grads = torch.autograd.grad(ref, (recon, mu, log_var), g)
    for a, b in zip(ours_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_elbo_gradcheck(likelihood):
    x, recon, mu, log_var = make_inputs(B=3, D=4, Z=2)

    def fn(recon, mu, log_var):
        return losses.gaussian_elbo(x, recon, mu, log_var, likelihood=likelihood, reduction="none")

    assert torch.autograd.gradcheck(fn, (recon, mu, log_var))


def test_elbo_bernoulli_closed_form():
    # x = 1, logit 0: -log(1/2) per feature; mu = 0, log_var = 0: KL = 0
    x = torch.ones(2, 3, dtype=torch.float64)
    out = losses.gaussian_elbo(
        x, torch.zeros_like(x), torch.zeros(2, 4, dtype=torch.float64),
        torch.zeros(2, 4, dtype=torch.float64), reduction="none",
    )
    torch.testing.assert_close(out, torch.full((2,), 3 * math.log(2), dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_elbo_low_precision_matches_float64(dtype, likelihood):
    x, recon, mu, log_var = make_inputs(B=16, D=50, Z=8, requires_grad=False)
    low = [t.to(dtype).requires_grad_(i > 0) for i, t in enumerate((x, recon, mu, log_var))]
    ours = losses.gaussian_elbo(*low, likelihood=likelihood, reduction="none")
    assert ours.dtype == dtype
    exact = reference_elbo.gaussian_elbo(*(t.double() for t in low), likelihood=likelihood, reduction="none")
    # computed in float32: the only rounding to the low dtype is that of the result
    tol = {torch.float32: 1e-5, torch.bfloat16: 8e-3, torch.float16: 1e-3}[dtype]
    torch.testing.assert_close(ours.double(), exact, rtol=tol, atol=tol)
    ours.sum().backward()
    assert all(t.grad.dtype == dtype and torch.isfinite(t.grad).all() for t in low[1:])


# ---- stability ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("big", [100.0, 1000.0])
def test_elbo_extreme_logits_finite_and_exact(dtype, big):
    logits = torch.tensor([[big, -big, big, -big]], dtype=dtype, requires_grad=True)
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0]], dtype=dtype)
    mu = torch.zeros(1, 2, dtype=dtype, requires_grad=True)
    log_var = torch.tensor([[30.0, -30.0]], dtype=dtype, requires_grad=True)
    out = losses.gaussian_elbo(x, logits, mu, log_var, reduction="sum")
    # nll: big + big + ~0 + ~0; KL: 0.5 * (exp(30) - 31) + 0.5 * (exp(-30) + 29)
    expected = 2 * big + 0.5 * (math.exp(30) - 31) + 0.5 * (math.exp(-30) + 29)
    assert torch.isfinite(out)
    assert out.item() == pytest.approx(expected, rel=1e-6)
    out.backward()
    for t in (logits, mu, log_var):
        assert torch.isfinite(t.grad).all()
    torch.testing.assert_close(logits.grad, torch.tensor([[1.0, -1.0, 0.0, 0.0]], dtype=dtype))
    torch.testing.assert_close(
        log_var.grad, torch.tensor([[0.5 * (math.exp(30) - 1), 0.5 * (math.exp(-30) - 1)]], dtype=dtype)
    )


def test_naive_formulas_fail_where_ours_holds():
    logits = torch.tensor([[1000.0, -1000.0]])
    x = torch.tensor([[0.0, 1.0]])  # true NLL: 1000 + 1000
    mu, log_var = torch.zeros(1, 1), torch.zeros(1, 1)
    ours = losses.gaussian_elbo(x, logits, mu, log_var, reduction="sum")
    assert ours.item() == pytest.approx(2000.0)
    p = torch.sigmoid(logits)  # exactly 1 and 0 in float32
    naive_log = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum()
    assert not torch.isfinite(naive_log)  # 0 * -inf = nan
    clamped = F.binary_cross_entropy(p, x, reduction="sum")  # log clamped at -100
    assert clamped.item() == pytest.approx(200.0)  # wrong by a factor of 10


# ---- gaussian_elbo: errors ---------------------------------------------------------------------


def test_elbo_bad_inputs():
    x, recon, mu, log_var = make_inputs(requires_grad=False)
    with pytest.raises(ValueError, match="recon must have the shape of x"):
        losses.gaussian_elbo(x, recon[:, :3], mu, log_var)
    with pytest.raises(ValueError, match="mu must have shape"):
        losses.gaussian_elbo(x, recon, mu[:2], log_var[:2])
    with pytest.raises(ValueError, match="log_var must have the shape of mu"):
        losses.gaussian_elbo(x, recon, mu, log_var[:, :2])
    with pytest.raises(ValueError, match="x must have shape"):
        losses.gaussian_elbo(x[0], recon[0], mu, log_var)
    with pytest.raises(TypeError, match="mu has dtype"):
        losses.gaussian_elbo(x, recon, mu.float(), log_var)
    with pytest.raises(TypeError, match="float32, float64"):
        losses.gaussian_elbo(*(t.to(torch.int64) for t in (x, recon, mu, log_var)))
    with pytest.raises(ValueError, match="likelihood must be one of"):
        losses.gaussian_elbo(x, recon, mu, log_var, likelihood="poisson")
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.gaussian_elbo(x, recon, mu, log_var, reduction="max")
    with pytest.raises(ValueError, match="likelihood must be"):  # the op itself checks too
        torch.ops.dgm_fast.gaussian_elbo(x, recon, mu, log_var, likelihood="poisson")
    with pytest.raises(RuntimeError, match="mu is on meta but x is on cpu|x is on cpu but mu is on meta"):
        losses.gaussian_elbo(x, recon, mu.to("meta"), log_var)


def test_elbo_meta_shapes():
    x, recon, mu, log_var = (t.to("meta") for t in make_inputs(B=4, requires_grad=False))
    assert losses.gaussian_elbo(x, recon, mu, log_var, reduction="none").shape == (4,)


# ---- iwae_bound --------------------------------------------------------------------------------


def test_iwae_bound_is_logsumexp_minus_log_k(device):
    w = (10 * torch.randn(7, 5, dtype=torch.float64, device=device)).requires_grad_(True)
    bound = losses.iwae_bound(w)
    torch.testing.assert_close(bound, torch.logsumexp(w, 0) - math.log(7), rtol=1e-13, atol=1e-13)
    g = torch.randn(5, dtype=torch.float64, device=device)
    (grad,) = torch.autograd.grad(bound, w, g)
    torch.testing.assert_close(grad, torch.softmax(w, 0) * g, rtol=1e-13, atol=1e-13)


def test_iwae_bound_two_arguments_and_dim():
    log_p = torch.randn(4, 3, 6, dtype=torch.float64)
    log_q = torch.randn(4, 3, 6, dtype=torch.float64)
    ours = losses.iwae_bound(log_p, log_q, dim=1)
    assert ours.shape == (4, 6)
    torch.testing.assert_close(ours, reference_elbo.iwae_bound(log_p - log_q, dim=1))


def test_iwae_bound_gradcheck():
    w = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(losses.iwae_bound, (w,))


def test_iwae_bound_extreme_and_infinite():
    w = torch.tensor(
        [[1e4, -1e4, -math.inf], [1e4 - math.log(3), 0.0, -math.inf]], dtype=torch.float64, requires_grad=True
    )
    bound = losses.iwae_bound(w)
    expected = torch.logsumexp(w.detach(), 0) - math.log(2)
    torch.testing.assert_close(bound.detach(), expected)
    bound.sum().backward()
    assert torch.isfinite(w.grad).all()
    assert (w.grad[:, 2] == 0).all()  # every weight -inf: no slope
    torch.testing.assert_close(w.grad[:, 0], torch.tensor([0.75, 0.25], dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_iwae_bound_many_samples_across_tiles(dtype):
    # K = 1000 samples: the CPU kernel reduces them in tiles of 256 and merges the partial
    # (max, sum) pairs. Columns whose largest weight, a +inf, a NaN or only -inf sit in different
    # tiles must come out as the plain log-sum-exp says, for any thread count.
    g = torch.Generator().manual_seed(5)
    w = (30 * torch.randn(1000, 7, generator=g, dtype=torch.float64))
    w[900, 0] = 500.0  # the maximum in the last tile
    w[:, 1] = -math.inf
    w[300, 2] = math.inf
    w[:, 3] = -math.inf
    w[10, 3], w[700, 3] = -5.0, -4.0  # two finite weights in different tiles
    w[600, 4] = math.nan
    w = w.to(dtype)
    expected = torch.logsumexp(w.double(), 0) - math.log(1000)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(losses.iwae_bound(w))
    finally:
        torch.set_num_threads(threads)
    for r in results[1:]:  # identical bits, NaN where NaN
        assert torch.equal(r.isnan(), results[0].isnan()) and torch.equal(r[~r.isnan()], results[0][~r.isnan()])
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(results[0].double(), expected, rtol=tol, atol=tol, equal_nan=True)
    ww = w.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(losses.iwae_bound(ww)[[0, 3, 5]].sum(), ww)
    torch.testing.assert_close(grad[:, [0, 3, 5]].double(), torch.softmax(w[:, [0, 3, 5]].double(), 0),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_iwae_bound_low_precision(dtype):
    w = torch.randn(50, 300, dtype=torch.float64)
    ours = losses.iwae_bound(w.to(dtype))
    assert ours.dtype == dtype
    exact = reference_elbo.iwae_bound(w.to(dtype).double())
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(ours.double(), exact, rtol=tol, atol=tol)


def test_iwae_bound_bad_inputs():
    with pytest.raises(ValueError, match="at least one sample"):
        losses.iwae_bound(torch.zeros(0, 3))
    with pytest.raises(ValueError, match=r"\[samples, batch\]"):
        torch.ops.dgm_fast.iwae_bound(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError, match="float32, float64"):
        losses.iwae_bound(torch.zeros(2, 3, dtype=torch.int32))


# ---- opcheck and torch.compile -----------------------------------------------------------------


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_opcheck_gaussian_elbo(likelihood):
    x, recon, mu, log_var = make_inputs(dtype=torch.float32)
    torch.library.opcheck(
        torch.ops.dgm_fast.gaussian_elbo.default, (x, recon, mu, log_var), {"likelihood": likelihood}
    )
    grad = torch.randn(x.shape[0])
    torch.library.opcheck(
        torch.ops.dgm_fast.gaussian_elbo_backward.default,
        (grad, x, recon.detach(), mu.detach(), log_var.detach()),
        {"likelihood": likelihood},
    )


def _row_gradients(reduction, rows, incoming, dtype):
    """What torch's reduction passes back to each of ``rows`` values, for an incoming gradient."""
    values = torch.zeros(rows, dtype=dtype, requires_grad=True)
    reduced = {"none": values, "mean": values.mean(), "sum": values.sum()}[reduction]
    (grad,) = torch.autograd.grad(reduced, values, incoming)
    return grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_one_pass_gradient_equals_forward_then_backward(dtype, likelihood, reduction):
    # With a gradient wanted on the CPU, gaussian_elbo takes its gradient from the forward pass
    # (gaussian_elbo_with_grad, scaled by the reduction's row gradient): for a Bernoulli likelihood
    # always, for a Gaussian one when reduced. The loss must be the forward op's bits, and the
    # gradient the backward op's given the row gradients that torch's reduction passes back: bit
    # for bit for an incoming gradient of 1 (the stored gradient returned untouched), per row, and
    # per row from sum()'s backward (a 1 expanded to every row: returned untouched too);
    # for an incoming 0.3 on a mean (0.3 times the stored 1/B-scaled gradient, where the backward
    # op multiplies by 0.3/B) to within two roundings.
    B = 33
    x, recon, mu, log_var = make_inputs(B=B, D=1100, Z=9, dtype=dtype, seed=4)
    with torch.no_grad():
        recon[0, :4] = torch.tensor([200.0, -200.0, 0.0, -0.0], dtype=dtype)  # saturated and signed 0
    consts = [t.detach() for t in (recon, mu, log_var)]
    per_example = torch.ops.dgm_fast.gaussian_elbo(x, *consts, likelihood=likelihood)
    loss = losses.gaussian_elbo(x, recon, mu, log_var, likelihood=likelihood, reduction=reduction)
    assert torch.equal(loss.detach(), {"none": per_example, "mean": per_example.mean(),
                                       "sum": per_example.sum()}[reduction])
    g = torch.Generator().manual_seed(1)
    incoming = ([torch.randn(B, generator=g, dtype=dtype), torch.ones((), dtype=dtype).expand(B)]  # sum()'s
                if reduction == "none" else [torch.tensor(1.0, dtype=dtype), torch.tensor(0.3, dtype=dtype)])
    for grad_in in incoming:
        got = torch.autograd.grad(loss, (recon, mu, log_var), grad_in, retain_graph=True)
        rows = _row_gradients(reduction, B, grad_in, dtype)
        want = torch.ops.dgm_fast.gaussian_elbo_backward(rows, x, *consts, likelihood=likelihood)
        for a, b in zip(got, want):
            if reduction == "mean" and grad_in.item() != 1.0:
                eps = torch.finfo(dtype).eps
                torch.testing.assert_close(a, b, rtol=2 * eps, atol=0)
            else:
                assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_elbo_with_grad_op_is_forward_and_backward(dtype, likelihood):
    # The op itself, for any scale and dtype (bfloat16: the two ops composed): the forward op's
    # values and the backward op's gradients with every row's gradient equal to the scale.
    x, recon, mu, log_var = make_inputs(B=20, D=300, Z=7, dtype=dtype, seed=2, requires_grad=False)
    for scale in (1.0, 0.3, 1 / 20):
        values, *grads = torch.ops.dgm_fast.gaussian_elbo_with_grad(x, recon, mu, log_var, likelihood=likelihood,
                                                                    scale=scale)
        assert torch.equal(values, torch.ops.dgm_fast.gaussian_elbo(x, recon, mu, log_var, likelihood=likelihood))
        want = torch.ops.dgm_fast.gaussian_elbo_backward(torch.full((20,), scale, dtype=dtype), x, recon, mu,
                                                         log_var, likelihood=likelihood)
        for a, b in zip(grads, want):
            assert torch.equal(a, b)
    torch.library.opcheck(torch.ops.dgm_fast.gaussian_elbo_with_grad.default, (x, recon, mu, log_var),
                          {"likelihood": likelihood, "scale": 0.5})


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_elbo_reduced_gradcheck(likelihood, reduction):
    # gradcheck's unit incoming gradients take the stored gradient as it is; the second-order
    # call's (gradgradcheck is not supported: once_differentiable) is not needed.
    x, recon, mu, log_var = make_inputs(B=3, D=4, Z=2)
    assert torch.autograd.gradcheck(
        lambda r, m, lv: losses.gaussian_elbo(x, r, m, lv, likelihood=likelihood, reduction=reduction),
        (recon, mu, log_var))


# ---- iwae_bound: the gradient from the forward pass ---------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(7, 5), (3000, 3), (50, 600)], ids=["small", "many-samples", "wide"])
def test_iwae_one_pass_gradient(dtype, reduction, shape):
    # With a gradient wanted on the CPU, iwae_bound computes the softmax over the samples in the
    # forward pass, from the bound's own exps (iwae_bound_with_grad). The bound must be the
    # forward op's bits; the gradient the softmax (float64 reference) times the row gradients,
    # to within a few roundings (it is exp(w - m_t) * (exp(m_t - m) / s) per tile of samples)
    # plus the rounding of w - m_t, relative |w - m| eps / 2 (as in the backward op's
    # exp(w - lse)), and that of the sum s of K terms, at most K eps (the worst case of a
    # sequential sum), for incoming gradients of 1 and 0.3 on a reduced bound and a random one
    # per row. The
    # shapes cover runs of whole rows (narrow batches), several tiles of samples, several of
    # columns.
    K, B = shape
    g = torch.Generator().manual_seed(3)
    w = (10 * torch.randn(K, B, generator=g, dtype=torch.float64)).to(dtype).requires_grad_()
    per_example = torch.ops.dgm_fast.iwae_bound(w.detach())
    bound = losses.iwae_bound(w, reduction=reduction)
    assert torch.equal(bound.detach(), {"none": per_example, "mean": per_example.mean(),
                                        "sum": per_example.sum()}[reduction])
    incoming = ([torch.randn(B, generator=g, dtype=dtype), torch.ones((), dtype=dtype).expand(B)]  # sum()'s
                if reduction == "none" else [torch.tensor(1.0, dtype=dtype), torch.tensor(0.3, dtype=dtype)])
    eps = torch.finfo(dtype).eps
    for grad_in in incoming:
        (got,) = torch.autograd.grad(bound, w, grad_in, retain_graph=True)
        rows = _row_gradients(reduction, B, grad_in, dtype).double()
        wd = w.detach().double()
        want = torch.softmax(wd, 0) * rows
        rtol = eps * (8 + (wd - wd.max(0).values).abs() + K)
        tiny = torch.finfo(dtype).tiny  # below it, subnormal rounding
        assert ((got.double() - want).abs() <= rtol * want.abs() + tiny).all()


def test_iwae_bound_with_grad_op_infinities_and_threads():
    # Columns: finite; every weight -inf (no slope: 0); a +inf weight (softmax's NaN); a NaN
    # weight (NaN); the maximum in the last tile of samples. The bound is iwae_bound's bits, and
    # bound and gradient are the same bits at 1, 2 and 3 threads.
    g = torch.Generator().manual_seed(6)
    w = 30 * torch.randn(1000, 5, generator=g, dtype=torch.float64)
    w[:, 1] = -math.inf
    w[300, 2] = math.inf
    w[600, 3] = math.nan
    w[900, 4] = 500.0
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(torch.ops.dgm_fast.iwae_bound_with_grad(w, scale=0.5))
    finally:
        torch.set_num_threads(threads)
    for bound, grad in results[1:]:
        assert torch.equal(bound.nan_to_num(), results[0][0].nan_to_num())
        assert torch.equal(grad.nan_to_num(), results[0][1].nan_to_num())
        assert torch.equal(grad.isnan(), results[0][1].isnan())
    bound, grad = results[0]
    assert torch.equal(bound.isnan(), torch.ops.dgm_fast.iwae_bound(w).isnan())
    assert torch.equal(bound.nan_to_num(), torch.ops.dgm_fast.iwae_bound(w).nan_to_num())
    assert (grad[:, 1] == 0).all()
    assert grad[:, 2].isnan().all() and grad[:, 3].isnan().all()
    for col in (0, 4):  # eps (8 + |w - m| + K) as in test_iwae_one_pass_gradient: |w - m| < 300
        torch.testing.assert_close(grad[:, col], 0.5 * torch.softmax(w[:, col], 0), rtol=3e-13, atol=1e-300)
    torch.library.opcheck(torch.ops.dgm_fast.iwae_bound_with_grad.default, (w[:, [0, 4]].contiguous(),),
                          {"scale": 0.5})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iwae_tiles_in_the_normal_range_give_the_general_exps_bits(dtype):
    # A tile of samples whose exp arguments w - max all lie where exp's results are normal
    # numbers takes exp_normal_range (one scaling step instead of two). A row of -1e4 added to the
    # same tile sends it down the general path; that row's terms are exp(-1e4 - max) = 0 exactly,
    # so every other row's gradient, exp(w - max) / sum scaled, must keep its bits: the exps and
    # the sums are the same. The bounds then differ by log(201 / 200) alone.
    g = torch.Generator().manual_seed(9)
    w = (8 * torch.randn(200, 300, generator=g, dtype=torch.float64)).to(dtype)  # one tile of samples
    far = torch.cat([w, torch.full((1, 300), -1e4, dtype=dtype)])
    bound, grad = torch.ops.dgm_fast.iwae_bound_with_grad(w, scale=0.25)
    bound_far, grad_far = torch.ops.dgm_fast.iwae_bound_with_grad(far, scale=0.25)
    assert torch.equal(grad, grad_far[:200]) and (grad_far[200] == 0).all()
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(bound.double() - bound_far.double(), torch.full((300,), math.log(201 / 200),
                               dtype=torch.float64), rtol=0, atol=8 * eps * bound.abs().max().item())
    assert torch.equal(torch.ops.dgm_fast.iwae_bound(w), bound)


def test_iwae_bound_reduced_gradcheck_and_errors():
    w = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    for reduction in ("mean", "sum"):
        assert torch.autograd.gradcheck(lambda w: losses.iwae_bound(w, reduction=reduction), (w,))
    with pytest.raises(ValueError, match="reduction"):
        losses.iwae_bound(w, reduction="max")
    with pytest.raises(ValueError, match="the batch is empty"):
        losses.iwae_bound(torch.zeros(3, 0), reduction="mean")
    assert losses.iwae_bound(torch.zeros(3, 0), reduction="sum").item() == 0
    # other layouts: the bound's shape without dim, reduced over all of it
    w3 = torch.randn(4, 3, 6, dtype=torch.float64)
    torch.testing.assert_close(losses.iwae_bound(w3, dim=1, reduction="mean"),
                               reference_elbo.iwae_bound(w3, dim=1).mean())


def test_opcheck_iwae_bound():
    w = torch.randn(8, 5, requires_grad=True)
    torch.library.opcheck(torch.ops.dgm_fast.iwae_bound.default, (w,))
    bound = torch.ops.dgm_fast.iwae_bound(w.detach())
    torch.library.opcheck(
        torch.ops.dgm_fast.iwae_bound_backward.default, (torch.randn(5), w.detach(), bound)
    )


def test_compile_fullgraph_vae_loss():
    torch.manual_seed(0)
    enc = torch.nn.Linear(6, 2 * 3)
    dec = torch.nn.Linear(3, 6)
    x = torch.rand(8, 6)
    eps = torch.randn(8, 3)

    def loss_fn(x, eps):
        mu, log_var = enc(x).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * log_var) * eps
        elbo = losses.gaussian_elbo(x, dec(z), mu, log_var)
        log_w = -losses.gaussian_elbo(
            x.expand(4, 8, 6).reshape(32, 6), dec(z).repeat(4, 1), mu.repeat(4, 1), log_var.repeat(4, 1),
            reduction="none",
        ).reshape(4, 8)
        return elbo - losses.iwae_bound(log_w).mean()

    eager = loss_fn(x, eps)
    eager_grads = torch.autograd.grad(eager, list(enc.parameters()) + list(dec.parameters()))
    compiled = torch.compile(loss_fn, fullgraph=True)
    out = compiled(x, eps)
    grads = torch.autograd.grad(out, list(enc.parameters()) + list(dec.parameters()))
    torch.testing.assert_close(out, eager)
    for a, b in zip(grads, eager_grads):
        torch.testing.assert_close(a, b)


# ---- importance_log_likelihood -----------------------------------------------------------------


def test_empty_batch_and_mismatched_log_q_are_refused():
    z = torch.zeros(0, 3)
    with pytest.raises(ValueError, match="gaussian_elbo: the batch is empty"):
        losses.gaussian_elbo(z, z, z, z)
    assert losses.gaussian_elbo(z, z, z, z, reduction="sum").item() == 0.0
    assert losses.gaussian_elbo(z, z, z, z, reduction="none").shape == (0,)
    with pytest.raises(ValueError, match=r"log_q_zx must have the shape of log_p_xz \[4, 3\], got \[3\]"):
        losses.iwae_bound(torch.zeros(4, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="need a dimension of samples"):
        losses.iwae_bound(torch.tensor(1.0))
