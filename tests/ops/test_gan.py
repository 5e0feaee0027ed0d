"""gan_losses against its plain-PyTorch reference: values, gradients, stability at extreme
logits (where the naive sigmoid-then-log form fails), opcheck, torch.compile, bad input."""

import pytest
import torch

from dgm_fast import losses, reference

KINDS = losses.GAN_KINDS


def _logits(n, dtype=torch.float64, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, generator=g, dtype=torch.float64) * scale).to(dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shapes", [((64,), (48,)), ((5, 7), (3, 1, 4)), ((1,), (1,)), ((10000,), (9000,))])
def test_values_match_reference_float64(kind, shapes):
    r = _logits(shapes[0], seed=1).reshape(shapes[0])
    f = _logits(shapes[1], seed=2).reshape(shapes[1])
    got = losses.gan_losses(r, f, kind)
    want = reference.gan.gan_losses(r, f, kind)
    for a, b in zip(got, want):
        assert a.shape == () and a.dtype == torch.float64
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_reference_autograd(kind):
    r = _logits(300, seed=3).requires_grad_()
    f = _logits(200, seed=4).requires_grad_()
    wd, wg = 0.7, -1.3  # both outputs at once, with different weights
    d, g = losses.gan_losses(r, f, kind)
    ours = torch.autograd.grad(wd * d + wg * g, (r, f))
    d, g = reference.gan.gan_losses(r, f, kind)
    want = torch.autograd.grad(wd * d + wg * g, (r, f))
    for a, b in zip(ours, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind):
    r = _logits(12, seed=5).requires_grad_()
    f = _logits(9, seed=6).requires_grad_()
    assert torch.autograd.gradcheck(lambda r, f: losses.gan_losses(r, f, kind), (r, f))


@pytest.mark.parametrize("kind", KINDS)
def test_one_output_only_gets_gradient(kind):
    r = _logits(20, seed=7).requires_grad_()
    f = _logits(20, seed=8).requires_grad_()
    _, g = losses.gan_losses(r, f, kind)
    g.backward()  # the discriminator loss takes no part: its gradient is None in the backward
    want_r, want_f = torch.autograd.grad(
        reference.gan.gan_losses(r, f, kind)[1], (r, f), allow_unused=True, materialize_grads=True
    )
    torch.testing.assert_close(r.grad, want_r)
    torch.testing.assert_close(f.grad, want_f)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("big", [100.0, 1000.0])
def test_stable_at_extreme_logits_where_naive_fails(kind, dtype, big):
    # Confident discriminator, both signs: real at +-big, fake at -+big.
    r = torch.tensor([big, -big, big, 0.5], dtype=dtype, requires_grad=True)
    f = torch.tensor([-big, big, -big, -0.5], dtype=dtype, requires_grad=True)
    d, g = losses.gan_losses(r, f, kind)
    gr, gf = torch.autograd.grad(d + g, (r, f))
    for t in (d, g, gr, gf):
        assert torch.isfinite(t).all()
    want = reference.gan.gan_losses(r.detach().double(), f.detach().double(), kind)
    torch.testing.assert_close(d.double(), want[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(g.double(), want[1], rtol=1e-6, atol=0)
    # The textbook form through probabilities breaks: log(0) = -inf in the losses or nan grads.
    rn, fn = r.detach().requires_grad_(), f.detach().requires_grad_()
    dn, gn = reference.gan.naive_gan_losses(rn, fn, kind)
    grads = torch.autograd.grad(dn + gn, (rn, fn), allow_unused=True)
    finite = all(torch.isfinite(t).all() for t in (dn, gn, *[x for x in grads if x is not None]))
    assert not finite


def test_float32_matches_float64():
    r, f = _logits(5000, seed=9), _logits(4000, seed=10)
    for kind in KINDS:
        a = losses.gan_losses(r.float(), f.float(), kind)
        b = reference.gan.gan_losses(r.float().double(), f.float().double(), kind)
        for x, y in zip(a, b):
            torch.testing.assert_close(x.double(), y, rtol=1e-6, atol=1e-6)


def test_opcheck():
    for kind in KINDS:
        r = _logits(33, seed=11).requires_grad_()
        f = _logits(17, seed=12).requires_grad_()
        torch.library.opcheck(torch.ops.dgm_fast.gan_losses.default, (r, f, kind))
        torch.library.opcheck(torch.ops.dgm_fast.gan_losses.default, (r.detach().float(), f.detach().float(), kind))
        gd, gg = torch.tensor(0.5, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64)
        torch.library.opcheck(torch.ops.dgm_fast.gan_losses_backward.default, (gd, gg, r.detach(), f.detach(), kind))


def test_torch_compile_fullgraph():
    disc = torch.nn.Linear(8, 1).double()
    gen = torch.nn.Linear(4, 8).double()

    def step(x, z):
        real = disc(x).squeeze(-1)
        fake = disc(gen(z)).squeeze(-1)
        d, g = losses.gan_losses(real, fake, "non_saturating")
        return d + g

    compiled = torch.compile(step, fullgraph=True)
    x, z = torch.randn(16, 8, dtype=torch.float64), torch.randn(16, 4, dtype=torch.float64)
    out = compiled(x, z)
    out.backward()
    grads = [p.grad.clone() for p in (*disc.parameters(), *gen.parameters())]
    for p in (*disc.parameters(), *gen.parameters()):
        p.grad = None
    ref = step(x, z)
    ref.backward()
    torch.testing.assert_close(out, ref)
    for a, p in zip(grads, (*disc.parameters(), *gen.parameters())):
        torch.testing.assert_close(a, p.grad)


@pytest.mark.parametrize(
    "real,fake,kind,error,match",
    [
        (torch.zeros(3), torch.zeros(3), "wasserstein", ValueError, "kind must be"),
        (torch.zeros(3), torch.zeros(3, dtype=torch.float64), None, TypeError, "fake_logits has dtype"),
        (torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64), None, TypeError, "real_logits must be float32"),
        (torch.zeros(0), torch.zeros(3), None, ValueError, "at least one element"),
        (torch.zeros(3), torch.zeros(3, device="meta"), None, RuntimeError, "same device"),
    ],
)
def test_bad_input_errors(real, fake, kind, error, match):
    with pytest.raises(error, match=match):
        losses.gan_losses(real, fake, kind or "minimax")
