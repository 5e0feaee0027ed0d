"""NADE's recurrence as native ops: the exact log-probability of binary rows with its backward,
and ancestral sampling, each one call over all positions.

``torch.ops.dgm_fast.nade_log_prob``, ``nade_log_prob_backward`` and ``nade_sample`` (schemas
and CPU kernels in ``csrc/nade/nade.cpp``, the shared arithmetic in
``csrc/include/dgm_fast/nade.h``, CUDA kernels in ``cuda/nade/nade.cu``) with their fake
kernels and the autograd formula. The plain-PyTorch definitions the tests hold them to are in
:mod:`dgm_fast.reference.nade`.

The parameters of a NADE with ``D`` visible and ``H`` hidden units (Larochelle & Murray 2011):
``bias_visible [D]`` (b), ``bias_hidden [H]`` (c), ``weight_in [D, H]`` (W: row d holds the
weights from visible unit d to the hidden units) and ``weight_out [D, H]`` (V: row d holds the
weights from the hidden units to unit d's output). Along an ordering ``o`` of the units::

    a = c;  for i = 0 .. D-1, d = o[i]:
        logit_d = b_d + V[d] . sigmoid(a)      # p(x_d = 1 | x before d) = sigmoid(logit_d)
        a = a + x_d W[d]

Memory is ``O(B (D + H) + D H)``: one row's running pre-activations at a time, never the
``[B, D, H]`` tensor of all positions' hidden units.
"""

from __future__ import annotations

import torch

from .. import _extension  # noqa: F401  (registers the ops)
from ._checks import check_generator, check_same_device, check_type, check_value, dtype_name, sizes

__all__ = ["nade_log_prob", "nade_sample"]

_lib = torch.ops.dgm_fast


