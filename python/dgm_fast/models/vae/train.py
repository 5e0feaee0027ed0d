"""Training a VAE through :func:`dgm_fast.train.fit`: the ELBO (reparameterised, averaged over
``k`` samples: Burda et al.'s "VAE" column) or the importance-weighted bound with ``k`` samples
(their "IWAE" column), by Adam as in Burda et al. (``betas=(0.9, 0.999)``, ``eps=1e-4``)."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from ...ops.elbo import iwae_bound
from ...train import distributed, fit, fused_adam
from .._checks import check_choice, check_count, check_finite_parameters, training_rows
from .model import VAE

__all__ = ["OBJECTIVES", "fit_vae", "vae_loss"]

OBJECTIVES = ("elbo", "iwae")


def vae_loss(vae: VAE, x: torch.Tensor, objective: str = "elbo", k: int = 1, *,
             generator: torch.Generator | None = None):
    """``(loss, metrics)``: the batch's mean negative ELBO (``k`` samples averaged) or negative
    IWAE bound (``k`` samples), and ``metrics["bound"]``, the bound itself."""
    check_choice(objective, OBJECTIVES, "vae_loss", "objective")
    if objective == "elbo":
        loss = -vae.elbo(x, k, generator=generator).mean()
    else:  # reduced by the fused op: on the CPU its gradient comes from the forward pass, scaled
        loss = -iwae_bound(vae.log_weights(x, k, generator=generator), reduction="mean")
    return loss, {"bound": -loss.detach()}


def fit_vae(
    vae: VAE,
    data: torch.Tensor,
    *,
    objective: str = "elbo",
    k: int = 1,
    epochs: int = 10,
    batch_size: int = 20,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    lr_schedule: str | Callable[[int], float] | None = None,
    generator: torch.Generator | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
    eval_fn: Callable[[VAE, int], dict] | None = None,
) -> list[dict]:
    """Trains ``vae`` on the rows of ``data`` (binary for a Bernoulli likelihood) by ``objective``
    (``"elbo"`` or ``"iwae"``) with ``k`` samples per row. Returns ``fit``'s history: per epoch
    the mean training ``bound`` and what ``eval_fn(vae, epoch)`` returns."""
    fn = "fit_vae"
    check_choice(objective, OBJECTIVES, fn, "objective")
    check_count(k, "k", fn)
    p = vae._param()
    data = training_rows(data, vae.n_visible, p.dtype, fn, binary=vae.likelihood == "bernoulli")
    check_finite_parameters(vae, fn)
    generator, shuffle_gen = distributed.run_generators(generator, p.device)
    optimizer = optimizer or fused_adam(vae.parameters(), p.device, lr=lr, betas=(0.9, 0.999), eps=1e-4)

    def step(batch) -> dict:
        x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device=p.device, dtype=p.dtype)
        loss, metrics = vae_loss(vae, x, objective, k, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return metrics

    evaluate = None if eval_fn is None else (lambda epoch: eval_fn(vae, epoch))
    return fit(step, data, model=vae, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
               lr_schedule=lr_schedule, generators={"generator": generator}, shuffle_generator=shuffle_gen,
               eval_fn=evaluate, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
               extra=vae.checkpoint_header(), progress=progress, desc=f"{objective} k={k} epochs")
