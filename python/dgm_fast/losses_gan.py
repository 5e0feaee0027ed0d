"""GAN losses from discriminator logits: both losses in one native pass, a native backward.

``torch.ops.dgm_fast.gan_losses`` (CPU kernels in ``csrc/losses/gan.cpp``, CUDA kernels in
``cuda/losses/gan.cu``) with its fake kernel and autograd formula (the backward is the native
op ``torch.ops.dgm_fast.gan_losses_backward``, so it works under ``torch.compile``). The
plain-PyTorch definitions the tests hold it to are at the end of this module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _extension  # noqa: F401  (registers the ops)

__all__ = ["gan_losses", "KINDS", "reference_gan_losses", "naive_gan_losses"]

KINDS = ("minimax", "non_saturating", "reversed")

_lib = torch.ops.dgm_fast


def gan_losses(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "non_saturating"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(discriminator_loss, generator_loss)``, 0-dim tensors, from the discriminator's logits.

    With ``softplus(x) = log(1 + exp(x))``, formed without overflow (finite at logits of any
    size), and means over all elements of each tensor:

    * discriminator loss: ``mean softplus(-real) + mean softplus(fake)``
      (``-mean log D(x) - mean log(1 - D(G(z)))``);
    * generator loss, by ``kind``:

      - ``"minimax"``: ``-mean softplus(fake)`` (``mean log(1 - D(G(z)))``, Goodfellow et al.);
      - ``"non_saturating"``: ``mean softplus(-fake)`` (``-mean log D(G(z))``);
      - ``"reversed"``: ``mean softplus(-fake) + mean softplus(real)``: the discriminator's
        cross-entropy with the labels swapped (fakes labelled real, reals labelled fake), the
        generator objective of the unified / variational-EM view of GANs. Its real-logit term is
        constant for the generator; its gradient with respect to ``real_logits`` is returned.

    Args:
        real_logits: ``[*]`` logits of real samples (float32, float64, bfloat16, float16).
        fake_logits: ``[*]`` logits of generated samples, same dtype and device.
        kind: ``"minimax"``, ``"non_saturating"`` (default) or ``"reversed"``.

    Both losses are differentiable with respect to both logit tensors. Sums are accumulated in
    float64 whatever the input dtype.
    """
    return _lib.gan_losses(real_logits, fake_logits, kind)


def _check_same_device(a, b, name_a, name_b):
    # A meta tensor among CPU tensors would otherwise route the whole call to the fake kernel.
    torch._check(
        a.device == b.device,
        lambda: f"gan_losses: {name_a} is on {a.device} but {name_b} is on {b.device}; "
        "move both to the same device",
    )


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(
            f"gan_losses: kind must be 'minimax', 'non_saturating' or 'reversed', got '{kind}'"
        )


@torch.library.register_fake("dgm_fast::gan_losses")
def _gan_losses_fake(real_logits, fake_logits, kind="non_saturating"):
    _check_same_device(real_logits, fake_logits, "real_logits", "fake_logits")
    _check_kind(kind)
    torch._check(
        real_logits.dtype == fake_logits.dtype,
        lambda: f"gan_losses: fake_logits has dtype {fake_logits.dtype} but real_logits has "
        f"dtype {real_logits.dtype}",
    )
    return real_logits.new_empty(()), real_logits.new_empty(())


@torch.library.register_fake("dgm_fast::gan_losses_backward")
def _gan_losses_backward_fake(grad_d, grad_g, real_logits, fake_logits, kind):
    _check_same_device(real_logits, fake_logits, "real_logits", "fake_logits")
    _check_kind(kind)
    return real_logits.new_empty(real_logits.shape), fake_logits.new_empty(fake_logits.shape)


def _gan_losses_setup(ctx, inputs, output):
    real_logits, fake_logits, kind = inputs
    ctx.save_for_backward(real_logits, fake_logits)
    ctx.kind = kind


def _gan_losses_backward(ctx, grad_d, grad_g):
    real_logits, fake_logits = ctx.saved_tensors
    # An unused loss has no gradient: pass zero for it.
    if grad_d is None:
        grad_d = real_logits.new_zeros(())
    if grad_g is None:
        grad_g = real_logits.new_zeros(())
    grad_real, grad_fake = _lib.gan_losses_backward(
        grad_d.to(real_logits.dtype), grad_g.to(real_logits.dtype), real_logits, fake_logits, ctx.kind
    )
    return grad_real, grad_fake, None


torch.library.register_autograd(
    "dgm_fast::gan_losses", _gan_losses_backward, setup_context=_gan_losses_setup
)


# ---------------------------------------------------------------------------------------------
# Plain-PyTorch references


def reference_gan_losses(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "non_saturating"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The definition of :func:`gan_losses` in plain PyTorch ops (``F.softplus``, stable),
    computed in float64 and returned in the inputs' dtype; differentiable by autograd."""
    _check_kind(kind)
    r, f = real_logits.double(), fake_logits.double()
    d_loss = F.softplus(-r).mean() + F.softplus(f).mean()
    if kind == "minimax":
        g_loss = -F.softplus(f).mean()
    elif kind == "non_saturating":
        g_loss = F.softplus(-f).mean()
    else:  # reversed labels: fakes labelled real (target 1), reals labelled fake (target 0)
        g_loss = F.softplus(-f).mean() + F.softplus(r).mean()
    return d_loss.to(real_logits.dtype), g_loss.to(real_logits.dtype)


def naive_gan_losses(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "non_saturating"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The textbook form through probabilities, ``torch.log(torch.sigmoid(...))``: what the
    stable form replaces. It overflows to inf (or gives nan gradients) once a sigmoid rounds to
    0 or 1, e.g. at logits of +-100 in float32."""
    _check_kind(kind)
    d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    d_loss = -torch.log(d_real).mean() - torch.log(1 - d_fake).mean()
    if kind == "minimax":
        g_loss = torch.log(1 - d_fake).mean()
    elif kind == "non_saturating":
        g_loss = -torch.log(d_fake).mean()
    else:
        g_loss = -torch.log(d_fake).mean() - torch.log(1 - d_real).mean()
    return d_loss, g_loss
