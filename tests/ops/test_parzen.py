"""parzen_log_density against its plain-PyTorch reference (several tiles of samples and of
points), the closed form of one kernel, float32 precision far from the origin, opcheck,
torch.compile, bad input, and N = 60,000 samples in memory far below N_x x N floats."""

import math
import subprocess
import sys
import textwrap

import pytest
import torch

from dgm_fast import reference
from dgm_fast.ops.parzen import parzen_log_density


def _points(n, d, seed, shift=0.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g, dtype=torch.float64) + shift).to(dtype)


@pytest.mark.parametrize("n_x,n,d", [(1, 1, 1), (7, 30, 3), (4100, 2100, 5)])  # last: 2 point tiles x 3 sample tiles
@pytest.mark.parametrize("sigma", [0.05, 0.3, 2.0])
def test_matches_reference_float64(n_x, n, d, sigma):
    x, s = _points(n_x, d, 1), _points(n, d, 2, shift=0.1)
    want = reference.parzen.parzen_log_density(x, s, sigma, chunk=512)
    torch.testing.assert_close(parzen_log_density(x, s, sigma), want, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("n_x,n", [(7, 30), (4100, 2100)])
def test_several_widths_in_one_pass_equal_one_at_a_time(n_x, n):
    x, s = _points(n_x, 4, 20), _points(n, 4, 21)
    widths = [0.05, 0.3, 2.0]
    together = parzen_log_density(x, s, widths)
    assert together.shape == (3, n_x)
    for row, sigma in zip(together, widths):
        torch.testing.assert_close(row, parzen_log_density(x, s, sigma), rtol=1e-12, atol=1e-10)
        torch.testing.assert_close(row, reference.parzen.parzen_log_density(x, s, sigma, chunk=512), rtol=1e-12,
                                   atol=1e-10)


def test_one_kernel_is_the_gaussian_log_density():
    # N = 1: log N(x | s, sigma^2 I) in closed form, not through any logsumexp
    x, s, sigma = _points(6, 4, 3), _points(1, 4, 4), 0.7
    want = -((x - s) ** 2).sum(1) / (2 * sigma**2) - 2 * math.log(2 * math.pi * sigma**2)
    torch.testing.assert_close(parzen_log_density(x, s, sigma), want, rtol=1e-13, atol=1e-13)


def test_duplicating_every_sample_changes_nothing():
    x, s = _points(50, 3, 5), _points(40, 3, 6)
    torch.testing.assert_close(parzen_log_density(x, torch.cat([s, s]), 0.2), parzen_log_density(x, s, 0.2),
                               rtol=1e-13, atol=1e-12)


def test_far_points_give_very_low_densities_not_nan():
    # every sample 1e4 kernel widths away: exponents near -5e7, finite log-densities
    x, s = _points(5, 2, 7), _points(8, 2, 8, shift=100.0)
    out = parzen_log_density(x, s, 0.01)
    want = reference.parzen.parzen_log_density(x, s, 0.01)
    assert torch.isfinite(out).all() and (out < -1e7).all()
    torch.testing.assert_close(out, want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_float32_close_to_float64(offset):
    # centring keeps float32 far from the origin as good as at it
    # (the reference gets the very float32 inputs, so that only the op's rounding is measured)
    x, s = (_points(n, 64, seed, shift=offset, dtype=torch.float32) for n, seed in ((3000, 9), (1500, 10)))
    want = reference.parzen.parzen_log_density(x.double(), s.double(), 0.4, chunk=256)
    out = parzen_log_density(x, s, 0.4)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), want, rtol=2e-6, atol=1e-4)


def test_nan_stays_in_its_row():
    x, s = _points(4, 3, 11), _points(6, 3, 12)
    x[2, 1] = float("nan")
    out = parzen_log_density(x, s, 0.5)
    assert torch.isnan(out[2]) and torch.isfinite(out[[0, 1, 3]]).all()


