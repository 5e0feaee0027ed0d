"""The DBM family: mean-field inference, the block Gibbs chain and AIS over the odd layers, each
a whole loop in one native call.

Schemas and the device-generic composites (ATen products plus the samplers) are in
``csrc/dbm/dbm.cpp``. Like the RBM's chain they run on every device and are transparent to
autograd, ``torch.compile`` and meta tensors (fake tensors run the same argument checks), so no
fake kernel is registered here. Plain-PyTorch definitions: :mod:`dgm_fast.reference.dbm`.

A DBM is given as ``weights`` (``[n_l, n_{l+1}]``, ``l = 0 .. L - 1``) and ``biases`` (``[n_l]``,
``l = 0 .. L``, visible first), as ``dgm_fast.DBM`` holds them.

* ``dbm_mean_field(v, weights, biases, iterations, *, tol=None, damping=0.0) -> means``: the
  mean-field posterior's means of the hidden layers (``[B, n_l]``, ``l = 1 .. L``) given the
  visible states ``v [B, n_0]``, from a bottom-up pass with doubled weights; ``iterations``
  sweeps, or fewer once no mean moves by ``tol`` (one host synchronisation per sweep).
* ``dbm_gibbs_chain(states, weights, biases, steps, *, clamp_visible=False, generator=None)
  -> states``: ``steps`` block Gibbs sweeps (odd layers given the even ones, then the reverse)
  from one ``[B, n_l]`` tensor per layer.
* ``dbm_ais(odd_states, weights, biases, base, betas, *, generator=None) -> log_weights``: AIS
  runs (``[R, n_l]`` per odd layer) annealed over ``betas`` between the base model of
  independent units with biases ``base`` and the DBM, the even layers summed out; the
  log-weights ``[R]`` in float64, without ``log Z`` of the base model.
"""

from __future__ import annotations

import torch

from .. import _extension  # noqa: F401  (registers the ops)

__all__ = ["dbm_ais", "dbm_gibbs_chain", "dbm_mean_field"]

dbm_mean_field = torch.ops.dgm_fast.dbm_mean_field
dbm_gibbs_chain = torch.ops.dgm_fast.dbm_gibbs_chain
dbm_ais = torch.ops.dgm_fast.dbm_ais
