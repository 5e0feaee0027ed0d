"""Sigmoid belief nets (:mod:`.model`); they are trained with a recognition model, as the
generative half of a :class:`dgm_fast.HelmholtzMachine`."""

from .model import SBN

__all__ = ["SBN"]
