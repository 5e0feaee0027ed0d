"""The fused losses, forward + backward with respect to their differentiable inputs, against the
plain-PyTorch formula a user would write (eager, and compiled by torch.compile).

  gaussian_elbo   dgm_fast.losses.gaussian_elbo vs dgm_fast.reference.elbo.gaussian_elbo
  iwae_bound      dgm_fast.losses.iwae_bound vs the reference (log-mean-exp over K samples)
  gan_losses      dgm_fast.losses.gan_losses vs the stable softplus form (eager_gan)
  mmd             dgm_fast.losses.mmd (tiled, 6 bandwidths) vs the reference that builds the
                  whole N x N kernel matrices; bare products: the matrix products any exact MMD's
                  forward + backward does (three Gram matrices, four [N, N] x [N, D]), its floor
On CUDA, eager+graph and dgm_fast+graph replay each forward + backward captured in a CUDA graph.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dgm_fast import losses, reference
from dgm_fast.bench._common import COMPILE, DGM_FAST, DGM_FAST_GRAPH, EAGER, EAGER_GRAPH, fwd_bwd, graphed

IMPLS = [DGM_FAST, EAGER, COMPILE, EAGER_GRAPH, DGM_FAST_GRAPH]
BARE = "bare products"
MMD_BANDWIDTHS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def eager_gan(kind):
    def f(r, fk):  # what a PyTorch user writes: the stable softplus form, in the input dtype
        d = F.softplus(-r).mean() + F.softplus(fk).mean()
        if kind == "minimax":
            g = -F.softplus(fk).mean()
        elif kind == "non_saturating":
            g = F.softplus(-fk).mean()
        else:
            g = F.softplus(-fk).mean() + F.softplus(r).mean()
        return d, g

    return f


def _randn(*shape, device, scale=1.0, shift=0.0, seed):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=g) + shift).to(device).requires_grad_()


def _cases():
    """(case id, in --quick, builder(device) -> (group, dgm_fast fn, eager fn, args))."""

    def elbo(likelihood, batch=1024, features=784, latents=50):
        def build(device):
            g = torch.Generator().manual_seed(0)
            x = torch.rand(batch, features, generator=g).to(device)
            recon, mu, lv = (_randn(batch, n, device=device, seed=s)
                             for n, s in ((features, 1), (latents, 2), (latents, 3)))

            def step(fn):
                def run(recon, mu, lv):
                    return torch.autograd.grad(fn(x, recon, mu, lv, likelihood=likelihood), (recon, mu, lv))

                return run

            return (f"losses gaussian_elbo {likelihood} {batch}x{features} {latents} latents",
                    step(losses.gaussian_elbo), step(reference.elbo.gaussian_elbo), (recon, mu, lv))

        return build

    def iwae(k, b):
        def build(device):
            log_w = _randn(k, b, device=device, scale=10.0, seed=0)
            # the training loss, a mean over the batch, as the ELBO cases
            return (f"losses iwae_bound K={k} B={b} mean", fwd_bwd(lambda w: losses.iwae_bound(w, reduction="mean")),
                    fwd_bwd(lambda w: reference.elbo.iwae_bound(w).mean()), (log_w,))

        return build

    def gan(kind, n=65536):
        def build(device):
            r, f = _randn(n, device=device, scale=3.0, seed=0), _randn(n, device=device, scale=3.0, seed=1)
            return (f"losses gan_losses {kind} {n}+{n}", fwd_bwd(lambda a, b: losses.gan_losses(a, b, kind)),
                    fwd_bwd(eager_gan(kind)), (r, f))

        return build

    def mmd(n, d=784):
        def build(device):
            x, y = _randn(n, d, device=device, seed=0), _randn(n, d, device=device, shift=0.05, seed=1)
            return (f"losses mmd N=M={n} D={d} {len(MMD_BANDWIDTHS)} bandwidths",
                    fwd_bwd(lambda a, b: losses.mmd(a, b, MMD_BANDWIDTHS)),
                    fwd_bwd(lambda a, b: reference.mmd.mmd(a, b, MMD_BANDWIDTHS)), (x, y))

        return build

    yield "gaussian_elbo-bernoulli", True, elbo("bernoulli")
    yield "gaussian_elbo-gaussian", False, elbo("gaussian")
    yield "iwae_bound-K5000-B100", True, iwae(5000, 100)
    yield "iwae_bound-K50-B1024", False, iwae(50, 1024)
    for kind in losses.GAN_KINDS:
        yield f"gan_losses-{kind}", kind == "non_saturating", gan(kind)
    yield "mmd-N1024", True, mmd(1024)
    yield "mmd-N4096", False, mmd(4096)


def mmd_products(x, y, w):
    """The products an exact MMD's forward and backward cannot avoid, with ``w`` standing in for
    the [N, N] kernel-derivative weights."""
    return x @ x.T, y @ y.T, x @ y.T, w @ x, w @ y, w.T @ x, w.T @ y


CASES = list(_cases())


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_loss(case, impl, setting, measure):
    _, in_quick, build = case
    if setting.quick and not in_quick:
        pytest.skip("not in --quick")
    if impl in (EAGER_GRAPH, DGM_FAST_GRAPH) and setting.device.type != "cuda":
        pytest.skip("CUDA graphs: GPU only")
    group, fused, eager, args = build(setting.device)
    if impl == DGM_FAST:
        measure(group, impl, fused, *args)
    elif impl == EAGER:
        measure(group, impl, eager, *args)
    elif impl == COMPILE:
        measure(group, impl, torch.compile(eager), *args, warmup=2)
    else:
        measure(group, impl, graphed(fused if impl == DGM_FAST_GRAPH else eager, args), *args)


@pytest.mark.parametrize("n", [1024, 4096])
def test_mmd_products_floor(n, setting, measure):
    if setting.quick and n != 1024:
        pytest.skip("not in --quick")
    g = torch.Generator().manual_seed(0)
    x, y = (torch.randn(n, 784, generator=g).to(setting.device) for _ in range(2))
    w = torch.rand(n, n, generator=g).to(setting.device)
    measure(f"losses mmd N=M={n} D=784 {len(MMD_BANDWIDTHS)} bandwidths", BARE, mmd_products, x, y, w)
