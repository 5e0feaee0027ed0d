"""The Bernoulli layer ops (bernoulli_sample_log_prob, bernoulli_log_prob) against the reference
and bernoulli_logits, their gradients, torch.compile, and bad input."""

import math

import pytest
import torch

from dgm_fast import ops, reference
from dgm_fast.ops.bernoulli import bernoulli_log_prob, bernoulli_sample_log_prob
from helpers import make_generator


def _words_of_next_call(n, seed, device="cpu"):
    return ops.uniform_bits(n, generator=make_generator(device, seed)).to(torch.int64).cpu()


@pytest.mark.parametrize("shape", [(257, 61), (3, 5, 7), (4, 1), (2, 1030)])
def test_sample_is_bernoulli_logits_draw_bit_for_bit(device, shape):
    # Rows of odd widths start inside a Philox block; each element must still take its own word.
    logits = (torch.randn(shape) * 4).to(device)
    sample, log_prob = bernoulli_sample_log_prob(logits, generator=make_generator(device, 7))
    expected = ops.bernoulli_logits(logits, generator=make_generator(device, 7))
    assert torch.equal(sample, expected)
    assert log_prob.shape == shape[:-1]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_log_prob_matches_reference(device, dtype, tol):
    torch.manual_seed(0)
    logits = (torch.randn(64, 300, dtype=dtype) * 6).to(device)
    sample, log_prob = bernoulli_sample_log_prob(logits, generator=make_generator(device, 11))
    words = _words_of_next_call(logits.numel(), 11, device)
    ref_sample, ref_log_prob = reference.bernoulli.bernoulli_sample_log_prob(logits.cpu(), words)
    assert torch.equal(sample.cpu(), ref_sample)
    torch.testing.assert_close(log_prob.cpu(), ref_log_prob, rtol=tol, atol=tol)
    # and against the textbook sum of log sigmoid(+-l), in float64
    l = logits.cpu().double()
    textbook = torch.where(ref_sample.double() == 1, torch.nn.functional.logsigmoid(l),
                           torch.nn.functional.logsigmoid(-l)).sum(-1)
    torch.testing.assert_close(log_prob.cpu().double(), textbook, rtol=tol, atol=tol)
    # the log-probability of the sample, asked for separately, is the same number
    torch.testing.assert_close(bernoulli_log_prob(sample, logits), log_prob, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_dtypes(device, dtype):
    logits = torch.linspace(-8, 8, 4 * 333, device=device).reshape(4, 333).to(dtype)
    sample, log_prob = bernoulli_sample_log_prob(logits, generator=make_generator(device, 1))
    assert sample.dtype == dtype and log_prob.dtype == dtype
    assert torch.equal(sample, ops.bernoulli_logits(logits, generator=make_generator(device, 1)))
    expected = reference.bernoulli.bernoulli_log_prob(sample.double(), logits.double())
    tol = {torch.float32: 1e-5, torch.float64: 1e-12, torch.bfloat16: 1e-2, torch.float16: 2e-3}[dtype]
    torch.testing.assert_close(log_prob.double(), expected, rtol=tol, atol=tol)
    torch.testing.assert_close(bernoulli_log_prob(sample, logits).double(), expected, rtol=tol, atol=tol)


def test_saturated_logits_give_finite_log_probs(device):
    # A float32 sigmoid of 100 is 1: a naive log(1 - sigmoid) would be -inf. Here log q is
    # log sigmoid(+-l) from exp(-|l|), and an infinite logit is a certain unit with log q = 0.
    logits = torch.tensor([[-math.inf, -1e4, -100.0, -30.0, 30.0, 100.0, 1e4, math.inf]], device=device)
    sample, log_prob = bernoulli_sample_log_prob(logits.expand(500, -1), generator=make_generator(device, 4))
    assert torch.equal(sample.sum(0).cpu(), torch.tensor([0.0, 0, 0, 0, 500, 500, 500, 500]))
    expected = 2 * float(torch.nn.functional.logsigmoid(torch.tensor(30.0, dtype=torch.float64)))
    torch.testing.assert_close(log_prob.cpu().double(), torch.full((500,), expected, dtype=torch.float64),
                               rtol=1e-6, atol=1e-12)
    # the log-probability of the unlikely state is finite and exact
    x = torch.tensor([[1.0, 0.0]], device=device)
    l = torch.tensor([[-100.0, 100.0]], device=device)
    torch.testing.assert_close(bernoulli_log_prob(x, l).cpu(), torch.tensor([-200.0]))


def test_frequencies_and_mean_log_prob(device):
    # 100,000 rows of 3 units: the frequency of each of the 8 joint states must match its
    # probability within 5 standard deviations, and the sample's log-probability must be that
    # state's exact log-probability (to float32 rounding).
    n = 100_000
    logits = torch.tensor([-1.5, 0.3, 2.0], device=device)
    sample, log_prob = bernoulli_sample_log_prob(logits.expand(n, -1), generator=make_generator(device, 2024))
    s, q = sample.cpu().double(), log_prob.cpu().double()
    l = logits.cpu().double()
    for code in range(8):
        state = torch.tensor([(code >> k) & 1 for k in range(3)], dtype=torch.float64)
        exact = float((state * l - torch.nn.functional.softplus(l)).sum())
        hits = (s == state).all(1)
        p = math.exp(exact)
        assert abs(hits.sum().item() - n * p) < 5 * math.sqrt(n * p * (1 - p))
        torch.testing.assert_close(q[hits], torch.full((int(hits.sum()),), exact, dtype=torch.float64),
                                   rtol=1e-6, atol=1e-6)


def test_generator_state_advances_like_bernoulli_logits(device):
    g1, g2 = make_generator(device, 5), make_generator(device, 5)
    logits = torch.randn(10, 9, device=device)
    for _ in range(3):
        a, _ = bernoulli_sample_log_prob(logits, generator=g1)
        b = ops.bernoulli_logits(logits, generator=g2)
        assert torch.equal(a, b)


def test_empty_and_zero_width(device):
    s, q = bernoulli_sample_log_prob(torch.empty(0, 5, device=device))
    assert s.shape == (0, 5) and q.shape == (0,)
    s, q = bernoulli_sample_log_prob(torch.empty(3, 0, device=device))
    assert s.shape == (3, 0) and torch.equal(q.cpu(), torch.zeros(3))
    assert torch.equal(bernoulli_log_prob(torch.empty(3, 0, device=device), torch.empty(3, 0, device=device)).cpu(),
                       torch.zeros(3))


def test_strided_inputs_equal_contiguous(device):
    base = torch.randn(40, 24, device=device)
    x = (torch.rand(24, 40, device=device) < 0.5).float().t()
    for l in (base[:, ::2], base[::3]):
        s1, q1 = bernoulli_sample_log_prob(l, generator=make_generator(device, 3))
        s2, q2 = bernoulli_sample_log_prob(l.contiguous(), generator=make_generator(device, 3))
        assert torch.equal(s1, s2) and torch.equal(q1, q2)
    assert torch.equal(bernoulli_log_prob(x, base), bernoulli_log_prob(x.contiguous(), base))


def test_gradients_float64():
    logits = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    x = (torch.rand(6, 5) < 0.5).double()
    assert torch.autograd.gradcheck(lambda l: bernoulli_log_prob(x, l), (logits,))

    def log_q(l):
        return bernoulli_sample_log_prob(l, generator=make_generator("cpu", 0))[1]

    assert torch.autograd.gradcheck(log_q, (logits,))
    sample, log_prob = bernoulli_sample_log_prob(logits)
    assert not sample.requires_grad and log_prob.requires_grad
    # the score function: d log q(s) / d l = s - sigmoid(l)
    (grad,) = torch.autograd.grad(log_prob.sum(), logits)
    torch.testing.assert_close(grad, sample - torch.sigmoid(logits.detach()), rtol=1e-14, atol=1e-15)


def test_gradient_matches_autograd_of_the_reference(device):
    logits = (torch.randn(33, 70, device=device) * 3).requires_grad_()
    x = (torch.rand(33, 70, device=device) < 0.4).float()
    w = torch.randn(33, device=device)
    (g,) = torch.autograd.grad((bernoulli_log_prob(x, logits) * w).sum(), logits)
    (g_ref,) = torch.autograd.grad((reference.bernoulli.bernoulli_log_prob(x, logits) * w).sum(), logits)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)