def nade_log_prob(
    x: torch.Tensor,
    bias_visible: torch.Tensor,
    bias_hidden: torch.Tensor,
    weight_in: torch.Tensor,
    weight_out: torch.Tensor,
    order: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log_prob, logits)``: ``log p(x)`` per row and every unit's conditional logit.

    Args:
        x: ``[B, D]`` states (0/1; a value in [0, 1] gives the cross-entropy form
            ``x l - softplus(l)`` and feeds ``x W[d]`` forward). A constant: no gradient.
        bias_visible, bias_hidden, weight_in, weight_out: the parameters (see the module),
            float32 or float64, one dtype and device.
        order: ``None`` (the units in index order), ``[D]`` (one ordering for every row) or
            ``[B, D]`` (one per row), int64: a permutation of ``0..D-1`` per row. On the CPU
            anything else is an error; on CUDA, where raising would need a device
            synchronisation, a row whose ordering is not a permutation gets NaN.

    Returns:
        ``log_prob [B]`` and ``logits [B, D]``, ``logits[r, d]`` the logit of
        ``p(x_d = 1 | the units before d in row r's ordering)``. Both are differentiable in the
        four parameters; the backward is one native sweep that recomputes the recurrence.
    """
    return _lib.nade_log_prob(x, bias_visible, bias_hidden, weight_in, weight_out, order)


def nade_sample(
    bias_visible: torch.Tensor,
    bias_hidden: torch.Tensor,
    weight_in: torch.Tensor,
    weight_out: torch.Tensor,
    n: int,
    order: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draws ``n`` rows by ancestral sampling: ``(sample [n, D], logits [n, D])``, each unit drawn
    from ``sigmoid(logit)`` given the units drawn before it in the row's ordering (``order``:
    ``None``, ``[D]`` or ``[n, D]``, as in :func:`nade_log_prob`).

    One native call for the whole batch, on the samplers' Philox contract: unit ``i`` of row
    ``r``'s ordering takes word ``r * D + i`` of the call, and the same generator state gives the
    same bits on the CPU and on CUDA. No gradient.
    """
    check_generator(generator, weight_in, "nade_sample")
    return _lib.nade_sample(bias_visible, bias_hidden, weight_in, weight_out, n, order, generator=generator)


# ---- the checks of csrc/nade/nade.cpp, for the fake kernels ------------------------------------

def _check_params(bias_visible, bias_hidden, weight_in, weight_out, op):
    # check_nade_params
    for t, name in ((weight_in, "weight_in"), (weight_out, "weight_out"), (bias_visible, "bias_visible"),
                    (bias_hidden, "bias_hidden")):
        if t is None:
            continue
        check_type(t.dtype in (torch.float32, torch.float64),
                   lambda t=t, name=name: f"{op}: {name} must be float32 or float64, got {dtype_name(t.dtype)}")
        check_same_device(weight_in, t, op, "weight_in", name)
        check_type(t.dtype == weight_in.dtype, lambda t=t, name=name: f"{op}: {name} has dtype "
                   f"{dtype_name(t.dtype)} but weight_in has dtype {dtype_name(weight_in.dtype)}")
    check_value(weight_in.dim() == 2 and weight_in.shape[0] >= 1 and weight_in.shape[1] >= 1,
                lambda: f"{op}: weight_in must be [D, H] (a row of hidden-unit weights per visible unit, D, H >= 1), "
                f"got {sizes(weight_in)}")
    check_value(weight_out.shape == weight_in.shape, lambda: f"{op}: weight_out must have the shape of weight_in "
                f"{sizes(weight_in)}, got {sizes(weight_out)}")
    D, H = weight_in.shape
    check_value(bias_visible is None or (bias_visible.dim() == 1 and bias_visible.shape[0] == D),
                lambda: f"{op}: bias_visible must be [{D}], got {sizes(bias_visible)}")
    check_value(bias_hidden.dim() == 1 and bias_hidden.shape[0] == H,
                lambda: f"{op}: bias_hidden must be [{H}], got {sizes(bias_hidden)}")


def _check_rows(t, name, rows, D, like, op):
    # check_nade_rows
    check_same_device(like, t, op, "weight_in", name)
    check_type(t.dtype == like.dtype, lambda: f"{op}: {name} has dtype {dtype_name(t.dtype)} but the parameters "
               f"have dtype {dtype_name(like.dtype)}")
    check_value(t.dim() == 2 and t.shape[1] == D and (rows < 0 or t.shape[0] == rows),
                lambda: f"{op}: {name} must be [{'batch' if rows < 0 else rows}, {D}], got {sizes(t)}")


def _check_order(order, rows, D, like, op):
    # check_nade_order
    if order is None:
        return
    check_same_device(like, order, op, "weight_in", "order")
    check_type(order.dtype == torch.int64, lambda: f"{op}: order must be int64, got {dtype_name(order.dtype)}")
    check_value((order.dim() == 1 and order.shape[0] == D) or (order.dim() == 2 and tuple(order.shape) == (rows, D)),
                lambda: f"{op}: order must be [{D}] (one ordering for every row) or [{rows}, {D}] (one per row), "
                f"got {sizes(order)}")


@torch.library.register_fake("dgm_fast::nade_log_prob")
def _nade_log_prob_fake(x, bias_visible, bias_hidden, weight_in, weight_out, order=None):
    op = "nade_log_prob"
    _check_params(bias_visible, bias_hidden, weight_in, weight_out, op)
    D = weight_in.shape[0]
    _check_rows(x, "x", -1, D, weight_in, op)
    _check_order(order, x.shape[0], D, weight_in, op)
    return weight_in.new_empty(x.shape[0]), weight_in.new_empty(x.shape[0], D)


@torch.library.register_fake("dgm_fast::nade_log_prob_backward")
def _nade_log_prob_backward_fake(grad_log_prob, grad_logits, x, logits, bias_hidden, weight_in, weight_out,
                                 order=None):
    op = "nade_log_prob_backward"
    _check_params(None, bias_hidden, weight_in, weight_out, op)
    D, H = weight_in.shape
    _check_rows(x, "x", -1, D, weight_in, op)
    B = x.shape[0]
    _check_rows(logits, "logits", B, D, weight_in, op)
    if grad_logits is not None:
        _check_rows(grad_logits, "grad_logits", B, D, weight_in, op)
    check_same_device(weight_in, grad_log_prob, op, "weight_in", "grad_log_prob")
    check_type(grad_log_prob.dtype == weight_in.dtype, lambda: f"{op}: grad_log_prob has dtype "
               f"{dtype_name(grad_log_prob.dtype)} but the parameters have dtype {dtype_name(weight_in.dtype)}")
    check_value(grad_log_prob.dim() == 1 and grad_log_prob.shape[0] == B,
                lambda: f"{op}: grad_log_prob must be [{B}], got {sizes(grad_log_prob)}")
    _check_order(order, B, D, weight_in, op)
    return (weight_in.new_empty(D), weight_in.new_empty(H), weight_in.new_empty(D, H), weight_in.new_empty(D, H))


@torch.library.register_fake("dgm_fast::nade_sample")
def _nade_sample_fake(bias_visible, bias_hidden, weight_in, weight_out, n, order=None, *, generator=None):
    op = "nade_sample"
    _check_params(bias_visible, bias_hidden, weight_in, weight_out, op)
    check_value(n >= 0, lambda: f"{op}: n must be >= 0, got {n}")
    D = weight_in.shape[0]
    _check_order(order, n, D, weight_in, op)
    return weight_in.new_empty(n, D), weight_in.new_empty(n, D)


def _setup(ctx, inputs, output):
    x, bias_visible, bias_hidden, weight_in, weight_out, order = inputs
    ctx.save_for_backward(x, output[1], bias_hidden, weight_in, weight_out, order)


def _backward(ctx, grad_log_prob, grad_logits):
    x, logits, bias_hidden, weight_in, weight_out, order = ctx.saved_tensors
    if grad_log_prob is None:
        grad_log_prob = logits.new_zeros(logits.shape[0])
    grads = _lib.nade_log_prob_backward(grad_log_prob.contiguous(), grad_logits, x, logits, bias_hidden, weight_in,
                                        weight_out, order)
    return None, *grads, None


torch.library.register_autograd("dgm_fast::nade_log_prob", _backward, setup_context=_setup)