def test_no_gradient():
    x = _points(4, 3, 13).requires_grad_()
    assert not parzen_log_density(x, _points(6, 3, 14), 0.5).requires_grad


def test_opcheck():
    x, s = _points(20, 3, 15), _points(15, 3, 16)
    torch.library.opcheck(torch.ops.dgm_fast.parzen_log_density.default, (x, s, [0.5]))
    torch.library.opcheck(torch.ops.dgm_fast.parzen_log_density.default, (x.float(), s.float(), [0.5, 2.0]))


def test_torch_compile_fullgraph():
    def score(x, s):
        return parzen_log_density(x * 2, s, 0.3).mean()

    x, s = _points(40, 4, 17), _points(50, 4, 18)
    torch.testing.assert_close(torch.compile(score, fullgraph=True)(x, s), score(x, s))


@pytest.mark.parametrize(
    "x,s,sigma,error,match",
    [
        (torch.zeros(4, 3), torch.zeros(4, 2), 1.0, ValueError, "same number of columns"),
        (torch.zeros(4), torch.zeros(4, 2), 1.0, ValueError, "must be 2-D"),
        (torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.float64), 1.0, TypeError, "samples has dtype"),
        (torch.zeros(4, 2, dtype=torch.int64), torch.zeros(4, 2, dtype=torch.int64), 1.0, TypeError,
         "float32 or float64"),
        (torch.zeros(4, 2), torch.zeros(0, 2), 1.0, ValueError, "samples is empty"),
        (torch.zeros(4, 2), torch.zeros(4, 2), 0.0, ValueError, "positive and finite"),
        (torch.zeros(4, 2), torch.zeros(4, 2), -1.0, ValueError, "positive and finite"),
        (torch.zeros(4, 2), torch.zeros(4, 2), float("nan"), ValueError, "positive and finite"),
        (torch.zeros(4, 2), torch.zeros(4, 2), [1.0, -1.0], ValueError, "positive and finite"),
        (torch.zeros(4, 2), torch.zeros(4, 2), [], ValueError, "at least one kernel width"),
        (torch.zeros(4, 2), torch.zeros(4, 2, device="meta"), 1.0, RuntimeError, "same device"),
    ],
)
def test_bad_input_errors(x, s, sigma, error, match):
    with pytest.raises(error, match=match):
        parzen_log_density(x, s, sigma)


def test_no_points_give_an_empty_result():
    out = parzen_log_density(torch.zeros(0, 3), torch.zeros(5, 3), 1.0)
    assert out.shape == (0,) and out.dtype == torch.float32


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc/self/status")
def test_sixty_thousand_samples_in_bounded_memory():
    # N_x = 8,192 points, N = 60,000 samples, D = 64, float32: the N_x x N matrix of exponents
    # would be 1.8 GiB. The op must raise the process's peak RSS by far less, and agree with the
    # plain reference in float64 (chunked by points) on a subset of the points.
    script = textwrap.dedent(
        """
        import torch
        from dgm_fast import reference
        from dgm_fast.ops.parzen import parzen_log_density

        def peak_rss():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))

        g = torch.Generator().manual_seed(0)
        x, s = torch.rand(8192, 64, generator=g), torch.rand(60000, 64, generator=g)
        parzen_log_density(x[:8], s[:8], 0.3)  # warm up allocator and kernels
        base = peak_rss()
        out = parzen_log_density(x, s, 0.3)
        grown = peak_rss() - base
        want = reference.parzen.parzen_log_density(x[::512].double(), s.double(), 0.3, chunk=4)
        err = (out[::512].double() - want).abs().max().item()
        print(grown, err, out.shape[0])
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    grown, err, rows = out.stdout.split()
    full_matrix_bytes = 8192 * 60000 * 4
    assert int(grown) < full_matrix_bytes / 16, f"peak RSS grew by {int(grown) / 2**20:.0f} MiB"
    assert float(err) < 1e-3 and int(rows) == 8192