def test_opcheck():
    l = torch.randn(7, 9, dtype=torch.float64, requires_grad=True)
    x = (torch.rand(7, 9) < 0.5).double()
    torch.library.opcheck(torch.ops.dgm_fast.bernoulli_log_prob.default, (x, l))
    torch.library.opcheck(torch.ops.dgm_fast.bernoulli_log_prob_backward.default, (torch.randn(7).double(), x, l.detach()))
    torch.library.opcheck(torch.ops.dgm_fast.bernoulli_sample_log_prob.default, (l,),
                          {"generator": make_generator("cpu", 1)}, test_utils=("test_schema", "test_faketensor"))
    torch.library.opcheck(torch.ops.dgm_fast.bernoulli_sample_log_prob.default, (torch.randn(2, 3, 4),))


def test_torch_compile_without_graph_break():
    def layer(h, w, x):
        s, log_q = bernoulli_sample_log_prob(h @ w)
        return s.sum() + log_q.sum() + bernoulli_log_prob(x, h @ w).sum()

    h, w = torch.randn(16, 8), torch.randn(8, 12)
    x = (torch.rand(16, 12) < 0.5).float()
    compiled = torch.compile(layer, fullgraph=True, backend="inductor")
    torch.manual_seed(5)
    eager = layer(h, w, x)
    torch.manual_seed(5)
    torch.testing.assert_close(compiled(h, w, x), eager)
    w.requires_grad_()
    (g,) = torch.autograd.grad(compiled(h, w, x), w)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize(
    "fn,make_args,error,match",
    [
        (bernoulli_sample_log_prob, lambda: (torch.zeros(3, 4, dtype=torch.int32),), TypeError, "logits must be float32"),
        (bernoulli_sample_log_prob, lambda: (torch.tensor(1.0),), ValueError, "at least one dimension"),
        (bernoulli_sample_log_prob, lambda: (torch.tensor([[0.0, float("nan")]]),), ValueError, "1 of 2 logits are NaN"),
        (bernoulli_log_prob, lambda: (torch.zeros(3, 4), torch.zeros(3, 5)), ValueError, r"x must have the shape of logits \[3, 5\]"),
        (bernoulli_log_prob, lambda: (torch.zeros(3, 4, dtype=torch.float64), torch.zeros(3, 4)), TypeError, "x has dtype Double"),
        (bernoulli_log_prob, lambda: (torch.zeros(3, 4, device="meta"), torch.zeros(3, 4)), RuntimeError, "same device"),
    ],
)
def test_bad_input_errors(fn, make_args, error, match):
    with pytest.raises(error, match=match):
        fn(*make_args())


