"""MADE (:mod:`.model`), trained by maximum likelihood over its mask sets (:mod:`.train`)."""

from .model import MADE, made_masks
from .train import fit_made

__all__ = ["MADE", "fit_made", "made_masks"]
