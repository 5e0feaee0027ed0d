"""The fused losses: a native forward and an analytic native backward each, registered for
autograd and ``torch.compile``, stable where the textbook formula overflows. Their kernels are the
``elbo``, ``gan`` and ``mmd`` op families (:mod:`dgm_fast.ops`), their plain-PyTorch
definitions in :mod:`dgm_fast.reference`.

* :func:`gaussian_elbo`: the negative ELBO of a VAE (Bernoulli or Gaussian likelihood, closed-form
  KL); :func:`iwae_bound`: the importance-weighted bound.
* :func:`gan_losses`: discriminator and generator losses from logits
  (``kind="minimax"|"non_saturating"|"reversed"``).
* :func:`mmd`: squared MMD with a sum of RBF kernels, in tiles (memory O(N D)).
"""

from ..ops.elbo import gaussian_elbo, iwae_bound
from ..ops.gan import KINDS as GAN_KINDS
from ..ops.gan import gan_losses
from ..ops.mmd import DEFAULT_BANDWIDTHS as MMD_DEFAULT_BANDWIDTHS
from ..ops.mmd import mmd

__all__ = ["GAN_KINDS", "MMD_DEFAULT_BANDWIDTHS", "gan_losses", "gaussian_elbo", "iwae_bound", "mmd"]
