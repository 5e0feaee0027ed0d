"""mmd against its plain-PyTorch reference: values and gradients in float64 (several tiles),
estimator properties, opcheck, torch.compile, bad input, and memory far below N^2 floats."""

import subprocess
import sys
import textwrap

import pytest
import torch

from dgm_fast import losses, reference

BW = (0.5, 1.0, 2.0, 4.0)


def _samples(n, d, seed, shift=0.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) + shift).to(dtype)


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("n,m,d", [(2, 3, 1), (50, 40, 3), (1500, 1100, 5)])  # last: 2x2 tiles
def test_value_and_gradient_match_reference_float64(unbiased, n, m, d):
    x = _samples(n, d, 1).requires_grad_()
    y = _samples(m, d, 2, shift=0.3).requires_grad_()
    ours = losses.mmd(x, y, BW, unbiased=unbiased)  # with a gradient: the mmd_with_grad pass
    want = reference.mmd.mmd(x, y, BW, unbiased=unbiased)
    torch.testing.assert_close(ours, want, rtol=1e-10, atol=1e-12)
    value_only = losses.mmd(x.detach(), y.detach(), BW, unbiased=unbiased)  # the forward-only op
    torch.testing.assert_close(value_only, want.detach(), rtol=1e-10, atol=1e-12)
    ga = torch.autograd.grad(ours, (x, y))
    gb = torch.autograd.grad(want, (x, y))
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("unbiased", [True, False])
def test_gradcheck(unbiased):
    x = _samples(7, 3, 3).requires_grad_()
    y = _samples(5, 3, 4, shift=0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: losses.mmd(x, y, (0.7, 1.5), unbiased=unbiased), (x, y))


def test_float32_close_to_float64():
    x, y = _samples(1200, 16, 5), _samples(900, 16, 6, shift=0.2)
    a = losses.mmd(x.float(), y.float(), BW)
    b = reference.mmd.mmd(x, y, BW)
    assert a.dtype == torch.float32
    torch.testing.assert_close(a.double(), b, rtol=1e-3, atol=1e-5)


def test_identical_samples_give_zero_biased():
    x = _samples(300, 4, 7)
    assert abs(losses.mmd(x, x.clone(), BW, unbiased=False).item()) < 1e-12


def test_estimator_properties_same_distribution():
    vals_u, vals_b = [], []
    for seed in range(40):
        x, y = _samples(60, 2, 100 + seed), _samples(60, 2, 200 + seed)
        vals_u.append(losses.mmd(x, y, BW, unbiased=True).item())
        vals_b.append(losses.mmd(x, y, BW, unbiased=False).item())
    vals_u = torch.tensor(vals_u)
    # unbiased: mean 0 within 4 standard errors, and some negative values
    assert abs(vals_u.mean().item()) < 4 * vals_u.std().item() / len(vals_u) ** 0.5
    assert (vals_u < 0).any()
    assert min(vals_b) >= 0
    # a real difference is detected
    far = losses.mmd(_samples(60, 2, 1), _samples(60, 2, 2, shift=1.0), BW).item()
    assert far > 10 * vals_u.std().item()


def test_opcheck():
    x = _samples(20, 3, 8).requires_grad_()
    y = _samples(15, 3, 9).requires_grad_()
    for unbiased in (True, False):
        torch.library.opcheck(torch.ops.dgm_fast.mmd.default, (x, y, [1.0, 2.0]), {"unbiased": unbiased})
        torch.library.opcheck(
            torch.ops.dgm_fast.mmd_backward.default,
            (torch.tensor(1.5, dtype=torch.float64), x.detach(), y.detach(), [1.0, 2.0]),
            {"unbiased": unbiased},
        )


def test_opcheck_mmd_with_grad_and_no_double_backward():
    x, y = _samples(20, 3, 8), _samples(15, 3, 9)
    torch.library.opcheck(torch.ops.dgm_fast.mmd_with_grad.default, (x, y, [1.0, 2.0]), {"unbiased": True})
    value, gx, gy = torch.ops.dgm_fast.mmd_with_grad(x, y, [1.0, 2.0])
    bx, by = torch.ops.dgm_fast.mmd_backward(torch.tensor(1.0, dtype=torch.float64), x, y, [1.0, 2.0])
    torch.testing.assert_close(value, torch.ops.dgm_fast.mmd(x, y, [1.0, 2.0]), rtol=1e-12, atol=1e-14)
    assert torch.equal(gx, bx) and torch.equal(gy, by)
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(losses.mmd(xr, y, (1.0, 2.0)), xr, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):  # an error, never a silent 0
        g.sum().backward()


def test_torch_compile_fullgraph():
    gen = torch.nn.Linear(4, 6).double()

    def loss(z, data):
        return losses.mmd(gen(z), data, BW)

    compiled = torch.compile(loss, fullgraph=True)
    z, data = _samples(40, 4, 10), _samples(50, 6, 11)
    out = compiled(z, data)
    out.backward()
    grads = [p.grad.clone() for p in gen.parameters()]
    gen.zero_grad()
    ref = loss(z, data)
    ref.backward()
    torch.testing.assert_close(out, ref)
    for a, p in zip(grads, gen.parameters()):
        torch.testing.assert_close(a, p.grad)


