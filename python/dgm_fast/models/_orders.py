"""Orderings of the visible units, shared by the autoregressive models (NADE, MADE)."""

from __future__ import annotations

import torch

__all__ = ["check_order", "random_orders"]


def check_order(order, n_visible: int, who: str, *, rows: int | None = None) -> torch.Tensor:
    """``order`` as an int64 tensor ``[n_visible]`` (or ``[rows, n_visible]`` where ``rows`` is
    given), each row a permutation of ``0 .. n_visible - 1``; anything else is a clear error."""
    t = order if isinstance(order, torch.Tensor) else torch.as_tensor(order)
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{who}: an ordering holds integer unit indices, got dtype {t.dtype}")
    shapes = [f"[{n_visible}]"] + ([f"[{rows}, {n_visible}]"] if rows is not None else [])
    if not ((t.dim() == 1 and t.shape[0] == n_visible)
            or (rows is not None and t.dim() == 2 and tuple(t.shape) == (rows, n_visible))):
        raise ValueError(f"{who}: an ordering must be {' or '.join(shapes)}, got {list(t.shape)}")
    t = t.to(torch.int64)
    rows_of = t.reshape(-1, n_visible)
    wrong = (rows_of.sort(1).values != torch.arange(n_visible, device=t.device)).any(1)
    if wrong.any():
        r = int(wrong.nonzero()[0])
        row = rows_of[r].tolist()
        outside = [v for v in row if not 0 <= v < n_visible]
        problem = (f"holds {outside[0]}, outside 0..{n_visible - 1}" if outside
                   else f"holds {next(v for v in row if row.count(v) > 1)} twice")
        where = "" if t.dim() == 1 else f" (row {r})"
        raise ValueError(f"{who}: an ordering must be a permutation of 0..{n_visible - 1}; this one{where} {problem}")
    return t


def random_orders(n: int, n_visible: int, generator: torch.Generator | None = None,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """``[n, n_visible]`` orderings drawn uniformly (each row an argsort of uniform draws)."""
    device = generator.device if generator is not None else device
    return torch.rand(n, n_visible, generator=generator, device=device).argsort(1)