def test_generator_on_the_wrong_device():
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        bernoulli_sample_log_prob(torch.zeros(2, 2), generator=3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logits_in_the_exp_normal_range_give_the_general_paths_bits(dtype):
    # The CPU loops take exp_normal_range for exp(-|l|) when every logit of a call has |l| <= 86
    # (707 in double), the general exp otherwise. One logit of -1e4 added at the end sends the
    # call down the general path; element i's random word depends on i alone, so the first
    # elements' probabilities, samples and log-probabilities must keep their bits.
    logits = (6 * torch.randn(1000, generator=torch.Generator().manual_seed(2), dtype=torch.float64)).to(dtype)
    far = torch.cat([logits, torch.tensor([-1e4], dtype=dtype)])
    draws = [ops.bernoulli_logits(t, generator=torch.Generator().manual_seed(8), return_probs=True)
             for t in (logits, far)]
    assert torch.equal(draws[0][0], draws[1][0][:1000]) and torch.equal(draws[0][1], draws[1][1][:1000])
    layer = [bernoulli_sample_log_prob(t.unsqueeze(1), generator=torch.Generator().manual_seed(8))  # log q per row
             for t in (logits, far)]
    assert torch.equal(layer[0][0], layer[1][0][:1000]) and torch.equal(layer[0][1], layer[1][1][:1000])
