"""Deep Boltzmann machines: the module (:mod:`.model`)."""

from .model import DBM

__all__ = ["DBM"]
