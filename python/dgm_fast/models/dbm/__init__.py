"""Deep Boltzmann machines: the module (:mod:`.model`), greedy pretraining with doubled weights
and joint training with mean-field and persistent chains (:mod:`.train`)."""

from .model import DBM
from .train import PersistentChains, dbm_gradients, fit_dbm, pretrain_dbm

__all__ = ["DBM", "PersistentChains", "dbm_gradients", "fit_dbm", "pretrain_dbm"]
