"""Deep belief nets: the module (:mod:`.model`) and greedy layer-wise pretraining (:mod:`.train`)."""

from .model import DBN
from .train import pretrain_dbn

__all__ = ["DBN", "pretrain_dbn"]
