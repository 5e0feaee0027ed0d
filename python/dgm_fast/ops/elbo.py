"""The ELBO family: the negative ELBO of a VAE and the importance-weighted (IWAE) bound as fused
native ops, with fake kernels (``torch.compile``, meta tensors) and autograd formulas.

The ops are declared in ``csrc/elbo/elbo.cpp`` (``torch.ops.dgm_fast.gaussian_elbo``,
``gaussian_elbo_backward``, ``gaussian_elbo_with_grad``, ``iwae_bound``, ``iwae_bound_backward``,
``iwae_bound_with_grad``);
the backward of each is an op of its own, so that it is opaque to, and works under,
``torch.compile``. With a gradient wanted on the CPU, :func:`gaussian_elbo` and :func:`iwae_bound`
take the loss and its gradient from one pass (the ``*_with_grad`` ops). Their plain-PyTorch
definitions are in :mod:`dgm_fast.reference.elbo`.
"""

from __future__ import annotations

import functools
import math

import torch
from torch.autograd.function import once_differentiable

from .. import _extension  # noqa: F401  (registers the ops)
from ._checks import check_choice, check_float_dtype, check_same_device, check_type, check_value, dtype_name, sizes

__all__ = ["gaussian_elbo", "iwae_bound"]

_lib = torch.ops.dgm_fast

_LIKELIHOODS = ("bernoulli", "gaussian")
_REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return per_example
    return per_example.sum() if reduction == "sum" else per_example.mean()


def _gradient_in_forward(*tensors: torch.Tensor) -> bool:
    """Whether a loss of ``tensors`` (on the first one's device and dtype) computes its gradient
    in the forward pass (the ``*_with_grad`` ops' one native pass): on the CPU, in float32 or
    float64, with a gradient wanted, in eager mode. Elsewhere the forward and backward ops run as two passes: a
    reduced-precision gradient would be rounded to the input dtype before the incoming gradient
    multiplies it; on CUDA the check for an incoming gradient of exactly 1
    (:func:`_times_incoming`) would be a device sync; torch.compile sees the two ops, opaque."""
    t = tensors[0]
    return (torch.is_grad_enabled() and any(p.requires_grad for p in tensors) and t.device.type == "cpu"
            and t.dtype in (torch.float32, torch.float64) and not torch.compiler.is_compiling())


@functools.lru_cache(maxsize=64)
def _row_scale(reduction: str, rows: int, dtype: torch.dtype) -> float:
    """The gradient each row gets from the reduction of a loss whose own gradient is 1: 1 for a
    sum (and per row), 1/rows for a mean, rounded in ``dtype`` as torch's mean backward rounds it,
    so that the gradient computed in the forward pass is the bits of the two-pass one."""
    return (torch.ones((), dtype=dtype) / rows).item() if reduction == "mean" else 1.0


def _times_incoming(grad: torch.Tensor, stored: torch.Tensor | None, row_dim: int) -> torch.Tensor | None:
    """A gradient computed in the forward pass for an incoming gradient of 1, times the incoming
    gradient ``grad``: a 0-dim one for a reduced loss, one per row (along ``row_dim`` of
    ``stored``) otherwise. An incoming 1 on the CPU leaves ``stored`` as it is (no pass over it,
    and the bits of multiplying by 1): a reduced loss's ``loss.backward()``, or per row the 1
    that ``sum()``'s backward expands to every row (stride 0)."""
    if stored is None:
        return None
    single = grad.dim() == 0 or (grad.numel() > 0 and all(s == 0 for s in grad.stride()))
    if (single and grad.device.type == "cpu" and not torch.compiler.is_compiling()
            and grad.reshape(-1)[0].item() == 1.0):
        return stored
    if grad.dim() == 0:
        return grad.to(stored.dtype) * stored
    return grad.to(stored.dtype).unsqueeze(row_dim) * stored


# ---------------------------------------------------------------------------------------------
# gaussian_elbo


