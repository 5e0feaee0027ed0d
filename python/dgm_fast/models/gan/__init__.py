"""Generative adversarial networks (:mod:`.model`), trained by Goodfellow et al.'s Algorithm 1 with
the fused losses (:mod:`.train`)."""

from .model import GAN, Dropout
from .train import KINDS, discriminator_loss, fit_gan, gan_update, generator_loss

__all__ = ["GAN", "Dropout", "KINDS", "discriminator_loss", "fit_gan", "gan_update", "generator_loss"]
