"""GAN losses from discriminator logits: both losses in one native pass, a native backward.

``torch.ops.dgm_fast.gan_losses`` (schema and CPU kernels in ``csrc/gan/gan.cpp``, CUDA kernels
in ``cuda/gan/gan.cu``) with its fake kernel and autograd formula (the backward is the native
op ``torch.ops.dgm_fast.gan_losses_backward``, so it works under ``torch.compile``). The
plain-PyTorch definition the tests hold it to is :func:`dgm_fast.reference.gan.gan_losses`.
"""

from __future__ import annotations

import torch

from .. import _extension  # noqa: F401  (registers the ops)
from ._checks import check_float_dtype, check_same_device, check_type, check_value, dtype_name, sizes

__all__ = ["gan_losses", "KINDS"]

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


def check_kind(kind: str) -> None:
    # csrc/gan/gan.cpp: parse_gan_kind
    check_value(kind in KINDS,
                lambda: f"gan_losses: kind must be 'minimax', 'non_saturating' or 'reversed', got '{kind}'")


def _check_logits(real_logits, fake_logits):
    # csrc/gan/gan.cpp: check_gan_losses_args
    op = "gan_losses"
    check_float_dtype(real_logits, op, "real_logits")
    check_same_device(real_logits, fake_logits, op, "real_logits", "fake_logits")
    check_type(fake_logits.dtype == real_logits.dtype, lambda: f"{op}: fake_logits has dtype "
               f"{dtype_name(fake_logits.dtype)} but real_logits has dtype {dtype_name(real_logits.dtype)}")
    check_value(real_logits.numel() > 0 and fake_logits.numel() > 0,
                lambda: f"{op}: real_logits and fake_logits need at least one element each (a mean over an "
                f"empty batch is undefined), got shapes {sizes(real_logits)} and {sizes(fake_logits)}")


@torch.library.register_fake("dgm_fast::gan_losses")
def _gan_losses_fake(real_logits, fake_logits, kind="non_saturating"):
    _check_logits(real_logits, fake_logits)
    check_kind(kind)
    return real_logits.new_empty(()), real_logits.new_empty(())


@torch.library.register_fake("dgm_fast::gan_losses_backward")
def _gan_losses_backward_fake(grad_d, grad_g, real_logits, fake_logits, kind):
    # csrc/gan/gan.cpp: check_gan_losses_backward_args
    _check_logits(real_logits, fake_logits)
    for g in (grad_d, grad_g):
        check_value(g.dim() == 0, lambda g=g: f"gan_losses_backward: the loss gradients must be 0-dim, got shape {sizes(g)}")
        check_same_device(g, real_logits, "gan_losses_backward", "a loss gradient", "real_logits")
        check_type(g.dtype == real_logits.dtype, lambda g=g: "gan_losses_backward: a loss gradient has dtype "
                   f"{dtype_name(g.dtype)} but the logits have dtype {dtype_name(real_logits.dtype)}")
    check_kind(kind)
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