def gaussian_elbo(
    x: torch.Tensor,
    recon: torch.Tensor,
    mu: torch.Tensor,
    log_var: torch.Tensor,
    *,
    likelihood: str = "bernoulli",
    reduction: str = "mean",
) -> torch.Tensor:
    """The negative ELBO of a VAE with posterior ``N(mu, exp(log_var))`` and prior ``N(0, I)``.

    Per example: the reconstruction negative log-likelihood summed over features plus
    ``KL = 0.5 * sum(mu^2 + exp(log_var) - 1 - log_var)``; then reduced over the batch.

    Args:
        x: ``[B, D]`` data. Treated as constant: it gets no gradient.
        recon: ``[B, D]`` decoder output: logits for ``likelihood="bernoulli"`` (any ``x`` in
            [0, 1]; ``softplus(l) - x l`` computed without overflow for any logit and without
            clamping), the mean of a unit-variance Gaussian for ``likelihood="gaussian"``.
        mu, log_var: ``[B, Z]`` posterior parameters.
        reduction: ``"mean"`` (over the batch), ``"sum"`` or ``"none"`` (``[B]``).

    All four tensors share one dtype (float32, float64, bfloat16 or float16; computed in float32,
    float64 for float64) and one device. Differentiable in ``recon``, ``mu`` and ``log_var`` by one
    native backward pass.
    """
    check_choice(likelihood, _LIKELIHOODS, "gaussian_elbo", "likelihood")
    check_choice(reduction, _REDUCTIONS, "gaussian_elbo", "reduction")
    if reduction == "mean" and x.dim() >= 1 and x.shape[0] == 0:
        raise ValueError(f"gaussian_elbo: the batch is empty (x has shape {list(x.shape)}); a mean over no "
                         "examples is undefined (reduction='sum' gives 0, 'none' an empty tensor)")
    # The gradient from the forward pass (one native pass over the data instead of two) pays off
    # where the backward then has nothing left to do, a reduced loss, or where the derivative
    # shares the loss's exponential (Bernoulli). Per row with a Gaussian likelihood, storing
    # r - x and scaling it later costs as much as recomputing it.
    if (_gradient_in_forward(x, recon, mu, log_var)
            and (reduction != "none" or likelihood == "bernoulli")):
        return _GaussianElboOnePass.apply(x, recon, mu, log_var, likelihood, reduction)
    return _reduce(_lib.gaussian_elbo(x, recon, mu, log_var, likelihood=likelihood), reduction)


class _GaussianElboOnePass(torch.autograd.Function):
    """The loss and its gradient from one native pass (``gaussian_elbo_with_grad``, with the row
    gradient of the reduction: one exp per element serves the loss and its derivative). The
    backward pass multiplies by the incoming gradient, or, for a reduced loss whose incoming
    gradient is 1, returns the stored gradient as it is. The same bits as the forward op followed
    by ``gaussian_elbo_backward`` (for a reduced loss, with an incoming gradient of 1); it keeps
    the [B, D] gradient until the backward."""

    @staticmethod
    def forward(ctx, x, recon, mu, log_var, likelihood, reduction):
        scale = _row_scale(reduction, x.shape[0], x.dtype)
        values, *grads = _lib.gaussian_elbo_with_grad(x, recon, mu, log_var, likelihood=likelihood, scale=scale)
        ctx.save_for_backward(*grads)
        return _reduce(values, reduction)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        wanted = ctx.needs_input_grad[1:4]
        grads = (_times_incoming(grad, d if w else None, 1) for d, w in zip(ctx.saved_tensors, wanted))
        return None, *grads, None, None


def _check_elbo_args(x, recon, mu, log_var, op):
    # csrc/elbo/elbo.cpp: check_gaussian_elbo_args
    check_float_dtype(x, op, "x")
    for t, name in ((recon, "recon"), (mu, "mu"), (log_var, "log_var")):
        check_same_device(x, t, op, "x", name)
    for t, name in ((recon, "recon"), (mu, "mu"), (log_var, "log_var")):
        check_type(t.dtype == x.dtype, lambda t=t, name=name: f"{op}: {name} has dtype {dtype_name(t.dtype)} but x "
                   f"has dtype {dtype_name(x.dtype)}; pass all four tensors in one dtype")
    check_value(x.dim() == 2, lambda: f"{op}: x must have shape [batch, features], got {sizes(x)}")
    check_value(recon.shape == x.shape, lambda: f"{op}: recon must have the shape of x {sizes(x)}, got {sizes(recon)}")
    check_value(mu.dim() == 2 and mu.shape[0] == x.shape[0],
                lambda: f"{op}: mu must have shape [batch, latents] with batch = {x.shape[0]} (the first dimension "
                f"of x), got {sizes(mu)}")
    check_value(log_var.shape == mu.shape,
                lambda: f"{op}: log_var must have the shape of mu {sizes(mu)}, got {sizes(log_var)}")


def _check_likelihood(likelihood, op):
    # csrc/elbo/elbo.cpp: elbo_is_bernoulli
    check_value(likelihood in _LIKELIHOODS,
                lambda: f'{op}: likelihood must be "bernoulli" or "gaussian", got "{likelihood}"')


