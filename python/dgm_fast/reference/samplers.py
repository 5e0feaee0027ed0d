"""Plain-PyTorch definitions of the samplers (:mod:`dgm_fast.ops.samplers`) and of the Philox
stream they draw from. Random ops take their random words explicitly, so that a test can feed the
reference the very words the native op drew (``dgm_fast.ops.uniform_bits`` with the same seed).
"""

from __future__ import annotations

import torch

__all__ = [
    "philox4x32_10",
    "philox_words",
    "bernoulli_logits",
    "normals_from_words",
    "normal_reparam",
]

_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_STREAM_DOMAIN = 0x64676D66
_MASK32 = 0xFFFFFFFF


def _mulhilo(a: int, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # 32x32 -> 64-bit product in int64 without overflow: split b into 16-bit halves.
    b_hi, b_lo = b >> 16, b & 0xFFFF
    lo_part = a * b_lo  # < 2^48
    hi = (a * b_hi + (lo_part >> 16)) >> 16
    lo = (a * b) & _MASK32  # int64 wraps modulo 2^64; the low 32 bits are right
    return hi & _MASK32, lo


def philox4x32_10(counter: torch.Tensor, key: tuple[int, int]) -> torch.Tensor:
    """Philox4x32-10 of Salmon et al. (2011). ``counter``: int64 ``[..., 4]`` of 32-bit values;
    ``key``: two 32-bit ints. Returns int64 ``[..., 4]``."""
    c0, c1, c2, c3 = (counter[..., j].to(torch.int64) for j in range(4))
    k0, k1 = key
    for _ in range(10):
        hi0, lo0 = _mulhilo(_M0, c0)
        hi1, lo1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    return torch.stack([c0, c1, c2, c3], dim=-1)


def philox_words(n: int, seed: int, offset: int) -> torch.Tensor:
    """Words ``0 .. n-1`` of the stream ``(seed, offset)`` as int64 values in [0, 2^32)."""
    blocks = torch.arange((n + 3) // 4, dtype=torch.int64)
    counter = torch.stack(
        [
            blocks & _MASK32,
            blocks >> 32,
            torch.full_like(blocks, offset & _MASK32),
            torch.full_like(blocks, (offset >> 32) & _MASK32),
        ],
        dim=-1,
    )
    key = (seed & _MASK32, ((seed >> 32) & _MASK32) ^ _STREAM_DOMAIN)
    return philox4x32_10(counter, key).reshape(-1)[:n]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def bernoulli_logits(
    logits: torch.Tensor, bias: torch.Tensor | None, words: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sample, probs)``: probs = sigmoid(logits + bias), the sum formed in the op's compute
    dtype (float64 for float64 inputs, float32 otherwise) and the sigmoid in float64; sample is 1
    where word + 1/2 <= probs * 2^32 (the word is below probs * 2^32 rounded half up).
    ``words``: the call's words, in element order."""
    x = logits.to(_compute_dtype(logits.dtype))
    if bias is not None:
        x = x + bias.to(x.dtype)
    probs = torch.sigmoid(x.double())
    sample = (words.reshape(x.shape).double() + 0.5 <= probs * 2.0**32).to(logits.dtype)
    return sample, probs.to(logits.dtype)


def normals_from_words(words: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """The ``n`` standard normals a call with inputs of ``dtype`` draws from its words, computed by
    Box-Muller in float64 and returned in float64.

    float32/bfloat16/float16: words (w0, w1) of each pair give u0 = (w0 + 1) / 2^32 and
    u1 = (w1 >> 8) / 2^24. float64: four words give u0 = (k0 + 1) / 2^53 and u1 = k1 / 2^53 with
    53-bit integers k taken from word pairs.
    """
    w = words.to(torch.int64)
    if dtype == torch.float64:
        # 53-bit integers, two per Philox block (masked: int64 shifts are arithmetic)
        k = (((w[0::2] << 32) | w[1::2]) >> 11) & ((1 << 53) - 1)
        u0 = (k[0::2].double() + 1.0) * 2.0**-53
        u1 = k[1::2].double() * 2.0**-53
    else:
        # float32 path: float(w) + 1 is rounded to float32 as the kernel does.
        u0 = ((w[0::2].to(torch.float32) + 1.0).double()) * 2.0**-32
        u1 = (w[1::2] >> 8).double() * 2.0**-24
    r = torch.sqrt(-2.0 * torch.log(u0))
    theta = 2.0 * torch.pi * u1
    z = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=-1).reshape(-1)
    return z[:n]


def normal_reparam(
    mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """``mu + exp(log_var / 2) * eps``."""
    return mu + torch.exp(0.5 * log_var) * eps
