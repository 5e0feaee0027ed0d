"""Training a MADE by maximum likelihood through :func:`dgm_fast.train.fit`: each batch uses one
mask set drawn uniformly (connectivity-agnostic training, Germain et al. 2015; with one mask set,
plain training), the exact mean log-likelihood under it, and Adam (or any optimizer given)."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from ...ops.bernoulli import bernoulli_log_prob
from ...train import distributed, fit, fused_adam
from .._checks import check_finite_parameters, training_rows
from .model import MADE

__all__ = ["fit_made"]


def fit_made(
    made: MADE,
    data: torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 100,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    lr_schedule: str | Callable[[int], float] | None = None,
    generator: torch.Generator | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
    eval_fn: Callable[[MADE, int], dict] | None = None,
) -> list[dict]:
    """Trains ``made`` on the binary rows of ``data``. Returns ``fit``'s history: per epoch the
    mean training ``log_prob`` (nats per row, under the mask sets drawn) and what
    ``eval_fn(made, epoch)`` returns."""
    fn = "fit_made"
    p = made.output.weight
    data = training_rows(data, made.n_visible, p.dtype, fn, binary=True)
    check_finite_parameters(made, fn)
    generator, shuffle_gen = distributed.run_generators(generator, p.device)
    optimizer = optimizer or fused_adam(made.parameters(), p.device, lr=lr)
    # The mask sets are drawn on the CPU, so that choosing one needs no device synchronisation.
    mask_gen = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=generator,
                                                              device=generator.device).item()))

    def step(batch) -> dict:
        x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device=p.device, dtype=p.dtype)
        mask = int(torch.randint(made.n_masks, (1,), generator=mask_gen))
        loss = -bernoulli_log_prob(x, made.logits(x, mask)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"log_prob": -loss.detach()}

    evaluate = None if eval_fn is None else (lambda epoch: eval_fn(made, epoch))
    return fit(step, data, model=made, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
               lr_schedule=lr_schedule, generators={"generator": generator, "masks": mask_gen},
               shuffle_generator=shuffle_gen, eval_fn=evaluate, checkpoint=checkpoint,
               checkpoint_every=checkpoint_every, extra=made.checkpoint_header(), progress=progress,
               desc=f"MADE ({made.n_masks} mask set{'s' if made.n_masks > 1 else ''}) epochs")
