"""One training update of a GAN (Goodfellow et al.'s Algorithm 1 with k = 1: a discriminator step,
then a generator step), MLPs latent-256-256-D and D-256-256-1 with the default dropout, batches of
100, Adam on both players (fit_gan's optimizers; the same in every row).
  dgm_fast        models.gan.gan_update (what fit_gan runs per batch): Philox normal_reparam latent
                  draws, the Philox dropout masks (models.gan.Dropout), the fused gan_losses, the
                  generator's backward into its own parameters only
  eager           the same update in plain PyTorch: torch.randn latents, nn.Dropout, the BCE
                  formulation by F.binary_cross_entropy_with_logits, loss.backward()
  torch.compile   the eager update's two loss functions compiled by inductor
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from dgm_fast import GAN
from dgm_fast.bench._common import COMPILE, DGM_FAST, EAGER
from dgm_fast.models.gan import gan_update
from dgm_fast.models.gan.model import Dropout

QUICK = [(64, 100)]
FULL = [(64, 100), (784, 100)]  # (data width, latent width): digits, MNIST


def with_torch_dropout(gan: GAN) -> GAN:
    """A copy of ``gan`` (same weights) whose dropout layers are torch's ``nn.Dropout``."""
    plain = copy.deepcopy(gan)
    for module in plain.modules():
        for name, child in module.named_children():
            if isinstance(child, Dropout):
                setattr(module, name, torch.nn.Dropout(child.p))
    return plain


def eager_d_loss(gan, real, fake):
    r, f = gan.discriminator(real).squeeze(1), gan.discriminator(fake).squeeze(1)
    return F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) + F.binary_cross_entropy_with_logits(
        f, torch.zeros_like(f))


def eager_g_loss(gan, z):
    f = gan.discriminator(gan.generator(z)).squeeze(1)
    return F.binary_cross_entropy_with_logits(f, torch.ones_like(f))  # non-saturating


def eager_update(gan, g_opt, d_opt, d_loss_fn=eager_d_loss, g_loss_fn=eager_g_loss):
    def update(real):
        z = torch.randn(real.shape[0], gan.n_latent, device=real.device)
        with torch.no_grad():
            fake = gan.generator(z)
        d_opt.zero_grad(set_to_none=True)
        d_loss_fn(gan, real, fake).backward()
        d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        g_loss_fn(gan, torch.randn(real.shape[0], gan.n_latent, device=real.device)).backward()
        g_opt.step()

    return update


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("case", FULL, ids=lambda c: f"{c[0]}d-latent{c[1]}")
def test_update(case, impl, setting, measure):
    if case not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")
    width, latent = case
    device = setting.device
    gan = GAN(n_visible=width, n_latent=latent, generator_rng=torch.Generator().manual_seed(0), device=device)
    real = torch.rand(100, width, generator=torch.Generator().manual_seed(1)).to(device)
    if impl != DGM_FAST:
        gan = with_torch_dropout(gan)
    opts = (torch.optim.Adam(gan.generator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True),
            torch.optim.Adam(gan.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True))
    group = f"gan update {width}d latent {latent} batch 100"
    if impl == DGM_FAST:
        gen = torch.Generator(device=device).manual_seed(2)
        measure(group, impl, lambda x: gan_update(gan, x, kind="non_saturating", optimizers=opts, generator=gen), real)
    elif impl == EAGER:
        measure(group, impl, eager_update(gan, *opts), real)
    else:
        update = eager_update(gan, *opts, torch.compile(eager_d_loss), torch.compile(eager_g_loss))
        measure(group, impl, update, real, warmup=3)
