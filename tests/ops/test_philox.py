"""The Philox stream: known-answer vectors, the stream layout, where seeds and offsets come from,
and independence of the thread count."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from dgm_fast import ops, reference
from helpers import make_generator

# Known-answer vectors of Philox4x32-10 published with Random123 (kat_vectors):
# (counter, key) -> output.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_reference_philox_matches_published_vectors(counter, key, expected):
    out = reference.samplers.philox4x32_10(torch.tensor(counter), key)
    assert tuple(out.tolist()) == expected


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**40 + 7, 2**64 - 1])
@pytest.mark.parametrize("n", [1, 3, 4, 1001, 70_000])
def test_uniform_bits_is_the_reference_stream(seed, n):
    # A fresh generator hands out offset 0, then 4, 8, ... (as torch's CUDA generator does).
    g = make_generator("cpu", seed)
    for offset in (0, 4, 8):
        words = ops.uniform_bits(n, generator=g)
        assert words.dtype == torch.uint32 and words.shape == (n,)
        assert torch.equal(words.to(torch.int64), reference.samplers.philox_words(n, seed, offset))


def test_uniform_bits_shape_and_empty():
    assert ops.uniform_bits((2, 3, 5)).shape == (2, 3, 5)
    assert ops.uniform_bits((0, 7)).shape == (0, 7)
    assert ops.uniform_bits([]).shape == ()


def test_manual_seed_reproduces_default_generator():
    torch.manual_seed(3)
    a = [ops.uniform_bits(100) for _ in range(3)]
    torch.manual_seed(3)
    b = [ops.uniform_bits(100) for _ in range(3)]
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[1], a[2])


def test_state_restore_reproduces_a_call():
    # get_state/set_state (used by fork_rng and activation checkpointing) replays exactly,
    # including after torch's own random ops have drawn from the generator.
    g = make_generator("cpu", 11)
    torch.rand(5, generator=g)
    state = g.get_state()
    first = ops.uniform_bits(64, generator=g)
    g.set_state(state)
    again = ops.uniform_bits(64, generator=g)
    assert torch.equal(first, again)
    with torch.random.fork_rng():
        inside = ops.uniform_bits(64)
    outside = ops.uniform_bits(64)
    assert torch.equal(inside, outside)


def test_offsets_stay_distinct_over_many_calls():
    # More calls than one Mersenne-Twister cycle (624 draws), interleaved with torch's own ops:
    # every call must still get a stream of its own.
    g = make_generator("cpu", 5)
    seen = set()
    for i in range(1500):
        if i % 100 == 50:
            torch.rand(3, generator=g)
        seen.add(tuple(ops.uniform_bits(4, generator=g).tolist()))
    assert len(seen) == 1500


def test_calls_advance_the_generator_for_torch_ops():
    torch.manual_seed(0)
    plain = torch.rand(4)
    torch.manual_seed(0)
    ops.uniform_bits(4)
    after = torch.rand(4)
    assert not torch.equal(plain, after)


def test_generators_are_independent():
    g1, g2 = make_generator("cpu", 1), make_generator("cpu", 1)
    torch.manual_seed(99)
    a = ops.uniform_bits(32, generator=g1)
    ops.uniform_bits(32)  # the default generator does not disturb g2
    b = ops.uniform_bits(32, generator=g2)
    assert torch.equal(a, b)


_THREADS_SCRIPT = """
import torch, dgm_fast
from dgm_fast import ops
torch.set_num_threads({threads})
g = torch.Generator().manual_seed(21)
w = ops.uniform_bits(1_000_003, generator=g)
s = ops.bernoulli_logits(torch.linspace(-4, 4, 500_000), generator=g)
s_far = ops.bernoulli_logits(torch.linspace(-150, 150, 300_001), generator=g, return_probs=True)  # both exp paths
z, e = ops.normal_reparam(torch.zeros(300_001), torch.zeros(300_001), generator=g)
# the losses' loops share the per-instruction-set tables
from dgm_fast import losses
logits = torch.linspace(-30, 30, 200_003)
gan = torch.stack(losses.gan_losses(logits, logits.flip(0) * 0.5, "reversed"))
lw = (torch.linspace(-50, 50, 1_000 * 300).reshape(1_000, 300).sin() * 40).requires_grad_()
bound = losses.iwae_bound(lw, reduction="mean")  # its gradient from the forward pass
(lw_grad,) = torch.autograd.grad(bound, lw)
lw_far = lw.detach().clone()
lw_far[::7, ::3] -= 200  # tiles of samples down the general exp path (the others: exp_normal_range)
iwae_far = torch.ops.dgm_fast.iwae_bound_with_grad(lw_far, scale=1.0)
from dgm_fast.ops.bernoulli import bernoulli_sample_log_prob
sample, log_q = bernoulli_sample_log_prob(torch.linspace(-12, 12, 100_001), generator=g)
far_draws = bernoulli_sample_log_prob(torch.linspace(-150, 150, 100_001), generator=g)
elbo = []
x = (torch.linspace(0, 1, 64 * 784).reshape(64, 784).sin() > 0.5).float()
for likelihood in ("bernoulli", "gaussian"):
    recon = torch.linspace(-20, 20, 64 * 784).reshape(64, 784).sin() * 8
    recon[::5] *= 15  # logits past +-86 in these rows: the general exp path (the others: exp_normal_range)
    recon.requires_grad_()
    mu = torch.linspace(-3, 3, 64 * 50).reshape(64, 50).requires_grad_()
    lv = torch.linspace(-9, 4, 64 * 50).reshape(64, 50).cos().mul(5).requires_grad_()
    values = losses.gaussian_elbo(x, recon, mu, lv, likelihood=likelihood, reduction="none")
    values.backward(torch.linspace(0.5, 2, 64))
    elbo += [values.detach(), recon.grad, mu.grad, lv.grad]