@torch.library.register_fake("dgm_fast::gaussian_elbo")
def _gaussian_elbo_fake(x, recon, mu, log_var, *, likelihood="bernoulli"):
    _check_elbo_args(x, recon, mu, log_var, "gaussian_elbo")
    _check_likelihood(likelihood, "gaussian_elbo")
    return x.new_empty((x.shape[0],))


@torch.library.register_fake("dgm_fast::gaussian_elbo_with_grad")
def _gaussian_elbo_with_grad_fake(x, recon, mu, log_var, *, likelihood="bernoulli", scale=1.0):
    _check_elbo_args(x, recon, mu, log_var, "gaussian_elbo_with_grad")
    _check_likelihood(likelihood, "gaussian_elbo_with_grad")
    return (x.new_empty((x.shape[0],)), recon.new_empty(recon.shape), mu.new_empty(mu.shape),
            log_var.new_empty(log_var.shape))


@torch.library.register_fake("dgm_fast::gaussian_elbo_backward")
def _gaussian_elbo_backward_fake(grad, x, recon, mu, log_var, *, likelihood="bernoulli"):
    # csrc/elbo/elbo.cpp: check_gaussian_elbo_backward_args
    op = "gaussian_elbo_backward"
    _check_elbo_args(x, recon, mu, log_var, op)
    check_same_device(x, grad, op, "x", "grad")
    check_type(grad.dtype == x.dtype,
               lambda: f"{op}: grad has dtype {dtype_name(grad.dtype)} but x has dtype {dtype_name(x.dtype)}")
    check_value(grad.dim() == 1 and grad.shape[0] == x.shape[0],
                lambda: f"{op}: grad must have shape [{x.shape[0]}], got {sizes(grad)}")
    _check_likelihood(likelihood, op)
    return recon.new_empty(recon.shape), mu.new_empty(mu.shape), log_var.new_empty(log_var.shape)


def _gaussian_elbo_setup(ctx, inputs, keyword_only_inputs, output):
    ctx.save_for_backward(*inputs)
    ctx.likelihood = keyword_only_inputs["likelihood"]


def _gaussian_elbo_backward(ctx, grad):
    # d/d logit = sigmoid(l) - x (bernoulli), d/d mean = mean - x (gaussian), d/d mu = mu,
    # d/d log_var = 0.5 (exp(log_var) - 1); each times the example's incoming gradient.
    x, recon, mu, log_var = ctx.saved_tensors
    grad_recon, grad_mu, grad_log_var = _lib.gaussian_elbo_backward(
        grad, x, recon, mu, log_var, likelihood=ctx.likelihood
    )
    return None, grad_recon, grad_mu, grad_log_var


torch.library.register_autograd(
    "dgm_fast::gaussian_elbo", _gaussian_elbo_backward, setup_context=_gaussian_elbo_setup
)


# ---------------------------------------------------------------------------------------------
# iwae_bound


def iwae_bound(
    log_p_xz: torch.Tensor,
    log_q_zx: torch.Tensor | None = None,
    *,
    dim: int = 0,
    reduction: str = "none",
) -> torch.Tensor:
    """The importance-weighted bound ``log (1/K) sum_k exp(log_p_xz[k] - log_q_zx[k])``.

    Args:
        log_p_xz: log weights ``log p(x, z_k) - log q(z_k | x)``, or, with ``log_q_zx``, just
            ``log p(x, z_k)``. The K samples lie along ``dim`` (default 0: ``[K, B]``).
        log_q_zx: optional ``log q(z_k | x)``, of the same shape.
        reduction: ``"none"`` (the bound per example), ``"mean"`` or ``"sum"`` over the examples.

    Returns:
        the bound per example (the shape of the log weights without ``dim``), or its mean or sum.
        A fused, stable log-mean-exp. Its gradient with respect to the log weights is ``softmax``
        over the samples (times the incoming gradient). On the CPU in float32 and float64 it is
        computed in the forward pass from the bound's own exps (``iwae_bound_with_grad``), and
        with a ``reduction`` the backward pass of ``loss.backward()`` has nothing left to do;
        elsewhere a native backward pass computes it.
    """
    check_choice(reduction, _REDUCTIONS, "iwae_bound", "reduction")
    if log_q_zx is not None and log_q_zx.shape != log_p_xz.shape:
        raise ValueError(f"iwae_bound: log_q_zx must have the shape of log_p_xz {list(log_p_xz.shape)}, got "
                         f"{list(log_q_zx.shape)}")
    if log_p_xz.dim() == 0:
        raise ValueError("iwae_bound: the log weights need a dimension of samples (dim), got a 0-dim tensor")
    log_weights = log_p_xz if log_q_zx is None else log_p_xz - log_q_zx
    shape = None  # the bound's shape where the op's [K, B] is a reshape of the log weights
    if log_weights.dim() == 2 and dim in (0, -2):
        columns = log_weights
    else:
        moved = log_weights.movedim(dim, 0)
        shape = moved.shape[1:]
        columns = moved.reshape(moved.shape[0], math.prod(shape))
    if reduction == "mean" and columns.shape[1] == 0:
        raise ValueError(f"iwae_bound: the batch is empty (log weights of shape {list(log_weights.shape)}); a "
                         "mean over no examples is undefined (reduction='sum' gives 0, 'none' an empty tensor)")
    if _gradient_in_forward(columns):
        bound = _IwaeBoundOnePass.apply(columns, reduction)
    else:
        bound = _reduce(_lib.iwae_bound(columns), reduction)
    return bound if shape is None or reduction != "none" else bound.reshape(shape)


