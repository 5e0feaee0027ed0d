"""The RBM family: whole Gibbs chains, the CD gradient, the fused SGD update and AIS, each in one
native call.

Schemas and the device-generic composites (ATen products plus the samplers) are in
``csrc/rbm/``; the CPU kernel of the fused update too. The composites run on every device and
are transparent to autograd, ``torch.compile`` and meta tensors, so no fake kernel is registered
here; ``rbm_sgd_update_`` and ``rbm_train_epoch_`` are CompositeExplicitAutograd ops whose generic
kernels also serve meta tensors. Plain-PyTorch definitions: :mod:`dgm_fast.reference.rbm`.

* ``rbm_gibbs_chain(v, weight, visible_bias, hidden_bias, steps, *, visible, hidden,
  visible_log_std, beta, final_hidden, matmul_dtype, generator) -> (h0_mean, v, h_mean)``:
  ``steps`` block-Gibbs sweeps from ``v [B, V]`` (``beta [B]``: an inverse temperature per row).
* ``rbm_cd_gradient(v_data, h_data, v_model, h_model, weight, *, weight_decay, visible_log_std,
  matmul_dtype) -> (grad_weight, grad_visible_bias, grad_hidden_bias)``: the CD gradient of the
  mean negative log-likelihood, from one product of the stacked phases.
* ``rbm_sgd_update_(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum,
  hidden_momentum, v_data, h_data, v_model, h_model, *, lr, momentum, weight_decay,
  visible_log_std)``: that gradient folded into one step of SGD with momentum, in place.
* ``rbm_train_epoch_(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum,
  hidden_momentum, chains, data, batch_size, *, k, chains_hold, lr, momentum, weight_decay,
  generator)``: one update per minibatch of ``data`` (CD-k without chains; PCD-k with ``chains``
  holding visible states; scikit-learn's PCD with ``chains`` holding hidden states), each the
  per-update path's ops in the same order, so the same bits as that Python loop, in one call.
* ``rbm_ais(v, weight, visible_bias, hidden_bias, base_visible_bias, betas, *, visible_log_std,
  generator) -> (log_weights, v)``: all AIS runs through all temperatures.
"""

from __future__ import annotations

import torch

from .. import _extension  # noqa: F401  (registers the ops)

__all__ = ["rbm_ais", "rbm_cd_gradient", "rbm_gibbs_chain", "rbm_sgd_update_", "rbm_train_epoch_"]

rbm_gibbs_chain = torch.ops.dgm_fast.rbm_gibbs_chain
rbm_cd_gradient = torch.ops.dgm_fast.rbm_cd_gradient
rbm_sgd_update_ = torch.ops.dgm_fast.rbm_sgd_update_
rbm_train_epoch_ = torch.ops.dgm_fast.rbm_train_epoch_
rbm_ais = torch.ops.dgm_fast.rbm_ais
