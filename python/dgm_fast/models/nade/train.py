"""Training a NADE by maximum likelihood through :func:`dgm_fast.train.fit`: the exact mean
log-likelihood of each batch, its gradient from the native backward sweep, and Adam (or any
optimizer given). ``order_agnostic=True`` draws a random ordering for every example of every
batch (Uria, Murray & Larochelle 2014)."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from ...ops.nade import nade_log_prob
from ...train import distributed, fit, fused_adam
from .._checks import check_finite_parameters, training_rows
from .._orders import random_orders
from .model import NADE

__all__ = ["fit_nade"]


def fit_nade(
    nade: NADE,
    data: torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 100,
    lr: float = 1e-3,
    order_agnostic: bool = False,
    optimizer: torch.optim.Optimizer | None = None,
    lr_schedule: str | Callable[[int], float] | None = None,
    generator: torch.Generator | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
    eval_fn: Callable[[NADE, int], dict] | None = None,
) -> list[dict]:
    """Trains ``nade`` on the binary rows of ``data``. Returns ``fit``'s history: per epoch the
    mean training ``log_prob`` (nats per row, under the orderings trained on) and what
    ``eval_fn(nade, epoch)`` returns."""
    fn = "fit_nade"
    p = nade.weight_in
    data = training_rows(data, nade.n_visible, p.dtype, fn, binary=True)
    check_finite_parameters(nade, fn)
    generator, shuffle_gen = distributed.run_generators(generator, p.device)
    optimizer = optimizer or fused_adam(nade.parameters(), p.device, lr=lr)

    def step(batch) -> dict:
        x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device=p.device, dtype=p.dtype)
        order = random_orders(len(x), nade.n_visible, generator) if order_agnostic else nade.order
        log_prob, _ = nade_log_prob(x, *nade._params(), order)
        loss = -log_prob.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"log_prob": -loss.detach()}

    evaluate = None if eval_fn is None else (lambda epoch: eval_fn(nade, epoch))
    return fit(step, data, model=nade, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
               lr_schedule=lr_schedule, generators={"generator": generator}, shuffle_generator=shuffle_gen,
               eval_fn=evaluate, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
               extra=nade.checkpoint_header(), progress=progress,
               desc="NADE" + (" (order-agnostic)" if order_agnostic else "") + " epochs")
