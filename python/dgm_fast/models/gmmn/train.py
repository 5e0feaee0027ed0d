"""Training a GMMN through :func:`dgm_fast.train.fit`: each update draws as many latent vectors as
the data minibatch has rows and descends the squared MMD between the generator's samples and the
minibatch (the fused, tiled :func:`dgm_fast.losses.mmd` with a sum of RBF kernels). GMMN+AE trains
the :class:`.Autoencoder` first (:func:`fit_autoencoder`) and the GMMN on its codes."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ...ops.mmd import mmd
from ...train import distributed, fit, fused_adam
from .._checks import check_finite_parameters, training_rows
from .model import GMMN, Autoencoder

__all__ = ["LI_ET_AL_BANDWIDTHS", "fit_autoencoder", "fit_gmmn", "gmmn_loss"]

LI_ET_AL_BANDWIDTHS = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)  # their MNIST kernel widths (data in [0, 1])


def gmmn_loss(gmmn: GMMN, batch: torch.Tensor, bandwidths: Sequence[float], *,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """The squared MMD between ``batch`` and as many samples of ``gmmn`` (unbiased estimator),
    differentiable in the generator's parameters."""
    fake = gmmn.generate(gmmn.latent(batch.shape[0], generator=generator))
    return mmd(fake, batch, bandwidths)


def fit_gmmn(
    gmmn: GMMN,
    data,
    *,
    bandwidths: Sequence[float] = LI_ET_AL_BANDWIDTHS,
    epochs: int = 10,
    batch_size: int = 1000,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    lr_schedule: str | Callable[[int], float] | None = None,
    generator: torch.Generator | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
    eval_fn: Callable[[GMMN, int], dict] | None = None,
) -> list[dict]:
    """Trains ``gmmn`` on the rows of ``data`` (``[rows, n_visible]``) by the squared MMD with the
    kernel widths ``bandwidths`` (default: Li et al.'s), by Adam. Returns ``fit``'s history: per
    epoch the mean ``mmd2`` and what ``eval_fn(gmmn, epoch)`` returns."""
    fn = "fit_gmmn"
    p = gmmn._param()
    data = training_rows(data, gmmn.n_visible, p.dtype, fn)
    check_finite_parameters(gmmn, fn)
    if batch_size < 2:
        raise ValueError(f"{fn}: batch_size must be >= 2 (the unbiased MMD needs two rows a side), got {batch_size}")
    if distributed.is_distributed():
        raise ValueError(f"{fn}: data-parallel GMMN training is not supported (the MMD of a batch is not a sum over "
                         "the ranks' rows); run it in one process")
    bandwidths = [float(s) for s in bandwidths]
    generator, shuffle_gen = distributed.run_generators(generator, p.device)
    optimizer = optimizer or fused_adam(gmmn.parameters(), p.device, lr=lr)

    def step(batch) -> dict | None:
        x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device=p.device, dtype=p.dtype)
        if x.shape[0] < 2:  # an epoch's last, one-row batch: the unbiased MMD is undefined
            return None
        loss = gmmn_loss(gmmn, x, bandwidths, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"mmd2": loss.detach()}

    evaluate = None if eval_fn is None else (lambda epoch: eval_fn(gmmn, epoch))
    return fit(step, data, model=gmmn, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
               lr_schedule=lr_schedule, generators={"generator": generator}, shuffle_generator=shuffle_gen,
               eval_fn=evaluate, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
               extra=gmmn.checkpoint_header(), progress=progress, desc="GMMN epochs")


def fit_autoencoder(
    autoencoder: Autoencoder,
    data,
    *,
    epochs: int = 10,
    batch_size: int = 100,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[dict]:
    """Trains ``autoencoder`` on the rows of ``data`` (values in [0, 1]) by the cross-entropy of
    its reconstructions, by Adam. Returns ``fit``'s history: per epoch the mean ``reconstruction``
    loss (nats per row)."""
    fn = "fit_autoencoder"
    p = autoencoder._param()
    data = training_rows(data, autoencoder.layer_sizes[0], p.dtype, fn)
    if data.min() < 0 or data.max() > 1:
        raise ValueError(f"{fn}: data must lie in [0, 1] (the reconstruction is a cross-entropy), got values in "
                         f"[{data.min().item():g}, {data.max().item():g}]")
    check_finite_parameters(autoencoder, fn)
    _, shuffle_gen = distributed.run_generators(generator, p.device)
    optimizer = fused_adam(autoencoder.parameters(), p.device, lr=lr)

    def step(batch) -> dict:
        x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device=p.device, dtype=p.dtype)
        logits = autoencoder.decode_logits(autoencoder.encode(x))
        loss = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"reconstruction": loss.detach()}

    return fit(step, data, model=autoencoder, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
               shuffle_generator=shuffle_gen, checkpoint=checkpoint, extra=autoencoder.checkpoint_header(),
               progress=progress, desc="autoencoder epochs")
