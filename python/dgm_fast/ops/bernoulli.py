"""The Bernoulli layer family: the fused ops of sigmoid belief nets, Helmholtz machines and NVIL.

* :func:`bernoulli_sample_log_prob`: draws a layer of Bernoulli units from their logits and
  returns, with the sample, its log-probability per row, from one pass (one exp per unit);
* :func:`bernoulli_log_prob`: the log-probability of given states per row, with a native
  backward.

Declared in ``csrc/bernoulli/bernoulli.cpp`` (``torch.ops.dgm_fast.bernoulli_sample_log_prob``,
``bernoulli_log_prob``, ``bernoulli_log_prob_backward``), CUDA kernels in
``cuda/bernoulli/bernoulli.cu``, plain-PyTorch definitions in
:mod:`dgm_fast.reference.bernoulli`. The draws follow the samplers' Philox contract
(:mod:`dgm_fast.ops.samplers`): the same generator state gives the same sample as
:func:`dgm_fast.ops.bernoulli_logits`, on the CPU and on CUDA.
"""

from __future__ import annotations

import torch

from .. import _extension  # noqa: F401  (registers the ops)
from ._checks import check_float_dtype, check_generator, check_same_device, check_type, check_value, dtype_name, sizes

__all__ = ["bernoulli_log_prob", "bernoulli_sample_log_prob"]

_lib = torch.ops.dgm_fast


def bernoulli_sample_log_prob(
    logits: torch.Tensor, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draws ``sample ~ Bernoulli(sigmoid(logits))`` and returns ``(sample, log_prob)``.

    Args:
        logits: ``[..., D]`` float32, float64, bfloat16 or float16, any strides: the units of a
            layer along the last dimension.
        generator: a ``torch.Generator`` on the logits' device; default: torch's default one.

    Returns:
        ``sample``, ``[..., D]`` 0/1 values in the logits' dtype (no gradient), and ``log_prob``,
        ``[...]``: ``sum_d log Bernoulli(sample_d | sigmoid(logits_d))``, finite for every
        logit (0 for a saturated one). ``log_prob`` is differentiable in the logits: its gradient
        is ``sample - sigmoid(logits)``, the score function of REINFORCE, wake-sleep and NVIL.

    The sample is the one :func:`dgm_fast.ops.bernoulli_logits` draws from the same generator
    state, bit for bit. A NaN logit raises on the CPU; on CUDA it gives NaN instead, because
    raising would need a device synchronisation.
    """
    check_generator(generator, logits, "bernoulli_sample_log_prob")
    return _lib.bernoulli_sample_log_prob(logits, generator=generator)


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``sum_d log Bernoulli(x_d | sigmoid(logits_d))`` over the last dimension: ``[..., D] -> [...]``.

    ``x`` holds states (0/1; any value in [0, 1] gives the negative binary cross-entropy) and is
    treated as a constant: it gets no gradient. The gradient in the logits,
    ``x - sigmoid(logits)`` times the incoming one, is one native pass. Stable for any finite
    logit: ``x l - softplus(l)`` with ``softplus`` formed from ``exp(-|l|)``.
    """
    return _lib.bernoulli_log_prob(x, logits)


def _check_logits_rows(logits, op):
    # csrc/bernoulli/bernoulli_checks.h: check_bernoulli_logits_rows
    check_float_dtype(logits, op, "logits")
    check_value(logits.dim() >= 1,
                lambda: f"{op}: logits must have shape [..., units] (at least one dimension), got a 0-dim tensor")


def _check_log_prob_args(x, logits, op):
    # csrc/bernoulli/bernoulli_checks.h: check_bernoulli_log_prob_args
    _check_logits_rows(logits, op)
    check_same_device(logits, x, op, "logits", "x")
    check_type(x.dtype == logits.dtype, lambda: f"{op}: x has dtype {dtype_name(x.dtype)} but logits have dtype "
               f"{dtype_name(logits.dtype)}; pass both in one dtype")
    check_value(x.shape == logits.shape,
                lambda: f"{op}: x must have the shape of logits {sizes(logits)}, got {sizes(x)}")


@torch.library.register_fake("dgm_fast::bernoulli_sample_log_prob")
def _sample_log_prob_fake(logits, *, generator=None):
    _check_logits_rows(logits, "bernoulli_sample_log_prob")
    return logits.new_empty(logits.shape), logits.new_empty(logits.shape[:-1])


@torch.library.register_fake("dgm_fast::bernoulli_log_prob")
def _log_prob_fake(x, logits):
    _check_log_prob_args(x, logits, "bernoulli_log_prob")
    return logits.new_empty(logits.shape[:-1])


@torch.library.register_fake("dgm_fast::bernoulli_log_prob_backward")
def _log_prob_backward_fake(grad, x, logits):
    # csrc/bernoulli/bernoulli_checks.h: check_bernoulli_log_prob_backward_args
    op = "bernoulli_log_prob_backward"
    _check_log_prob_args(x, logits, op)
    check_same_device(logits, grad, op, "logits", "grad")
    check_type(grad.dtype == logits.dtype,
               lambda: f"{op}: grad has dtype {dtype_name(grad.dtype)} but logits have dtype {dtype_name(logits.dtype)}")
    rows = logits.shape[:-1]
    check_value(grad.shape == rows, lambda: f"{op}: grad must have shape [{', '.join(map(str, rows))}] (the shape of "
                f"logits without its last dimension), got {sizes(grad)}")
    return logits.new_empty(logits.shape)


def _sample_log_prob_setup(ctx, inputs, keyword_only_inputs, output):
    (logits,) = inputs
    sample, _ = output
    ctx.mark_non_differentiable(sample)
    ctx.save_for_backward(sample, logits)


def _sample_log_prob_backward(ctx, grad_sample, grad_log_prob):
    # d log q(s) / d l = s - sigmoid(l); the sample itself is not differentiable
    sample, logits = ctx.saved_tensors
    if grad_log_prob is None:
        return None
    return _lib.bernoulli_log_prob_backward(grad_log_prob, sample, logits)


torch.library.register_autograd(
    "dgm_fast::bernoulli_sample_log_prob", _sample_log_prob_backward, setup_context=_sample_log_prob_setup
)


def _log_prob_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _log_prob_backward(ctx, grad):
    x, logits = ctx.saved_tensors
    return None, _lib.bernoulli_log_prob_backward(grad, x, logits)


torch.library.register_autograd("dgm_fast::bernoulli_log_prob", _log_prob_backward, setup_context=_log_prob_setup)
