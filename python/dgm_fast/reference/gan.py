"""Plain-PyTorch definitions of the GAN losses (:mod:`dgm_fast.ops.gan`), and the textbook form
they replace."""

from __future__ import annotations

import torch

from ..ops.gan import check_kind

__all__ = ["gan_losses", "naive_gan_losses"]


def softplus(x: torch.Tensor) -> torch.Tensor:
    """``log(1 + exp(x))`` without overflow or truncation."""
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


def gan_losses(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "non_saturating"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The definition of :func:`dgm_fast.losses.gan_losses` in plain PyTorch ops, computed in float64
    and returned in the inputs' dtype; differentiable by autograd. ``softplus(x)`` is
    ``max(x, 0) + log1p(exp(-|x|))``, exact for every x (``torch.nn.functional.softplus`` returns
    x itself above its threshold of 20, an error of up to 2e-9)."""
    check_kind(kind)
    r, f = real_logits.double(), fake_logits.double()
    d_loss = softplus(-r).mean() + softplus(f).mean()
    if kind == "minimax":
        g_loss = -softplus(f).mean()
    elif kind == "non_saturating":
        g_loss = softplus(-f).mean()
    else:  # reversed labels: fakes labelled real (target 1), reals labelled fake (target 0)
        g_loss = softplus(-f).mean() + softplus(r).mean()
    return d_loss.to(real_logits.dtype), g_loss.to(real_logits.dtype)


def naive_gan_losses(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "non_saturating"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The textbook form through probabilities, ``torch.log(torch.sigmoid(...))``: what the
    stable form replaces. It overflows to inf (or gives nan gradients) once a sigmoid rounds to
    0 or 1, e.g. at logits of +-100 in float32."""
    check_kind(kind)
    d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    d_loss = -torch.log(d_real).mean() - torch.log(1 - d_fake).mean()
    if kind == "minimax":
        g_loss = torch.log(1 - d_fake).mean()
    elif kind == "non_saturating":
        g_loss = -torch.log(d_fake).mean()
    else:
        g_loss = -torch.log(d_fake).mean() - torch.log(1 - d_real).mean()
    return d_loss, g_loss
