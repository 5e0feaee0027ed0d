"""bernoulli_logits against the reference, statistically, under autograd and torch.compile, and
on bad input."""

import math

import pytest
import torch

from dgm_fast import ops, reference
from helpers import make_generator


def _words_of_next_call(n, seed, device="cpu"):
    return ops.uniform_bits(n, generator=make_generator(device, seed)).to(torch.int64).cpu()


@pytest.mark.parametrize("with_bias", [False, True])
def test_matches_reference_given_the_same_words(device, with_bias):
    torch.manual_seed(0)
    logits = (torch.randn(257, 61) * 4).to(device)
    bias = torch.randn(61).to(device) if with_bias else None
    sample, probs = ops.bernoulli_logits(
        logits, bias, generator=make_generator(device, 7), return_probs=True
    )
    words = _words_of_next_call(logits.numel(), 7, device)
    ref_sample, ref_probs = reference.samplers.bernoulli_logits(
        logits.cpu(), None if bias is None else bias.cpu(), words
    )
    # Our sigmoid is correctly rounded to within 2 ulp of the float64 value.
    torch.testing.assert_close(probs.cpu(), ref_probs, rtol=2.5e-7, atol=1e-30)
    # Samples agree exactly wherever the word is not within rounding distance of the threshold.
    clear = (words.reshape(ref_probs.shape).double() - ref_probs.double() * 2.0**32).abs() > 2.0**32 * 1e-6
    assert clear.float().mean() > 0.99
    assert torch.equal(sample.cpu()[clear], ref_sample[clear])
    assert set(sample.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_dtypes(device, dtype):
    logits = torch.linspace(-6, 6, 4096, dtype=dtype, device=device)
    sample, probs = ops.bernoulli_logits(logits, return_probs=True)
    assert sample.dtype == dtype and probs.dtype == dtype
    tol = {torch.float32: 1e-6, torch.float64: 1e-14, torch.bfloat16: 8e-3, torch.float16: 1e-3}
    torch.testing.assert_close(
        probs.double(), torch.sigmoid(logits.double()), rtol=tol[dtype], atol=tol[dtype] * 1e-3
    )


def test_float64_probabilities_resolve_below_float32(device):
    # 2^-32 is the sampling resolution; the probabilities themselves keep float64 precision.
    logits = torch.tensor([-30.0, 30.0, -700.0], dtype=torch.float64, device=device)
    _, probs = ops.bernoulli_logits(logits, return_probs=True)
    torch.testing.assert_close(probs, torch.sigmoid(logits), rtol=1e-14, atol=0)


def test_strided_inputs_equal_contiguous(device):
    base = torch.randn(64, 48, device=device)
    cases = [
        (base.t(), torch.randn(128, device=device)[::2]),  # transposed logits, strided bias
        (base[:, ::2], None),  # strided columns
        (base[::3], torch.randn(48, device=device)),  # strided rows
    ]
    for x, b in cases:
        assert not x.is_contiguous()
        s1, p1 = ops.bernoulli_logits(x, b, generator=make_generator(device, 3), return_probs=True)
        s2, p2 = ops.bernoulli_logits(
            x.contiguous(),
            None if b is None else b.contiguous(),
            generator=make_generator(device, 3),
            return_probs=True,
        )
        assert torch.equal(s1, s2) and torch.equal(p1, p2)
        assert s1.is_contiguous()


def test_frequencies_match_probabilities(device):
    # 200,000 draws per probability: the count of ones is Binomial(n, p); require it within
    # 5 standard deviations (a false alarm has probability < 1e-6 per value).
    n = 200_000
    ps = torch.tensor([1e-4, 0.01, 0.1, 0.3, 0.5, 0.77, 0.99, 0.9999], dtype=torch.float64)
    logits = torch.logit(ps).to(torch.float32).to(device)
    sample = ops.bernoulli_logits(
        logits.expand(n, -1).contiguous(), generator=make_generator(device, 2024)
    )
    p = torch.sigmoid(logits.double()).cpu()
    counts = sample.double().sum(0).cpu()
    z = (counts - n * p) / torch.sqrt(n * p * (1 - p))
    assert z.abs().max() < 5, z


def test_independence_between_neighbours(device):
    # Adjacent elements use adjacent words of one Philox block or of neighbouring blocks: their
    # correlation over 10^6 pairs must be ~N(0, 1e-6); require |r| < 5e-3.
    s = ops.bernoulli_logits(torch.zeros(2_000_000, device=device), generator=make_generator(device, 1))
    a, b = s[0::2].double().cpu(), s[1::2].double().cpu()
    r = torch.corrcoef(torch.stack([a, b]))[0, 1]
    assert abs(r) < 5e-3


def test_saturated_and_infinite_logits(device):
    logits = torch.tensor([-math.inf, -1e4, -100.0, 100.0, 1e4, math.inf], device=device)
    sample, probs = ops.bernoulli_logits(logits.expand(1000, -1).contiguous(), return_probs=True)
    assert torch.equal(sample.sum(0).cpu(), torch.tensor([0.0, 0, 0, 1000, 1000, 1000]))
    assert torch.isfinite(probs).all()
    # Against float64: torch's own float32 CPU sigmoid flushes sigmoid(-100) = 3.8e-44 to zero.
    expected = torch.sigmoid(logits.cpu().double()).float()
    assert expected[2] > 0
    torch.testing.assert_close(probs[0].cpu(), expected, rtol=2.5e-7, atol=0)


def test_empty_input(device):
    s, p = ops.bernoulli_logits(torch.empty(0, 5, device=device), torch.zeros(5, device=device), return_probs=True)
    assert s.shape == (0, 5) and p.shape == (0, 5)


def test_probs_gradient_float64():
    logits = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)

    def probs_of(x, b):
        return ops.bernoulli_logits(x, b, generator=make_generator("cpu", 0), return_probs=True)[1]

    assert torch.autograd.gradcheck(probs_of, (logits, bias))
    sample, probs = ops.bernoulli_logits(logits, bias, return_probs=True)
    assert not sample.requires_grad and probs.requires_grad


