"""The NADE ops (nade_log_prob with its backward, nade_sample) against the plain loop and the
cumulative-sum references, exactness on all 2^D states, the sampler's law, the Philox contract,
torch.compile and bad input."""

import itertools
import subprocess
import sys
import textwrap

import pytest
import torch

from dgm_fast import ops, reference
from dgm_fast.ops.nade import nade_log_prob, nade_sample
from helpers import make_generator

lib = torch.ops.dgm_fast


def random_nade(D, H, dtype=torch.float64, device="cpu", scale=1.0, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(D, generator=g, dtype=dtype) * scale, torch.randn(H, generator=g, dtype=dtype) * scale,
              torch.randn(D, H, generator=g, dtype=dtype) * scale, torch.randn(D, H, generator=g, dtype=dtype) * scale]
    return [p.to(device).requires_grad_(grad) for p in params]


def orders(kind, B, D, seed=0):
    g = torch.Generator().manual_seed(seed)
    if kind == "none":
        return None
    if kind == "shared":
        return torch.randperm(D, generator=g)
    return torch.stack([torch.randperm(D, generator=g) for _ in range(B)])


def all_states(D, dtype=torch.float64):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=D)), dtype=dtype)


@pytest.mark.parametrize("order_kind", ["none", "shared", "per_row"])
def test_values_and_gradients_equal_the_plain_loop_float64(device, order_kind):
    B, D, H = 9, 23, 37  # H not a multiple of the 16 lanes
    params = random_nade(D, H, device=device, grad=True)
    x = (torch.rand(B, D, generator=torch.Generator().manual_seed(1)) < 0.4).double().to(device)
    order = orders(order_kind, B, D)
    order = None if order is None else order.to(device)
    log_prob, logits = nade_log_prob(x, *params, order)
    ref_log_prob, ref_logits = reference.nade.nade_log_prob(x, *params, order)
    torch.testing.assert_close(log_prob, ref_log_prob, rtol=1e-13, atol=1e-12)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-13, atol=1e-12)
    # gradients of a weighted sum of both outputs
    w = torch.randn(B, dtype=torch.float64).to(device)
    w_logits = torch.randn(B, D, dtype=torch.float64).to(device)
    grads = torch.autograd.grad((log_prob * w).sum() + (logits * w_logits).sum(), params)
    ref_grads = torch.autograd.grad((ref_log_prob * w).sum() + (ref_logits * w_logits).sum(), params)
    for name, got, want in zip(("b", "c", "W", "V"), grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=name)


def test_the_two_references_agree():
    B, D, H = 6, 15, 11
    params = random_nade(D, H)
    x = (torch.rand(B, D, generator=torch.Generator().manual_seed(2)) < 0.5).double()
    for order in (None, orders("per_row", B, D)):
        loop = reference.nade.nade_log_prob(x, *params, order)
        cumsum = reference.nade.nade_log_prob_cumsum(x, *params, order)
        for a, b in zip(loop, cumsum):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_gradcheck_float64():
    B, D, H = 4, 7, 5
    params = random_nade(D, H, grad=True)
    x = (torch.rand(B, D, generator=torch.Generator().manual_seed(3)) < 0.5).double()
    order = orders("per_row", B, D)
    assert torch.autograd.gradcheck(lambda *p: nade_log_prob(x, *p, order), params)
    # non-binary states in [0, 1] (the cross-entropy form): the same formula, differentiated
    x_soft = torch.rand(B, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *p: nade_log_prob(x_soft, *p), params)


def test_float32_is_the_float64_result_rounded():
    B, D, H = 50, 200, 100
    params = random_nade(D, H, scale=0.3, grad=True)
    x = (torch.rand(B, D, generator=torch.Generator().manual_seed(5)) < 0.3).double()
    log_prob, _ = nade_log_prob(x, *params)
    grads = torch.autograd.grad(log_prob.sum(), params)
    params32 = [p.detach().float().requires_grad_() for p in params]
    log_prob32, _ = nade_log_prob(x.float(), *params32)
    grads32 = torch.autograd.grad(log_prob32.sum(), params32)
    torch.testing.assert_close(log_prob32.double(), log_prob, rtol=1e-5, atol=1e-4)
    for got, want in zip(grads32, grads):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_probabilities_of_all_2_to_the_10_states_sum_to_one(device, dtype, tol):
    D, H = 10, 8
    params = random_nade(D, H, dtype=dtype, device=device, scale=1.5)
    x = all_states(D, dtype).to(device)
    for order in (None, torch.randperm(D, generator=torch.Generator().manual_seed(6)).to(device)):
        log_prob, _ = nade_log_prob(x, *params, order)
        assert abs(log_prob.double().exp().sum().item() - 1.0) < tol


