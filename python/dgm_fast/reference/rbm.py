"""Plain-PyTorch definitions of the RBM ops (:mod:`dgm_fast.ops.rbm`).

``rbm_gibbs_chain`` is defined by the sampler calls it makes (tested bit for bit against
``RBM.sample_hidden``/``RBM.sample_visible`` in a Python loop), ``rbm_ais`` by the exact log
partition function it estimates (tested against enumeration in ``tests/evaluate``), and
``rbm_train_epoch_`` by the Python loop of per-update ops below (tested bit for bit).
"""

from __future__ import annotations

import torch

__all__ = ["rbm_cd_gradient", "rbm_sgd_update", "rbm_train_epoch"]


def rbm_cd_gradient(
    v_data: torch.Tensor,  # [Bd, V]
    h_data: torch.Tensor,  # [Bd, H] hidden means (or samples) at the data
    v_model: torch.Tensor,  # [Bm, V] negative samples
    h_model: torch.Tensor,  # [Bm, H]
    weight: torch.Tensor,  # [V, H]
    *,
    weight_decay: float = 0.0,
    visible_log_std: torch.Tensor | None = None,  # [V], Gaussian visible units
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The CD gradient of the mean negative log-likelihood, ``mean F(v_data) - mean F(v_model)``
    differentiated in closed form, plus ``weight_decay * weight``."""
    inv_var = 1.0 if visible_log_std is None else torch.exp(-2 * visible_log_std)
    inv_std = 1.0 if visible_log_std is None else torch.exp(-visible_log_std)
    vd, vm = v_data * inv_std, v_model * inv_std
    grad_weight = vm.t() @ h_model / len(v_model) - vd.t() @ h_data / len(v_data) + weight_decay * weight
    grad_visible = (v_model.mean(0) - v_data.mean(0)) * inv_var
    grad_hidden = h_model.mean(0) - h_data.mean(0)
    return grad_weight, grad_visible, grad_hidden


def rbm_sgd_update(params, buffers, v_data, h_data, v_model, h_model, *, lr: float, momentum: float,
                   weight_decay: float = 0.0, visible_log_std: torch.Tensor | None = None):
    """What ``rbm_sgd_update_`` does in place, returned as new tensors: ``torch.optim.SGD``'s rule
    (``buffer <- momentum * buffer + g``, ``p <- p - lr * buffer``) on :func:`rbm_cd_gradient`.
    ``params``: ``(weight, visible_bias, hidden_bias)``; ``buffers``: their momentum buffers."""
    grads = rbm_cd_gradient(v_data, h_data, v_model, h_model, params[0], weight_decay=weight_decay,
                            visible_log_std=visible_log_std)
    new_buffers = [momentum * b + g for b, g in zip(buffers, grads)]
    return [p - lr * b for p, b in zip(params, new_buffers)], new_buffers


def rbm_train_epoch(params, buffers, chains, data, batch_size, *, k=1, chains_hold="visible", lr, momentum,
                    weight_decay=0.0, generator=None):
    """What ``rbm_train_epoch_`` does in place, as the Python loop of the per-update ops (its
    definition): one update per minibatch of ``data``, the same ops in the same order, so that
    with the same generator the bits agree. Works on ``params``/``buffers``/``chains`` in place
    and returns the chains (None for CD-k)."""
    from ..ops import bernoulli_logits
    from ..ops.rbm import rbm_gibbs_chain, rbm_sgd_update_

    weight, visible_bias, hidden_bias = params
    for start in range(0, data.shape[0], batch_size):
        v = data[start:start + batch_size]
        if chains is None:  # CD-k
            h_data, v_model, h_model = rbm_gibbs_chain(v, weight, visible_bias, hidden_bias, k, generator=generator)
        elif chains_hold == "visible":  # PCD-k
            h_data = torch.sigmoid(torch.addmm(hidden_bias, v, weight))
            _, v_model, h_model = rbm_gibbs_chain(chains, weight, visible_bias, hidden_bias, k, generator=generator)
            chains = v_model
        else:  # scikit-learn's PCD: the chains hold hidden states and advance one half-step
            h_data = torch.sigmoid(torch.addmm(hidden_bias, v, weight))
            v_model = bernoulli_logits(chains @ weight.t(), visible_bias, generator=generator)
            chains, h_model = bernoulli_logits(torch.addmm(hidden_bias, v_model, weight), generator=generator,
                                               return_probs=True)
        rbm_sgd_update_(weight, visible_bias, hidden_bias, *buffers, v, h_data, v_model, h_model, lr=lr,
                        momentum=momentum, weight_decay=weight_decay)
    return chains
