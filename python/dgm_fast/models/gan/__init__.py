"""Generative adversarial networks (:mod:`.model`), trained by Goodfellow et al.'s Algorithm 1 with
the fused losses (:mod:`.train`)."""

from .model import GAN
from .train import KINDS, discriminator_loss, fit_gan, generator_loss

__all__ = ["GAN", "KINDS", "discriminator_loss", "fit_gan", "generator_loss"]
