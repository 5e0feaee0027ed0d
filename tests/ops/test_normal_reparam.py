"""normal_reparam against the reference, its moments, gradients, torch.compile, bad input."""

import pytest
import torch

from dgm_fast import ops, reference
from helpers import make_generator

# float32 eps from our portable log/sin/cos vs Box-Muller in float64 from the same words:
# a few ulp of the result (relative 2e-6 covers the worst case near the zeros of sin/cos with the
# absolute term).
TOL = {
    torch.float32: dict(rtol=2e-6, atol=2e-6),
    torch.float64: dict(rtol=1e-13, atol=1e-13),
    torch.bfloat16: dict(rtol=1e-2, atol=1e-2),
    torch.float16: dict(rtol=2e-3, atol=2e-3),
}


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("n", [1, 5, 4099])
def test_matches_reference_given_the_same_words(device, dtype, n):
    torch.manual_seed(1)
    mu = torch.randn(n, dtype=torch.float64).to(dtype).to(device)
    log_var = (torch.randn(n, dtype=torch.float64) * 3).to(dtype).to(device)
    z, eps = ops.normal_reparam(mu, log_var, generator=make_generator(device, 42))
    assert z.dtype == dtype and eps.dtype == dtype
    per_block = 2 if dtype == torch.float64 else 4
    n_words = 4 * ((n + per_block - 1) // per_block)
    words = ops.uniform_bits(n_words, generator=make_generator(device, 42)).cpu()
    ref_eps = reference.samplers.normals_from_words(words, n, dtype)
    torch.testing.assert_close(eps.cpu().double(), ref_eps, **TOL[dtype])
    ref_z = reference.samplers.normal_reparam(mu.cpu().double(), log_var.cpu().double(), eps.cpu().double())
    torch.testing.assert_close(z.cpu().double(), ref_z, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_moments(device, dtype):
    # n = 2^21 draws. Standard errors: mean 1/sqrt(n) = 6.9e-4, variance sqrt(2/n) = 9.8e-4,
    # skewness sqrt(6/n) = 1.7e-3, excess kurtosis sqrt(24/n) = 3.4e-3. Require each within 5 of
    # its standard errors of the N(0, 1) value.
    n = 2**21
    _, eps = ops.normal_reparam(
        torch.zeros(n, dtype=dtype, device=device),
        torch.zeros(n, dtype=dtype, device=device),
        generator=make_generator(device, 77),
    )
    e = eps.double().cpu()
    mean, var = e.mean(), e.var()
    std = var.sqrt()
    skew = (((e - mean) / std) ** 3).mean()
    kurt = (((e - mean) / std) ** 4).mean() - 3
    assert abs(mean) < 5 * 6.9e-4
    assert abs(var - 1) < 5 * 9.8e-4
    assert abs(skew) < 5 * 1.7e-3
    assert abs(kurt) < 5 * 3.4e-3
    # The tails: P(|z| > 3) = 2.70e-3 (expected count 5,663, sd 75).
    tail = (e.abs() > 3).sum().item()
    assert abs(tail - 2.6998e-3 * n) < 5 * 75


def test_z_has_the_requested_mean_and_variance(device):
    n = 2**20
    mu = torch.full((n,), 3.0, device=device)
    log_var = torch.full((n,), 2 * torch.log(torch.tensor(0.5)).item(), device=device)
    z, _ = ops.normal_reparam(mu, log_var)
    assert abs(z.mean().item() - 3.0) < 5 * 0.5 / n**0.5
    assert abs(z.std().item() - 0.5) < 5 * 0.5 / (2 * n) ** 0.5


def test_extreme_log_variance_stays_finite(device):
    mu = torch.zeros(1000, device=device)
    for lv in (-30.0, 30.0):
        z, eps = ops.normal_reparam(mu, torch.full_like(mu, lv))
        assert torch.isfinite(z).all()
        torch.testing.assert_close(z, torch.exp(torch.tensor(lv / 2)) * eps, rtol=2e-6, atol=0)


def test_strided_inputs_equal_contiguous(device):
    mu = torch.randn(40, 30, device=device).t()
    lv = torch.randn(80, 30, device=device)[::2].t()
    a = ops.normal_reparam(mu, lv, generator=make_generator(device, 9))
    b = ops.normal_reparam(mu.contiguous(), lv.contiguous(), generator=make_generator(device, 9))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_empty(device):
    z, eps = ops.normal_reparam(torch.empty(0, 3, device=device), torch.empty(0, 3, device=device))
    assert z.shape == (0, 3) and eps.shape == (0, 3)


def test_gradcheck_float64():
    mu = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    log_var = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)

    def z_of(m, lv):  # a fresh generator per call: the same eps for every perturbation
        return ops.normal_reparam(m, lv, generator=make_generator("cpu", 0))[0]

    assert torch.autograd.gradcheck(z_of, (mu, log_var))
    assert torch.autograd.gradgradcheck(z_of, (mu, log_var))
    z, eps = ops.normal_reparam(mu, log_var)
    assert z.requires_grad and not eps.requires_grad


def test_gradient_matches_reference_autograd():
    mu = torch.randn(50, dtype=torch.float64, requires_grad=True)
    log_var = torch.randn(50, dtype=torch.float64, requires_grad=True)
    z, eps = ops.normal_reparam(mu, log_var)
    g = torch.randn(50, dtype=torch.float64)
    ours = torch.autograd.grad(z, (mu, log_var), g)
    ref = torch.autograd.grad(reference.samplers.normal_reparam(mu, log_var, eps), (mu, log_var), g)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-15)


def test_opcheck():
    mu = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    lv = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.dgm_fast.normal_reparam.default, (mu, lv))
    torch.library.opcheck(torch.ops.dgm_fast.normal_reparam.default, (mu.detach().float(), lv.detach().float()))


def test_torch_compile_without_graph_break():
    def encode(x, w):
        h = x @ w
        mu, log_var = h.chunk(2, dim=-1)
        z, _ = ops.normal_reparam(mu, log_var)
        return (z**2).sum()

    x, w = torch.randn(8, 10), torch.randn(10, 6, requires_grad=True)
    compiled = torch.compile(encode, fullgraph=True)
    torch.manual_seed(3)
    eager = encode(x, w)
    (g_eager,) = torch.autograd.grad(eager, w)
    torch.manual_seed(3)
    out = compiled(x, w)
    (g_out,) = torch.autograd.grad(out, w)
    torch.testing.assert_close(out, eager)
    torch.testing.assert_close(g_out, g_eager)


@pytest.mark.parametrize(
    "mu,log_var,error,match",
    [
        (torch.zeros(3), torch.zeros(4), ValueError, "same shape"),
        (torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64), TypeError, "mu must be float32"),
        (torch.zeros(3), torch.zeros(3, dtype=torch.float64), TypeError, "log_var has dtype"),
        (torch.zeros(3), torch.zeros(3, device="meta"), RuntimeError, "same device"),
    ],
)
def test_bad_input_errors(mu, log_var, error, match):
    with pytest.raises(error, match=match):
        ops.normal_reparam(mu, log_var)
