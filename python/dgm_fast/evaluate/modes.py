"""Mode coverage of samples from a mixture with known modes (the 2-D ring and grid of
:mod:`dgm_fast.data.toy2d`): how many modes a model captures and what share of its samples are
good, the measures of mode collapse of Metz et al. (2017) and Srivastava et al. (2017)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ModeCoverage", "mode_coverage"]


@dataclass
class ModeCoverage:
    """Attributes:
        captured: modes with at least ``min_count`` good samples.
        modes: the number of modes.
        good_share: the share of samples within ``radius_stds`` standard deviations of the
            nearest mode's centre.
        counts: ``[modes]`` good samples per mode.
    """

    captured: int
    modes: int
    good_share: float
    counts: torch.Tensor


@torch.no_grad()
def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, std: float, *, radius_stds: float = 3.0,
                  min_count: int = 10) -> ModeCoverage:
    """Assigns each sample to its nearest centre; a sample is good when it lies within
    ``radius_stds * std`` of it, and a mode is captured when it has at least ``min_count`` good
    samples (so that a few stray samples do not count as covering a mode)."""
    fn = "mode_coverage"
    if samples.dim() != 2 or centres.dim() != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"{fn}: samples [N, D] and centres [M, D] must have the same D, got {list(samples.shape)} "
                         f"and {list(centres.shape)}")
    if samples.shape[0] == 0 or centres.shape[0] == 0:
        raise ValueError(f"{fn}: samples and centres must not be empty")
    if not std > 0 or not radius_stds > 0:
        raise ValueError(f"{fn}: std and radius_stds must be positive, got {std!r} and {radius_stds!r}")
    if not torch.isfinite(samples).all():
        raise ValueError(f"{fn}: samples contain NaN or Inf")
    distance, nearest = torch.cdist(samples.double(), centres.double()).min(dim=1)
    good = distance <= radius_stds * std
    counts = torch.bincount(nearest[good], minlength=len(centres))
    return ModeCoverage(int((counts >= min_count).sum()), len(centres), good.double().mean().item(), counts)