def test_sampler_law_equals_exp_log_prob_by_total_variation():
    # 200,000 samples of a D = 10 NADE against exp(log_prob) over the 1,024 states. The expected
    # total-variation distance of an empirical law of N draws is about sum_s sqrt(p_s / (2 pi N)),
    # 0.0173 here; six seeds gave 0.0155 to 0.0180. The bound is 1.2 times the expectation; a
    # sampler off by 0.1 in one visible bias gives 0.028.
    D, H, n = 10, 8, 200_000
    params = random_nade(D, H, scale=0.6, seed=7)
    order = torch.randperm(D, generator=torch.Generator().manual_seed(8))
    exact = nade_log_prob(all_states(D), *params, order)[0].exp()
    expected = (exact / (2 * torch.pi * n)).sqrt().sum().item()
    assert 0.017 < expected < 0.018

    def total_variation(params):
        sample, _ = nade_sample(*params, n, order, generator=make_generator("cpu", 9))
        index = (sample.long() * (2 ** torch.arange(D - 1, -1, -1))).sum(1)
        empirical = torch.bincount(index, minlength=2**D).double() / n
        return 0.5 * (empirical - exact).abs().sum().item()

    assert total_variation(params) < 1.2 * expected
    off = [p.clone() for p in params]
    off[0][3] += 0.1
    assert total_variation(off) > 1.4 * expected  # the test can tell


@pytest.mark.parametrize("order_kind", ["none", "shared", "per_row"])
def test_samples_are_the_reference_draw_from_the_same_words(device, order_kind):
    D, H, n = 31, 20, 40
    params = random_nade(D, H, device=device, seed=10)
    order = orders(order_kind, n, D, seed=11)
    order = None if order is None else order.to(device)
    sample, logits = nade_sample(*params, n, order, generator=make_generator(device, 12))
    words = ops.uniform_bits(n * D, generator=make_generator(device, 12)).to(torch.int64).cpu()
    ref_sample, ref_logits = reference.nade.nade_sample(*(p.cpu() for p in params), n,
                                                        None if order is None else order.cpu(), words)
    assert torch.equal(sample.cpu(), ref_sample)
    torch.testing.assert_close(logits.cpu(), ref_logits, rtol=1e-13, atol=1e-12)
    # the sampler's logits are the log-probability op's on the sample, bit for bit
    assert torch.equal(nade_log_prob(sample, *params, order)[1], logits)


def test_samples_follow_the_generator():
    params = random_nade(12, 6, dtype=torch.float32, seed=13)
    a, _ = nade_sample(*params, 64, generator=make_generator("cpu", 1))
    b, _ = nade_sample(*params, 64, generator=make_generator("cpu", 1))
    assert torch.equal(a, b)
    g = make_generator("cpu", 1)
    first, second = nade_sample(*params, 64, generator=g)[0], nade_sample(*params, 64, generator=g)[0]
    assert torch.equal(first, a) and not torch.equal(first, second)
    assert set(torch.unique(a).tolist()) <= {0.0, 1.0}


def test_float32_samples_sum_in_float64_to_their_log_prob():
    params = random_nade(64, 32, dtype=torch.float32, scale=0.5, seed=14)
    sample, logits = nade_sample(*params, 100, generator=make_generator("cpu", 2))
    log_prob, again = nade_log_prob(sample, *params)
    assert torch.equal(again, logits)
    textbook = -torch.nn.functional.binary_cross_entropy_with_logits(logits.double(), sample.double(),
                                                                     reduction="none").sum(1)
    torch.testing.assert_close(log_prob.double(), textbook, rtol=1e-6, atol=1e-5)


