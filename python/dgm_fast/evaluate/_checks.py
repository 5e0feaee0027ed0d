"""Argument checks shared by the estimators."""

from __future__ import annotations

from numbers import Integral

import torch


def check_count(value, name: str, fn: str, minimum: int = 1) -> int:
    """An integer count (Python or NumPy integer) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{fn}: {name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be at least {minimum}, got {value}")
    return int(value)


def check_examples(data: torch.Tensor, fn: str, name: str = "data") -> None:
    """An average over the rows of ``data`` needs at least one row."""
    if data.shape[0] == 0:
        raise ValueError(f"{fn}: {name} is empty (shape {list(data.shape)}); an average over no examples is undefined")
