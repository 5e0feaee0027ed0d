"""NADE (:mod:`.model`), trained by maximum likelihood, optionally order-agnostic (:mod:`.train`)."""

from .model import NADE
from .train import fit_nade

__all__ = ["NADE", "fit_nade"]
