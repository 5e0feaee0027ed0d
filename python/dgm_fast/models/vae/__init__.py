"""Variational autoencoders (:mod:`.model`), trained by the ELBO or the IWAE bound (:mod:`.train`)."""

from .model import LIKELIHOODS, VAE
from .train import OBJECTIVES, fit_vae, vae_loss

__all__ = ["LIKELIHOODS", "OBJECTIVES", "VAE", "fit_vae", "vae_loss"]
