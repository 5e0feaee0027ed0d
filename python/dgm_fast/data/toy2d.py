"""Two-dimensional mixtures of Gaussians with known modes, the standard test of mode collapse
(Metz et al. 2017: a ring of 8; Srivastava et al. 2017: a 5 x 5 grid). Each returns the samples
and the modes' centres, for :func:`dgm_fast.evaluate.mode_coverage`."""

from __future__ import annotations

import math

import torch

__all__ = ["grid_of_gaussians", "ring_of_gaussians"]


def _mixture(n: int, centres: torch.Tensor, std: float, generator, dtype) -> torch.Tensor:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of samples must be a positive integer, got {n!r}")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std!r}")
    which = torch.randint(len(centres), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64) * std
    return (centres[which] + noise).to(dtype)


def ring_of_gaussians(n: int, *, modes: int = 8, radius: float = 2.0, std: float = 0.02,
                      generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32):
    """``(samples [n, 2], centres [modes, 2])``: equal-weight Gaussians of standard deviation
    ``std`` at ``modes`` points evenly spaced on a circle of ``radius``."""
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    centres = torch.stack([radius * angles.cos(), radius * angles.sin()], dim=1)
    return _mixture(n, centres, std, generator, dtype), centres.to(dtype)


def grid_of_gaussians(n: int, *, side: int = 5, spacing: float = 2.0, std: float = 0.05,
                      generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32):
    """``(samples [n, 2], centres [side^2, 2])``: equal-weight Gaussians of standard deviation
    ``std`` on a ``side`` x ``side`` grid with ``spacing``, centred on the origin."""
    ticks = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    centres = torch.cartesian_prod(ticks, ticks)
    return _mixture(n, centres, std, generator, dtype), centres.to(dtype)