def test_opcheck():
    x = torch.randn(7, 9)
    b = torch.randn(9)
    for kwargs in ({}, {"return_probs": True}):
        torch.library.opcheck(torch.ops.dgm_fast.bernoulli_logits.default, (x, b), kwargs)
        torch.library.opcheck(torch.ops.dgm_fast.bernoulli_logits.default, (x.double().requires_grad_(), None), kwargs)


def test_torch_compile_without_graph_break():
    def layer(x, b):
        s, p = ops.bernoulli_logits(x @ x.T, b, return_probs=True)
        return s * 2 + p

    x, b = torch.randn(16, 16), torch.randn(16)
    compiled = torch.compile(layer, fullgraph=True, backend="inductor")
    torch.manual_seed(5)
    eager = layer(x, b)
    torch.manual_seed(5)
    out = compiled(x, b)
    torch.testing.assert_close(out, eager)
    # Two calls in one graph must not be merged into one.
    twice = torch.compile(lambda x: (ops.bernoulli_logits(x), ops.bernoulli_logits(x)), fullgraph=True)
    a, c = twice(torch.zeros(1000))
    assert not torch.equal(a, c)


@pytest.mark.parametrize(
    "make_args,error,match",
    [
        (lambda: (torch.zeros(3, 4, dtype=torch.int32), None), TypeError, "logits must be float32"),
        (lambda: (torch.zeros(3, 4), torch.zeros(3)), ValueError, r"bias must have shape \[4\]"),
        (lambda: (torch.zeros(3, 4), torch.zeros(4, dtype=torch.float64)), TypeError, "bias has dtype"),
        (lambda: (torch.zeros(3, 4), torch.zeros(4, device="meta")), RuntimeError, "same device"),
        (lambda: (torch.tensor([0.0, float("nan")]), None), ValueError, "1 of 2 logits are NaN"),
        (lambda: (torch.zeros(2, 2), torch.tensor([0.0, float("nan")])), ValueError, "after adding bias"),
    ],
)
def test_bad_input_errors(make_args, error, match):
    with pytest.raises(error, match=match):
        ops.bernoulli_logits(*make_args())
