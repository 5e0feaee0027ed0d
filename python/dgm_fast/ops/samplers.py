"""Fused native ops, with fake kernels (``torch.compile``, meta tensors) and autograd formulas.

The samplers family: ``bernoulli_logits``, ``normal_reparam`` and ``uniform_bits``. Each op is
declared once with the dispatcher (``torch.ops.dgm_fast.*``, schemas and CPU kernels in
``csrc/samplers/``, CUDA kernels in ``cuda/samplers/``); this module adds the Python-side
registrations and the user-facing functions. The plain-PyTorch definition of each op is in
:mod:`dgm_fast.reference.samplers`.

Randomness: each call takes a Philox4x32-10 ``(seed, offset)`` from ``generator`` (or torch's
default generator of the tensors' device, so ``torch.manual_seed`` governs it) and advances it.
Element ``i`` of a call uses word ``i`` of that stream, so results do not depend on thread count
or launch configuration, and the same seed gives the same bits on CPU and CUDA.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from .. import _extension  # noqa: F401  (registers the ops)
from ._checks import check_float_dtype, check_generator, check_same_device, check_type, check_value, dtype_name, sizes

__all__ = ["bernoulli_logits", "normal_reparam", "uniform_bits"]

_lib = torch.ops.dgm_fast


# ---------------------------------------------------------------------------------------------
# bernoulli_logits


def bernoulli_logits(
    logits: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
    return_probs: bool = False,
):
    """Samples ``Bernoulli(sigmoid(logits + bias))`` in one pass.

    Args:
        logits: ``[..., H]`` float32, float64, bfloat16 or float16 tensor, any strides.
        bias: optional ``[H]`` tensor of the same dtype, added along the last dimension.
            The sum is formed in float32 (float64 for float64 inputs), not in the input dtype.
        generator: a ``torch.Generator`` on the tensors' device; default: torch's default one.
        return_probs: also return ``sigmoid(logits + bias)``.

    Returns:
        ``sample`` (0/1 values, the dtype of ``logits``), or ``(sample, probs)``. The sample has no
        gradient; ``probs`` is differentiable with respect to ``logits`` and ``bias``.

    A NaN logit raises on the CPU. On CUDA it yields NaN in ``sample`` and ``probs`` instead,
    because raising would need a device synchronisation.
    """
    check_generator(generator, logits, "bernoulli_logits")
    sample, probs = _lib.bernoulli_logits(
        logits, bias, generator=generator, return_probs=return_probs
    )
    return (sample, probs) if return_probs else sample


@torch.library.register_fake("dgm_fast::bernoulli_logits")
def _bernoulli_logits_fake(logits, bias=None, *, generator=None, return_probs=False):
    # csrc/samplers/samplers_checks.h: check_bernoulli_logits_args
    op = "bernoulli_logits"
    check_float_dtype(logits, op, "logits")
    if bias is not None:
        check_same_device(logits, bias, op, "logits", "bias")
        check_type(bias.dtype == logits.dtype,
                   lambda: f"{op}: bias has dtype {dtype_name(bias.dtype)} but logits have dtype {dtype_name(logits.dtype)}")
        check_value(logits.dim() >= 1, lambda: f"{op}: a bias needs logits with at least one dimension")
        check_value(bias.dim() == 1 and bias.shape[0] == logits.shape[-1],
                    lambda: f"{op}: bias must have shape [{logits.shape[-1]}] (the last dimension of logits, "
                    f"shape {sizes(logits)}), got {sizes(bias)}")
    sample = logits.new_empty(logits.shape)
    probs = logits.new_empty(logits.shape if return_probs else (0,))
    return sample, probs


def _bernoulli_logits_setup(ctx, inputs, keyword_only_inputs, output):
    logits, bias = inputs
    sample, probs = output
    ctx.mark_non_differentiable(sample)
    ctx.save_for_backward(probs)
    ctx.return_probs = keyword_only_inputs["return_probs"]
    ctx.bias_shape = None if bias is None else bias.shape


def _bernoulli_logits_backward(ctx, grad_sample, grad_probs):
    # The sample is a step function of the logits: zero gradient. Through probs:
    # d sigmoid(x) / dx = p (1 - p).
    if not ctx.return_probs or grad_probs is None:
        return None, None
    (probs,) = ctx.saved_tensors
    grad_logits = grad_probs * probs * (1 - probs)
    grad_bias = None
    if ctx.bias_shape is not None and ctx.needs_input_grad[1]:
        grad_bias = grad_logits.reshape(-1, ctx.bias_shape[0]).sum(0)
    return grad_logits, grad_bias


torch.library.register_autograd(
    "dgm_fast::bernoulli_logits",
    _bernoulli_logits_backward,
    setup_context=_bernoulli_logits_setup,
)


# ---------------------------------------------------------------------------------------------
# normal_reparam


def normal_reparam(
    mu: torch.Tensor,
    log_var: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reparameterisation trick in one pass: ``z = mu + exp(log_var / 2) * eps``.

    Args:
        mu, log_var: tensors of the same shape and dtype (float32, float64, bfloat16, float16).
        generator: a ``torch.Generator`` on the tensors' device; default: torch's default one.

    Returns:
        ``(z, eps)`` with ``eps ~ N(0, 1)`` (Box-Muller from Philox words). ``z`` is
        differentiable in ``mu`` and ``log_var``; ``eps`` is not differentiable.
    """
    check_generator(generator, mu, "normal_reparam")
    return _lib.normal_reparam(mu, log_var, generator=generator)


