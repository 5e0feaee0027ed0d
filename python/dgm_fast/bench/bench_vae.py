"""One training update of a VAE by the ELBO (K = 1) and by the IWAE bound (K = 5, 50), at Burda
et al.'s one-stochastic-layer MNIST model (784-200-200-50, tanh) with batches of 20, and a small
digits-sized one.

Update: the objective on one batch, its backward pass and torch's fused Adam step
(fit_vae's optimizer; the same in every row).
  dgm_fast        models.vae.vae_loss (what fit_vae runs per batch): normal_reparam, the fused
                  gaussian_elbo (K = 1) or the Bernoulli log-likelihood op and the fused
                  iwae_bound (K > 1)
  eager           the same objective in plain PyTorch: torch.randn_like for the noise,
                  binary_cross_entropy_with_logits, the closed-form KL, logsumexp
  torch.compile   that loss function compiled by inductor
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from dgm_fast import VAE
from dgm_fast.bench._common import COMPILE, DGM_FAST, EAGER, optimizer_update
from dgm_fast.bench.bench_rbm import binary_batch
from dgm_fast.models.vae import vae_loss

QUICK = [((64, 8), ((64, 64),), 20)]
FULL = [((64, 8), ((64, 64),), 20), ((784, 50), ((200, 200),), 20)]
OBJECTIVES = (("elbo", 1), ("iwae", 5), ("iwae", 50))


def _case_id(case) -> str:
    sizes, hidden, batch = case
    return "-".join(map(str, [sizes[0], *hidden[0], sizes[1]])) + f"-b{batch}"


def eager_loss(encoder, decoder, x, objective, k):
    """The negative objective of a one-stochastic-layer VAE, in plain PyTorch."""
    mu, log_var = encoder(x).chunk(2, dim=-1)
    if objective == "elbo":
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        nll = F.binary_cross_entropy_with_logits(decoder(z), x, reduction="none").sum(-1)
        kl = 0.5 * (mu * mu + log_var.exp() - 1 - log_var).sum(-1)
        return (nll + kl).mean()
    eps = torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * log_var) * eps
    log_px = -F.binary_cross_entropy_with_logits(decoder(z), x.expand(k, *x.shape), reduction="none").sum(-1)
    log_pz = -0.5 * (z * z).sum(-1)
    log_qz = -0.5 * (eps * eps + log_var).sum(-1)
    bound = torch.logsumexp(log_px + log_pz - log_qz, 0) - math.log(k)
    return -bound.mean()


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: f"{o[0]}-k{o[1]}")
@pytest.mark.parametrize("case", FULL, ids=_case_id)
def test_update(case, objective, impl, setting, measure):
    if case not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")
    sizes, hidden, batch = case
    device = setting.device
    vae = VAE(list(sizes), [list(h) for h in hidden], generator=torch.Generator().manual_seed(0), device=device)
    x = binary_batch(batch, sizes[0], device, torch.Generator().manual_seed(1))
    name, k = objective
    group = f"vae {name} k={k} update {_case_id(case)}"
    if impl == DGM_FAST:
        gen = torch.Generator(device=device).manual_seed(3)

        def loss_fn(v):
            return vae_loss(vae, v, name, k, generator=gen)[0]
    else:
        plain = lambda v: eager_loss(vae.encoders[0], vae.decoders[0], v, name, k)  # noqa: E731
        loss_fn = torch.compile(plain) if impl == COMPILE else plain
    update = optimizer_update(loss_fn, torch.optim.Adam(vae.parameters(), lr=1e-3, eps=1e-4, fused=True))  # fit_vae's
    measure(group, impl, update, x, warmup=3 if impl == COMPILE else 1)