class _IwaeBoundOnePass(torch.autograd.Function):
    """The bound and its gradient from one native pass (``iwae_bound_with_grad``, with the row
    gradient of the reduction). The backward pass multiplies by the incoming gradient, or, for a
    reduced bound whose incoming gradient is 1, returns the stored gradient as it is. It keeps the
    [K, B] gradient until the backward."""

    @staticmethod
    def forward(ctx, log_weights, reduction):
        scale = _row_scale(reduction, log_weights.shape[1], log_weights.dtype)
        bound, grad = _lib.iwae_bound_with_grad(log_weights, scale=scale)
        ctx.save_for_backward(grad)
        return _reduce(bound, reduction)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        return _times_incoming(grad, ctx.saved_tensors[0], 0), None


def _check_iwae_args(log_weights, op):
    # csrc/elbo/elbo.cpp: check_iwae_bound_args
    check_float_dtype(log_weights, op, "log_weights")
    check_value(log_weights.dim() == 2,
                lambda: f"{op}: log_weights must have shape [samples, batch], got {sizes(log_weights)}")
    check_value(log_weights.shape[0] >= 1,
                lambda: f"{op}: log_weights needs at least one sample (its first dimension is 0)")


@torch.library.register_fake("dgm_fast::iwae_bound")
def _iwae_bound_fake(log_weights):
    _check_iwae_args(log_weights, "iwae_bound")
    return log_weights.new_empty((log_weights.shape[1],))


@torch.library.register_fake("dgm_fast::iwae_bound_backward")
def _iwae_bound_backward_fake(grad, log_weights, bound):
    # csrc/elbo/elbo.cpp: check_iwae_bound_backward_args
    op = "iwae_bound_backward"
    _check_iwae_args(log_weights, op)
    check_same_device(log_weights, grad, op, "log_weights", "grad")
    check_same_device(log_weights, bound, op, "log_weights", "bound")
    for t, name in ((grad, "grad"), (bound, "bound")):
        check_type(t.dtype == log_weights.dtype, lambda t=t, name=name: f"{op}: {name} has dtype "
                   f"{dtype_name(t.dtype)} but log_weights has dtype {dtype_name(log_weights.dtype)}")
        check_value(t.dim() == 1 and t.shape[0] == log_weights.shape[1],
                    lambda t=t, name=name: f"{op}: {name} must have shape [{log_weights.shape[1]}], got {sizes(t)}")
    return log_weights.new_empty(log_weights.shape)


@torch.library.register_fake("dgm_fast::iwae_bound_with_grad")
def _iwae_bound_with_grad_fake(log_weights, *, scale=1.0):
    _check_iwae_args(log_weights, "iwae_bound_with_grad")
    return log_weights.new_empty((log_weights.shape[1],)), log_weights.new_empty(log_weights.shape)


def _iwae_bound_setup(ctx, inputs, output):
    (log_weights,) = inputs
    ctx.save_for_backward(log_weights, output)


def _iwae_bound_backward(ctx, grad):
    # d bound / d w_k = exp(w_k - logsumexp(w)) = softmax(w)_k
    log_weights, bound = ctx.saved_tensors
    return _lib.iwae_bound_backward(grad, log_weights, bound)


torch.library.register_autograd(
    "dgm_fast::iwae_bound", _iwae_bound_backward, setup_context=_iwae_bound_setup
)