@torch.library.register_fake("dgm_fast::normal_reparam")
def _normal_reparam_fake(mu, log_var, *, generator=None):
    # csrc/samplers/samplers_checks.h: check_normal_reparam_args
    op = "normal_reparam"
    check_float_dtype(mu, op, "mu")
    check_same_device(mu, log_var, op, "mu", "log_var")
    check_type(log_var.dtype == mu.dtype,
               lambda: f"{op}: log_var has dtype {dtype_name(log_var.dtype)} but mu has dtype {dtype_name(mu.dtype)}")
    check_value(mu.shape == log_var.shape,
                lambda: f"{op}: mu and log_var must have the same shape, got {sizes(mu)} and {sizes(log_var)}")
    return mu.new_empty(mu.shape), mu.new_empty(mu.shape)


def _normal_reparam_setup(ctx, inputs, keyword_only_inputs, output):
    _, log_var = inputs
    _, eps = output
    ctx.mark_non_differentiable(eps)
    ctx.save_for_backward(log_var, eps)


def _normal_reparam_backward(ctx, grad_z, grad_eps):
    log_var, eps = ctx.saved_tensors
    grad_mu = grad_z
    grad_log_var = grad_z * 0.5 * torch.exp(0.5 * log_var) * eps
    return grad_mu, grad_log_var


torch.library.register_autograd(
    "dgm_fast::normal_reparam", _normal_reparam_backward, setup_context=_normal_reparam_setup
)


# ---------------------------------------------------------------------------------------------
# uniform_bits


def uniform_bits(
    shape: int | Sequence[int],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The raw Philox words a sampling call would draw, as a ``torch.uint32`` tensor.

    Word ``i`` is ``philox4x32_10(counter=(i // 4, offset), key=seed)[i % 4]`` (see
    ``csrc/include/dgm_fast/philox.h``); it is what the samplers compare their probabilities
    with, and what the tests use to check that CPU and CUDA draw identical streams.

    ``device`` defaults to the generator's device, or the CPU.
    """
    check_generator(generator, None, "uniform_bits")
    size = _shape(shape)
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    return _lib.uniform_bits(size, generator=generator, device=torch.device(device))


def _shape(shape) -> list[int]:
    """An int (Python, NumPy or a 0-dim integer tensor) or a sequence of them, as a list."""
    def as_int(value):
        if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point() \
                and value.dtype != torch.bool:
            return int(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"uniform_bits: shape must be an int or a sequence of ints, got {shape!r}")
        return int(value)

    if isinstance(shape, (numbers.Integral, torch.Tensor)) and not isinstance(shape, bool):
        return [as_int(shape)]
    if not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)):
        raise TypeError(f"uniform_bits: shape must be an int or a sequence of ints, got {shape!r}")
    return [as_int(s) for s in shape]


@torch.library.register_fake("dgm_fast::uniform_bits")
def _uniform_bits_fake(size, *, generator=None, device=None):
    return torch.empty(size, dtype=torch.uint32, device=device)