from dgm_fast.ops.nade import nade_log_prob, nade_sample
nade_params = [torch.linspace(-1, 1, 300).sin().requires_grad_(), torch.linspace(-1, 1, 70).cos().requires_grad_(),
               *(torch.linspace(-3, 3, 300 * 70).reshape(300, 70).sin().mul(0.3 * k).requires_grad_() for k in (1, 2))]
nade_x = (torch.linspace(0, 9, 33 * 300).reshape(33, 300).sin() > 0.3).float()
nade_order = torch.stack([torch.randperm(300, generator=torch.Generator().manual_seed(r)) for r in range(33)])
nade_lp, nade_logits = nade_log_prob(nade_x, *nade_params, nade_order)
nade_lp.backward(torch.linspace(-1, 1, 33))
nade = [nade_lp.detach(), nade_logits.detach(), *(p.grad for p in nade_params),
        *(t.detach() for t in nade_sample(*nade_params, 17, generator=g))]
import hashlib
h = hashlib.sha256()
for t in (w.view(torch.int32), s, *s_far, z, e, gan, bound.detach(), lw_grad, *iwae_far, sample, log_q, *far_draws,
          *elbo, *nade):
    h.update(t.numpy().tobytes())
print(h.hexdigest())
"""


def _digest(threads: int, isa: str) -> str | None:
    env = dict(os.environ, DGM_FAST_CPU_ISA=isa)
    run = subprocess.run(
        [sys.executable, "-c", _THREADS_SCRIPT.format(threads=threads)],
        capture_output=True,
        text=True,
        env=env,
    )
    if run.returncode != 0 and "does not support" in run.stderr:
        return None  # this CPU lacks the instruction set
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_results_do_not_depend_on_thread_count_or_instruction_set():
    # The CPU loops exist once per instruction set (baseline x86-64, AVX2, AVX-512); every
    # variant and every thread count must give the same bits (samplers, GAN losses, IWAE bound,
    # ELBO and its gradients, NADE's log-probabilities, gradients and samples; the baseline
    # variant's FMAs are libm's, the others' instructions).
    digests = {(t, isa): _digest(t, isa) for t in (1, 2, 5) for isa in ("default", "avx2", "avx512")}
    ran = {k: v for k, v in digests.items() if v is not None}
    assert ("default" in {isa for _, isa in ran}) and len(ran) >= 3
    assert len(set(ran.values())) == 1, digests


def test_forcing_an_unknown_instruction_set_is_an_error():
    run = subprocess.run(
        [sys.executable, "-c", "import torch, dgm_fast; dgm_fast.ops.uniform_bits(4)"],
        capture_output=True,
        text=True,
        env=dict(os.environ, DGM_FAST_CPU_ISA="sse9"),
    )
    assert run.returncode != 0 and "DGM_FAST_CPU_ISA must be default, avx2 or avx512" in run.stderr


def test_opcheck_uniform_bits():
    op = torch.ops.dgm_fast.uniform_bits.default
    # Default generator only: opcheck compares repeated calls after torch.manual_seed, which an
    # explicit generator would not follow.
    torch.library.opcheck(op, ([3, 5],), {"device": torch.device("cpu")})


def test_uniform_bits_under_compile():
    f = torch.compile(lambda: ops.uniform_bits((4, 8)), fullgraph=True)
    torch.manual_seed(2)
    a = f()
    torch.manual_seed(2)
    assert torch.equal(a, ops.uniform_bits((4, 8)))


@pytest.mark.parametrize("shape", [np.int64(4), torch.tensor(4), [np.int32(2), 2]])
def test_uniform_bits_takes_numpy_and_tensor_integers(shape):
    assert ops.uniform_bits(shape, generator=make_generator("cpu", 0)).numel() == 4


@pytest.mark.parametrize("shape", [3.5, None, "4", [2, 1.5], torch.tensor(2.0), True])
def test_uniform_bits_names_a_bad_shape(shape):
    with pytest.raises(TypeError, match="uniform_bits: shape must be an int or a sequence of ints"):
        ops.uniform_bits(shape)


@pytest.mark.parametrize("call", [
    lambda: ops.uniform_bits(3, generator=0),
    lambda: ops.bernoulli_logits(torch.zeros(3), generator=0),
    lambda: ops.normal_reparam(torch.zeros(3), torch.zeros(3), generator="cpu"),
])
def test_a_generator_that_is_not_one_is_named(call):
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None"):
        call()
