"""Fused native ops, one module per native family (the same names as ``csrc/<family>/``,
``cuda/<family>/`` and :mod:`dgm_fast.reference`):

* :mod:`.samplers`: ``bernoulli_logits``, ``normal_reparam``, ``uniform_bits`` (exported here);
* :mod:`.rbm`: whole Gibbs chains, the CD gradient, the fused SGD update, AIS;
* :mod:`.dbm`: mean-field inference, the block Gibbs chain, AIS over the odd layers;
* :mod:`.bernoulli`: Bernoulli layers (a draw with its log-probability, the log-probability of
  given states) for the directed models;
* :mod:`.elbo`, :mod:`.gan`, :mod:`.mmd`: the fused losses, whose public face is
  :mod:`dgm_fast.losses`;
* :mod:`.nade`: NADE's recurrence (the log-probability with its backward, ancestral sampling);
* :mod:`.parzen`: Parzen-window log-densities in tiles, whose public face is
  :mod:`dgm_fast.evaluate.parzen`.

Each op is also ``torch.ops.dgm_fast.<name>``, with a fake kernel for ``torch.compile`` and meta
tensors and, where differentiable, an autograd formula.
"""

from . import bernoulli, dbm, elbo, gan, mmd, nade, parzen, rbm, samplers
from .samplers import bernoulli_logits, normal_reparam, uniform_bits

__all__ = ["bernoulli_logits", "normal_reparam", "uniform_bits", "bernoulli", "dbm", "elbo", "gan", "mmd", "nade", "parzen", "rbm", "samplers"]
