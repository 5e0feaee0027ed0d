"""Training a GAN through :func:`dgm_fast.train.fit` by Algorithm 1 of Goodfellow et al. (2014):
each update takes one minibatch of data and one of latent draws and takes a step of the
discriminator; every ``k``-th update also takes a step of the generator on a fresh latent
minibatch. Both losses are the fused :func:`dgm_fast.losses.gan_losses`; ``kind`` picks the
generator's objective:

* ``"minimax"``: ``E log(1 - D(G(z)))``, descended (the paper's game; its gradient vanishes
  where D rejects the samples confidently, early in training);
* ``"non_saturating"``: ``-E log D(G(z))`` (the paper's practical choice: the same fixed point,
  strong gradients early);
* ``"reversed"``: the discriminator's cross-entropy with the labels swapped, the generator
  objective of the variational-EM view of GANs (Hu et al. 2017), whose real term is constant for
  the generator.

Adam with ``betas=(0.5, 0.999)`` for both players (Radford et al. 2016's settings) unless you
pass optimizers.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from ...ops.gan import KINDS, gan_losses
from ...train import distributed, fit, fused_adam
from .._checks import check_choice, check_count, check_finite_parameters
from .model import GAN

__all__ = ["KINDS", "discriminator_loss", "fit_gan", "gan_update", "generator_loss"]


def discriminator_loss(gan: GAN, real: torch.Tensor, z: torch.Tensor):
    """``(loss, real_logits, fake_logits)``: the discriminator's cross-entropy
    ``-E log D(x) - E log(1 - D(G(z)))`` on ``real`` and on G(``z``), with no gradient into the
    generator (its samples are detached)."""
    with torch.no_grad():
        fake = gan.generator(z)
    real_logits, fake_logits = gan.discriminate(real), gan.discriminate(fake)
    loss, _ = gan_losses(real_logits, fake_logits, "non_saturating")  # the D loss is the same for every kind
    return loss, real_logits, fake_logits


def generator_loss(gan: GAN, z: torch.Tensor, kind: str, real_logits: torch.Tensor):
    """``(loss, fake_logits)``: the generator's objective ``kind`` on G(``z``), with the
    discriminator's ``real_logits`` (detached: constant for the generator; only ``"reversed"``
    adds a term of them, to the value)."""
    fake_logits = gan.discriminate(gan.generate(z))
    _, loss = gan_losses(real_logits.detach(), fake_logits, kind)
    return loss, fake_logits


def gan_update(gan: GAN, real: torch.Tensor, *, kind: str, optimizers, generator: torch.Generator | None = None,
               generator_step: bool = True) -> dict:
    """One update of Algorithm 1 on the batch ``real``: a discriminator step on it and as many
    latent draws, then (``generator_step``) a generator step on fresh draws. ``optimizers``:
    ``(generator's, discriminator's)``. Returns the metrics :func:`fit_gan` averages."""
    g_opt, d_opt = optimizers
    d_loss, real_logits, fake_logits = discriminator_loss(gan, real, gan.latent(real.shape[0], generator=generator))
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()
    metrics = {"d_loss": d_loss.detach(), "d_real": torch.sigmoid(real_logits.detach()).mean(),
               "d_fake": torch.sigmoid(fake_logits.detach()).mean()}
    if generator_step:
        g_loss, _ = generator_loss(gan, gan.latent(real.shape[0], generator=generator), kind, real_logits)
        g_opt.zero_grad(set_to_none=True)
        # not into D's parameters: their gradients are not needed
        g_loss.backward(inputs=[q for q in gan.generator.parameters() if q.requires_grad])
        g_opt.step()
        metrics["g_loss"] = g_loss.detach()
    return metrics


class _Updates:
    """The updates taken so far, checkpointed, so that a resumed run takes its generator steps on
    the same updates as an uninterrupted one."""

    def __init__(self):
        self.count = 0

    def state_dict(self) -> dict:
        return {"count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])


def fit_gan(
    gan: GAN,
    data,
    *,
    kind: str = "non_saturating",
    k: int = 1,
    epochs: int = 10,
    batch_size: int = 100,
    lr: float = 2e-4,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer] | None = None,
    generator: torch.Generator | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
    eval_fn: Callable[[GAN, int], dict] | None = None,
) -> list[dict]:
    """Trains ``gan`` on ``data`` (a tensor of rows, a Dataset or a DataLoader of real samples)
    with ``k`` discriminator steps per generator step.

    Args:
        kind: the generator's objective, ``"minimax"``, ``"non_saturating"`` or ``"reversed"``.
        k: discriminator steps (data minibatches) per generator step.
        optimizers: ``(generator's, discriminator's)``; default: Adam, ``lr``, betas (0.5, 0.999).
        generator: the latent draws' random generator (checkpointed).

    Returns ``fit``'s history: per epoch the mean ``d_loss``, ``d_real`` and ``d_fake`` (the
    discriminator's mean probability on data and on samples, at its steps), ``g_loss`` (at the
    generator's steps) and what ``eval_fn(gan, epoch)`` returns."""
    fn = "fit_gan"
    check_choice(kind, KINDS, fn, "kind")
    check_count(k, "k", fn)
    p = gan._param()
    if isinstance(data, torch.Tensor):
        if not data.is_floating_point():
            raise TypeError(f"{fn}: data must be floating point, got {data.dtype}")
        if data.dim() < 2 or (gan.n_visible is not None and data.shape[1:] != (gan.n_visible,)):
            want = f"[rows, {gan.n_visible}]" if gan.n_visible is not None else "[rows, ...]"
            raise ValueError(f"{fn}: data must be {want}, got {list(data.shape)}")
        data = data.to(p.dtype)
    check_finite_parameters(gan, fn)
    if distributed.is_distributed():
        raise ValueError(f"{fn}: data-parallel GAN training is not supported (the two players' gradients would need "
                         "averaging across the ranks); run it in one process")
    generator, shuffle_gen = distributed.run_generators(generator, p.device)
    if optimizers is None:
        optimizers = (fused_adam(gan.generator.parameters(), p.device, lr=lr, betas=(0.5, 0.999)),
                      fused_adam(gan.discriminator.parameters(), p.device, lr=lr, betas=(0.5, 0.999)))
    g_opt, d_opt = optimizers
    updates = _Updates()

    def step(batch) -> dict:
        real = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device=p.device, dtype=p.dtype)
        updates.count += 1
        return gan_update(gan, real, kind=kind, optimizers=optimizers, generator=generator,
                          generator_step=updates.count % k == 0)

    evaluate = None if eval_fn is None else (lambda epoch: eval_fn(gan, epoch))
    header = {} if gan.custom else gan.checkpoint_header()
    return fit(step, data, model=gan, optimizer=g_opt, epochs=epochs, batch_size=batch_size,
               state={"discriminator_optimizer": d_opt, "updates": updates}, generators={"generator": generator},
               shuffle_generator=shuffle_gen, eval_fn=evaluate, checkpoint=checkpoint,
               checkpoint_every=checkpoint_every, extra=header, progress=progress, desc=f"GAN {kind} epochs")
