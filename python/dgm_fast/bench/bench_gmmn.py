"""One training update of a GMMN: latent draws, the generator (latent-64-256-256-1024-D, Li et
al.'s), the squared MMD with a sum of six RBF kernels against the batch, its backward pass and an
Adam step (fit_gmmn's optimizer; the same in every row).
  dgm_fast        models.gmmn.gmmn_loss (what fit_gmmn runs per batch): the fused, tiled mmd,
                  whose value and gradient come from one pass
  eager           the same loss in plain PyTorch with whole kernel matrices
                  (dgm_fast.reference.mmd.mmd: the centred expansion of the squared distances)
  torch.compile   that loss compiled by inductor
"""

from __future__ import annotations

import pytest
import torch

from dgm_fast import GMMN, reference
from dgm_fast.bench._common import COMPILE, DGM_FAST, EAGER, optimizer_update
from dgm_fast.models.gmmn import LI_ET_AL_BANDWIDTHS, gmmn_loss

QUICK = [(64, 500)]
FULL = [(64, 500), (784, 1000)]  # (data width, batch): digits; Li et al.'s MNIST batch


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("case", FULL, ids=lambda c: f"{c[0]}d-b{c[1]}")
def test_update(case, impl, setting, measure):
    if case not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")
    width, batch = case
    device = setting.device
    gmmn = GMMN(width, generator_rng=torch.Generator().manual_seed(0), device=device)
    real = torch.rand(batch, width, generator=torch.Generator().manual_seed(1)).to(device)
    group = f"gmmn update {width}d batch {batch}"
    bandwidths = LI_ET_AL_BANDWIDTHS
    if impl == DGM_FAST:
        gen = torch.Generator(device=device).manual_seed(2)

        def loss_fn(x):
            return gmmn_loss(gmmn, x, bandwidths, generator=gen)
    else:
        def plain(x):
            fake = gmmn.generator(torch.randn(x.shape[0], gmmn.n_latent, device=x.device))
            return reference.mmd.mmd(fake, x, bandwidths)

        loss_fn = torch.compile(plain) if impl == COMPILE else plain
    update = optimizer_update(loss_fn, torch.optim.Adam(gmmn.parameters(), lr=1e-3, fused=True))
    measure(group, impl, update, real, warmup=3 if impl == COMPILE else 1)
