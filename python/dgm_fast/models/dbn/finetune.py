"""Up-down fine-tuning of a deep belief net: the contrastive wake-sleep algorithm of Hinton,
Osindero & Teh (2006), section 5.

Greedy pretraining ties each directed layer's recognition (bottom-up) and generative (top-down)
weights. Up-down unties them (:meth:`DBN.untie`) and, for each batch:

1. **Up (wake) pass**: binary states of every hidden layer below the top RBM, drawn bottom-up
   through the recognition weights.
2. **Top RBM**: a contrastive-divergence update from the wake states of its visible layer, with
   the RBM's own chain op and gradient (any of its negative phases: CD-k as in the paper, or PCD).
3. **Down (sleep) pass**: from the top RBM's negative sample, binary states drawn top-down through
   the generative weights (the visible layer as its means).
4. **Delta rules**: the generative weights learn to reconstruct each wake layer from the one above,
   the recognition weights to recover each sleep layer from the one below. Each is the exact
   gradient of ``log p(layer | layer above)`` or ``log q(layer | layer below)`` at the sampled
   states, so a plain PyTorch optimizer applies them.

Every parameter gets its ``.grad`` (the negative mean learning signal over the batch, plus weight
decay on weights) and one ``torch.optim`` step applies them all, in the common training loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import torch

from ...train import distributed, fit
from ..rbm.train import CD, PCD, cd_gradients, make_method
from .model import DBN

__all__ = ["delta_rule_gradients", "fine_tune_dbn", "up_down_gradients"]


def _layer_error(rbm, x: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """d log p(x | h) / d(pre-activation) for the weight and for the bias of the layer below
    ``rbm``: ``x - mean`` for Bernoulli units; ``(x - mean) / sigma`` and ``/ sigma^2`` for
    Gaussian units, whose mean is ``b + sigma * (h W^T)``."""
    if rbm.visible != "gaussian":
        error = x - mean
        return error, error
    inv_std = torch.exp(-rbm.visible_log_std.detach())
    scaled = (x - mean) * inv_std
    return scaled, scaled * inv_std


def up_down_gradients(dbn: DBN, v: torch.Tensor, method: CD | None = None, *, weight_decay: float = 0.0,
                      generator: torch.Generator | None = None) -> dict:
    """One batch of the up-down algorithm on an untied ``dbn``: writes every parameter's
    ``.grad`` (the mean over the batch of minus its learning signal; ``weight_decay`` times the
    weight added for weights; a Gaussian visible layer's standard deviation gets none) and
    returns the batch's metrics: ``wake_error``, the generative model's mean squared error
    reconstructing the visible layer from the wake states above it.

    ``method``: the top RBM's negative phase, a ``CD`` (default CD-1; the paper used 3, later 6
    and 10 sweeps, started from the wake states of its visible layer) or a ``PCD``.
    """
    if not dbn.untied:
        raise ValueError("up_down_gradients: the DBN is tied; call dbn.untie() first (fine_tune_dbn does)")
    dbn._check_input(v, "v")
    method = method or CD(1)
    rbms = dbn.rbms
    wake = [v, *dbn.up_samples(v, len(rbms) - 1, generator=generator)]  # the up pass: binary states
    top = rbms[-1]
    h_data, v_model, h_model = method.statistics(top, wake[-1], generator)
    cd_gradients(top, wake[-1], h_data, v_model, h_model, weight_decay=weight_decay,
                 matmul_dtype=method.matmul_dtype)
    with torch.no_grad():
        sleep = [None] * (len(rbms) - 1) + [v_model]  # the down pass: binary states through the generative weights
        for layer in range(len(rbms) - 2, 0, -1):
            sleep[layer] = rbms[layer].sample_visible(sleep[layer + 1], generator=generator)
        sleep[0] = rbms[0].visible_probs(sleep[1])
    return delta_rule_gradients(dbn, wake, sleep, weight_decay=weight_decay)


def delta_rule_gradients(dbn: DBN, wake: list[torch.Tensor], sleep: list[torch.Tensor], *,
                         weight_decay: float = 0.0) -> dict:
    """The directed layers' part of :func:`up_down_gradients`, given the states of every layer
    below the top RBM's hidden one (``wake`` from the up pass, ``sleep`` from the down pass,
    visible first): the generative weights and biases get minus the mean gradient of
    ``log p(wake[l] | wake[l + 1])``, the recognition weights and biases that of
    ``log q(sleep[l + 1] | sleep[l])``. Returns ``{"wake_error": ...}``."""
    n = wake[0].shape[0]
    metrics = {}
    with torch.no_grad():
        for layer, rbm in enumerate(list(dbn.rbms)[:-1]):  # (a ModuleList's slice is a new module)
            # generative: reconstruct wake[layer] from wake[layer + 1]
            mean = rbm.visible_probs(wake[layer + 1])
            weight_error, bias_error = _layer_error(rbm, wake[layer], mean)
            rbm.weight.grad = torch.addmm(rbm.weight.detach(), weight_error.t(), wake[layer + 1],
                                          beta=weight_decay, alpha=-1.0 / n)
            rbm.visible_bias.grad = -bias_error.mean(0)
            if layer == 0:
                metrics["wake_error"] = float((wake[0] - mean).pow(2).mean())
            # recognition: recover sleep[layer + 1] from sleep[layer]
            below = rbm._scaled(sleep[layer])
            recognition = dbn.recognition_weights[layer]
            error = sleep[layer + 1] - torch.sigmoid(torch.addmm(rbm.hidden_bias, below, recognition))
            recognition.grad = torch.addmm(recognition.detach(), below.t(), error, beta=weight_decay, alpha=-1.0 / n)
            rbm.hidden_bias.grad = -error.mean(0)
    return metrics


def fine_tune_dbn(
    dbn: DBN,
    data,
    *,
    epochs: int = 10,
    batch_size: int = 100,
    method: str | CD = "cd",
    k: int = 3,
    n_chains: int | None = None,
    lr: float = 0.01,
    momentum: float = 0.5,
    weight_decay: float = 1e-4,
    optimizer: torch.optim.Optimizer | None = None,
    lr_schedule: str | Callable[[int], float] | None = None,
    generator: torch.Generator | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    eval_fn: Callable[[DBN, int], dict] | None = None,
    progress_keys: Iterable[str] | None = None,
) -> list[dict]:
    """Fine-tunes ``dbn`` (untying it first) with the up-down algorithm in the common training
    loop (:func:`dgm_fast.train.fit`): ``epochs`` passes over ``data`` (a ``[n, layer_sizes[0]]``
    tensor, a Dataset or a DataLoader) in batches of ``batch_size``.

    The top RBM's negative phase is ``method`` (``"cd"`` or ``"pcd"``) with ``k`` sweeps. The
    default optimizer is ``torch.optim.SGD(lr, momentum)`` over all parameters. ``checkpoint``:
    written after every epoch (atomically); a run started again resumes from it. History rows
    hold ``lr``, the epoch's mean ``wake_error`` and whatever ``eval_fn(dbn, epoch)`` returns.
    """
    if not isinstance(dbn, DBN):
        raise TypeError(f"fine_tune_dbn: dbn must be a dgm_fast.DBN, got {type(dbn).__name__}")
    dbn._check_data(data, "fine_tune_dbn")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fine_tune_dbn: epochs must be a non-negative integer, got {epochs!r}")
    if not (type(method) in (CD, PCD) or method in ("cd", "pcd")):
        raise ValueError(f"fine_tune_dbn: method must be 'cd' or 'pcd' (the top RBM's negative phase), got {method!r}")
    device, dtype = dbn.rbms[0].weight.device, dbn.rbms[0].weight.dtype
    if generator is None:  # drawn from torch's default generator, so torch.manual_seed governs it
        generator = torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (1,)).item()))
    if generator.device != device:
        raise ValueError(f"fine_tune_dbn: the generator is on {generator.device} but the model on {device}")
    shuffle_generator = torch.Generator().manual_seed(
        int(torch.randint(2**62, (1,), generator=generator, device=generator.device).item()))
    generator = distributed.rank_generator(generator, device)  # in a process group: this rank's stream
    top_method = make_method(method, k, n_chains)
    dbn.untie()
    optimizer = optimizer or torch.optim.SGD(dbn.parameters(), lr=lr, momentum=momentum)
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if any(id(p) not in optimized for p in dbn.parameters() if p.requires_grad):
        raise ValueError("fine_tune_dbn: the optimizer does not hold every parameter of the DBN (the recognition "
                         "weights exist once it is untied): create it after dbn.untie(), over dbn.parameters()")

    def step(batch) -> dict:
        v = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device=device, dtype=dtype)
        metrics = up_down_gradients(dbn, v, top_method, weight_decay=weight_decay, generator=generator)
        optimizer.step()
        return metrics

    evaluate = None if eval_fn is None else (lambda epoch: eval_fn(dbn, epoch))
    return fit(step, data, model=dbn, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
               lr_schedule=lr_schedule, state={"method": top_method}, generators={"generator": generator},
               shuffle_generator=shuffle_generator, eval_fn=evaluate, checkpoint=checkpoint, resume=resume,
               extra=dbn.checkpoint_header(), progress=progress,
               progress_keys=progress_keys or ("lr", "wake_error"), desc="up-down")