@pytest.mark.parametrize(
    "x,y,kw,error,match",
    [
        (torch.zeros(4, 3), torch.zeros(4, 2), {}, (ValueError, RuntimeError), "same number of columns|same D"),
        (torch.zeros(4), torch.zeros(4, 2), {}, (ValueError, RuntimeError), "2-D|\\[N, D\\]"),
        (torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.float64), {}, TypeError, "y has dtype"),
        (torch.zeros(4, 2, dtype=torch.int64), torch.zeros(4, 2, dtype=torch.int64), {}, TypeError, "float32 or float64"),
        (torch.zeros(1, 2), torch.zeros(4, 2), {}, ValueError, "at least 2 rows"),
        (torch.zeros(4, 2), torch.zeros(4, 2), {"bandwidths": (1.0, -2.0)}, ValueError, "positive and finite"),
        (torch.zeros(4, 2), torch.zeros(4, 2), {"bandwidths": ()}, ValueError, "at least one bandwidth"),
        (torch.zeros(4, 2), torch.zeros(4, 2), {"kernel": "laplace"}, ValueError, "kernel must be 'rbf'"),
        (torch.zeros(4, 2), torch.zeros(4, 2, device="meta"), {}, RuntimeError, "same device"),
    ],
)
def test_bad_input_errors(x, y, kw, error, match):
    with pytest.raises(error, match=match):
        losses.mmd(x, y, **kw)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc/self/status")
def test_memory_far_below_n_squared():
    # N = M = 16384, D = 64, float32: one N x N kernel matrix is 1 GiB (three of them 3 GiB).
    # Forward and backward here must raise the process's peak RSS by far less than that.
    script = textwrap.dedent(
        """
        import torch
        from dgm_fast import losses

        def peak_rss():  # bytes; VmHWM, unlike ru_maxrss, does not inherit the parent's peak
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))

        n, d = 16384, 64
        x = torch.randn(n, d, requires_grad=True)
        y = (torch.randn(n, d) + 0.1).requires_grad_()
        losses.mmd(x[:8], y[:8], (1.0,)).backward()  # warm up allocator and kernels
        base = peak_rss()
        loss = losses.mmd(x, y, (4.0, 8.0))
        loss.backward()
        peak = peak_rss()
        print(peak - base, float(loss.detach()))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grown, value = out.stdout.split()
    n_squared_bytes = 16384**2 * 4
    assert 0 < int(grown) < n_squared_bytes / 8, f"peak RSS grew by {int(grown) / 2**20:.0f} MiB"
    assert float(value) > 0


def test_a_single_bandwidth_may_be_a_number():
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    assert losses.mmd(x, y, 2.0) == losses.mmd(x, y, [2.0])


@pytest.mark.parametrize("dtype,offset,rtol", [(torch.float32, 1000.0, 2e-3), (torch.float64, 1e7, 1e-6)])
def test_far_from_the_origin_the_value_keeps_its_digits(dtype, offset, rtol):
    # The expansion ||a||^2 + ||b||^2 - 2 a.b cancels far from the origin: before the inputs
    # were centred, float32 at +1000 gave 0.1113 for 0.1077, float64 at +1e7 was 1% off.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g, dtype=torch.float64)
    y = torch.randn(64, 4, generator=g, dtype=torch.float64) + 0.5
    exact = reference.mmd.direct_mmd(x, y, (1.0, 2.0))  # at the origin, in float64
    for fn in (losses.mmd, reference.mmd.mmd):
        shifted = fn((x + offset).to(dtype), (y + offset).to(dtype), (1.0, 2.0))
        torch.testing.assert_close(shifted.double(), exact, rtol=rtol, atol=0)
    xr, yr = (x + offset).to(dtype).requires_grad_(), (y + offset).to(dtype).requires_grad_()
    gx, gy = torch.autograd.grad(losses.mmd(xr, yr, (1.0, 2.0)), (xr, yr))
    xe, ye = x.clone().requires_grad_(), y.clone().requires_grad_()
    ex, ey = torch.autograd.grad(reference.mmd.direct_mmd(xe, ye, (1.0, 2.0)), (xe, ye))
    torch.testing.assert_close(gx.double(), ex, rtol=0, atol=rtol * ex.abs().max().item())
    torch.testing.assert_close(gy.double(), ey, rtol=0, atol=rtol * ey.abs().max().item())


def test_enormous_inputs_give_zero_not_nan():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, generator=g) * 1e20, torch.randn(9, 3, generator=g) * 1e20
    value = losses.mmd(x, y, (1.0,))
    assert value.item() == 0.0  # every pair is 1e20 apart: every kernel value is 0
    xr = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(losses.mmd(xr, y, (1.0,)), (xr,))
    assert torch.equal(grad, torch.zeros_like(grad))
    nan = x.clone()
    nan[0, 0] = float("nan")
    assert torch.isnan(losses.mmd(nan, y, (1.0,)))  # a NaN input is not hidden