def test_empty_batches():
    params = random_nade(5, 3, grad=True)
    log_prob, logits = nade_log_prob(torch.zeros(0, 5, dtype=torch.float64), *params)
    assert log_prob.shape == (0,) and logits.shape == (0, 5)
    grads = torch.autograd.grad(log_prob.sum(), params, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
    sample, logits = nade_sample(*params, 0)
    assert sample.shape == (0, 5) and logits.shape == (0, 5)


def test_opcheck():
    B, D, H = 5, 9, 7
    params = random_nade(D, H, grad=True)
    x = (torch.rand(B, D) < 0.5).double()
    order = orders("per_row", B, D)
    torch.library.opcheck(lib.nade_log_prob.default, (x, *params, order))
    torch.library.opcheck(lib.nade_log_prob.default, (x, *params))
    log_prob, logits = nade_log_prob(x, *(p.detach() for p in params))
    torch.library.opcheck(lib.nade_log_prob_backward.default,
                          (torch.randn(B).double(), None, x, logits, *(p.detach() for p in params[1:]), order))
    torch.library.opcheck(lib.nade_sample.default, (*(p.detach() for p in params), 4), {"generator": make_generator("cpu", 1)},
                          test_utils=("test_schema", "test_faketensor"))


def test_torch_compile_without_graph_break():
    params = random_nade(20, 10, dtype=torch.float32, grad=True)
    x = (torch.rand(8, 20) < 0.5).float()

    def loss(x, *p):
        log_prob, logits = nade_log_prob(x, *p)
        return -log_prob.mean() + 0.1 * logits.square().mean()

    compiled = torch.compile(loss, fullgraph=True, backend="inductor")
    eager = loss(x, *params)
    got = compiled(x, *params)
    torch.testing.assert_close(got, eager)
    torch.testing.assert_close(torch.autograd.grad(got, params), torch.autograd.grad(loss(x, *params), params))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc/self/status")
def test_memory_is_far_below_the_cumulative_sum_tensor():
    # B = 100, D = 784, H = 500 in float32: the cumulative-sum formulation holds [B, D, H] tensors
    # of 157 MB each. Forward and backward here must raise the peak RSS by far less than one.
    script = textwrap.dedent(
        """
        import torch
        from dgm_fast.ops.nade import nade_log_prob

        def peak_rss():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))

        B, D, H = 100, 784, 500
        params = [torch.randn(D) * 0.1, torch.randn(H) * 0.1, torch.randn(D, H) * 0.05, torch.randn(D, H) * 0.05]
        params = [p.requires_grad_() for p in params]
        x = (torch.rand(B, D) < 0.2).float()
        nade_log_prob(x[:2], *params)[0].sum().backward()  # warm up
        base = peak_rss()
        nade_log_prob(x, *params)[0].sum().backward()
        print(peak_rss() - base)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grown = int(out.stdout)
    assert grown < 100 * 784 * 500 * 4 / 8, f"peak RSS grew by {grown / 2**20:.0f} MiB"


def _params(D=4, H=3, dtype=torch.float32):
    return [torch.zeros(D, dtype=dtype), torch.zeros(H, dtype=dtype), torch.zeros(D, H, dtype=dtype),
            torch.zeros(D, H, dtype=dtype)]


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: nade_log_prob(torch.zeros(2, 4), *_params(), torch.tensor([0, 1, 1, 3])), ValueError,
         r"order is not a permutation of 0..3: position 2 holds 1, which an earlier position holds too"),
        (lambda: nade_log_prob(torch.zeros(2, 4), *_params(), torch.tensor([[0, 1, 2, 3], [0, 1, 2, 4]])), ValueError,
         r"order\[1\] is not a permutation of 0..3: position 3 holds 4, outside 0..D-1"),
        (lambda: nade_sample(*_params(), 3, torch.tensor([-1, 1, 2, 3])), ValueError, "position 0 holds -1"),
        (lambda: nade_log_prob(torch.zeros(2, 4), *_params(), torch.tensor([0, 1, 2, 3], dtype=torch.int32)),
         TypeError, "order must be int64, got Int"),
        (lambda: nade_log_prob(torch.zeros(2, 4), *_params(), torch.zeros(3, 4, dtype=torch.int64)), ValueError,
         r"order must be \[4\] \(one ordering for every row\) or \[2, 4\]"),
        (lambda: nade_log_prob(torch.zeros(2, 5), *_params()), ValueError, r"x must be \[batch, 4\], got \[2, 5\]"),
        (lambda: nade_log_prob(torch.zeros(2, 4, dtype=torch.float64), *_params()), TypeError,
         "x has dtype Double but the parameters have dtype Float"),
        (lambda: nade_log_prob(torch.zeros(2, 4), *_params(dtype=torch.float16)), TypeError,
         "weight_in must be float32 or float64, got Half"),
        (lambda: nade_log_prob(torch.zeros(2, 4), torch.zeros(5), *_params()[1:]), ValueError,
         r"bias_visible must be \[4\], got \[5\]"),
        (lambda: nade_log_prob(torch.zeros(2, 4), *_params()[:3], torch.zeros(3, 4)), ValueError,
         r"weight_out must have the shape of weight_in \[4, 3\]"),
        (lambda: nade_log_prob(torch.zeros(2, 4, device="meta"), *_params()), RuntimeError, "same device"),
        (lambda: nade_sample(*_params(), -1), ValueError, "n must be >= 0, got -1"),
        (lambda: nade_sample(*_params(), 2, torch.arange(4).expand(3, 4)), ValueError, r"or \[2, 4\] \(one per row\)"),
        (lambda: nade_sample(*_params(), 2, generator=3), TypeError, "generator must be a torch.Generator"),
        (lambda: nade_sample(*[p.double() for p in _params()][:1], *_params()[1:], 2), TypeError,
         "bias_visible has dtype Double but weight_in has dtype Float"),
    ],
)
def test_bad_input_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_nan_parameters_give_nan_log_probs_and_a_sampling_error():
    params = _params()
    params[2][0, 0] = float("nan")
    log_prob, _ = nade_log_prob(torch.ones(2, 4), *params)
    assert torch.isnan(log_prob).all()
    with pytest.raises(ValueError, match="conditional probabilities are NaN"):
        nade_sample(*params, 1000, generator=make_generator("cpu", 0))

