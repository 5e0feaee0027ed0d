"""Generative moment matching networks and the autoencoder of GMMN+AE (:mod:`.model`), trained
by the fused MMD (:mod:`.train`)."""

from .model import GMMN, Autoencoder
from .train import LI_ET_AL_BANDWIDTHS, fit_autoencoder, fit_gmmn, gmmn_loss

__all__ = ["Autoencoder", "GMMN", "LI_ET_AL_BANDWIDTHS", "fit_autoencoder", "fit_gmmn", "gmmn_loss"]
