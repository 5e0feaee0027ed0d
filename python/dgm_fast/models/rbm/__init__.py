"""Restricted Boltzmann machines: the module (:mod:`.model`) and its training algorithms
(:mod:`.train`: CD-k, persistent CD, fast-weights PCD, parallel tempering)."""

from .model import RBM
from .train import CD, FPCD, PCD, PT, Sparsity, cd_gradients, cd_step, fit_rbm, make_method, pt_swap_log_acceptance

__all__ = ["CD", "FPCD", "PCD", "PT", "RBM", "Sparsity", "cd_gradients", "cd_step", "fit_rbm", "make_method",
           "pt_swap_log_acceptance"]
