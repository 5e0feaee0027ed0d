"""Argument checks shared by the models and their training functions, so that every model words
the same problem the same way."""

from __future__ import annotations

from numbers import Integral

import torch

from ..ops._checks import check_choice

__all__ = ["check_binary", "check_choice", "check_count", "check_finite_parameters", "check_layer_sizes", "check_rows",
           "training_rows"]


def check_count(value, name: str, who: str, minimum: int = 1) -> int:
    """An integer (Python or NumPy) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{who}: {name} must be {what}, got {value!r}")
    return int(value)


def check_layer_sizes(layer_sizes, who: str) -> list[int]:
    """``layer_sizes`` as a list of at least two positive ints (visible first), or a clear error."""
    sizes = list(layer_sizes) if isinstance(layer_sizes, (list, tuple)) else None
    if sizes is None or any(isinstance(s, bool) or not isinstance(s, Integral) for s in sizes):
        raise TypeError(f"{who}: layer_sizes must be a list of integers, got {layer_sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"{who}: layer_sizes needs the visible layer and at least one hidden layer, got {sizes}")
    if min(sizes) < 1:
        raise ValueError(f"{who}: layer sizes must be positive, got {sizes}")
    return [int(s) for s in sizes]


def check_binary(x: torch.Tensor, who: str, what: str = "x") -> None:
    """Bernoulli units take the values 0 and 1 only: anything else (grey levels, NaN) is refused
    rather than silently scored as a cross-entropy."""
    if not torch.all((x == 0) | (x == 1)):
        bad = x[(x != 0) & (x != 1)]
        raise ValueError(f"{who}: {what} must hold binary values (0 or 1), got {bad.numel()} other values "
                         f"(e.g. {bad[0].item()}); binarize the data first (dgm_fast.data.binarize)")


def check_rows(x, n: int, like: torch.Tensor, who: str, what: str = "x", where: str = "", *,
               min_dim: int | None = None) -> None:
    """``x``: a ``[batch, n]`` tensor (with ``min_dim``: ``[..., n]`` of at least that many
    dimensions) of the dtype and on the device of ``like`` (a parameter of the model)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who}: {what} must be a tensor, got {type(x).__name__}")
    wrong_rank = x.dim() != 2 if min_dim is None else x.dim() < min_dim
    if wrong_rank or x.shape[-1] != n:
        raise ValueError(f"{who}: {what} must be [batch, {n}]{where}, got {list(x.shape)}")
    if x.dtype != like.dtype or x.device != like.device:
        raise ValueError(f"{who}: {what} is {x.dtype} on {x.device} but the model is {like.dtype} on {like.device}")


def check_finite_parameters(module: torch.nn.Module, who: str) -> None:
    """Refuses NaN or infinite parameters, which would make every result NaN."""
    for name, p in module.named_parameters():
        if not torch.isfinite(p).all():
            raise ValueError(f"{who}: the model's parameter {name} holds NaN or Inf")


def training_rows(data, n_visible: int, dtype: torch.dtype, who: str, *, binary: bool = False) -> torch.Tensor:
    """``data`` checked as the training rows of a model with ``n_visible`` units (a non-empty
    ``[rows, n_visible]`` tensor, finite, and binary where ``binary``), in ``dtype``."""
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{who}: data must be a tensor of rows, got {type(data).__name__}")
    if data.dim() != 2 or data.shape[1] != n_visible:
        raise ValueError(f"{who}: data must be [rows, {n_visible}], got {list(data.shape)}")
    if data.shape[0] == 0:
        raise ValueError(f"{who}: data is empty")
    if binary:
        check_binary(data, who, "data")
    elif not torch.isfinite(data).all():
        raise ValueError(f"{who}: data contains NaN or Inf")
    return data.to(dtype=dtype)
