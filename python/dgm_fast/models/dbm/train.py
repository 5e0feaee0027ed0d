"""Training a DBM (Salakhutdinov & Hinton 2009): greedy pretraining of its layers as RBMs with
doubled weights, then joint training with mean-field for the data-dependent statistics and
persistent Gibbs chains for the model's, through :func:`dgm_fast.train.fit`.

Pretraining (``pretrain_dbm``). Layer ``l``'s weights are trained as an RBM between layers ``l``
and ``l + 1`` by CD-k, with the input of each side scaled so that, composed, the layers receive
about the input they will get in the DBM, where a hidden layer hears from both neighbours:

* the bottom RBM's up-pass doubles the weights (``p(h_1 | v) = sigmoid(c + 2 v W)``): h_1 will
  also hear from h_2;
* the top RBM's down-pass doubles them (``p(h_{L-1} | h_L) = sigmoid(b + 2 W h_L)``);
* a middle RBM doubles both, which is an ordinary RBM trained with weights ``2 W``, halved when
  composed.

The update takes the usual CD-k statistics of the scaled conditionals (as Salakhutdinov's code
does).

Each layer trains on the probabilities of the layer below's up-pass (doubled as in its
training), computed batch by batch. Composed, a hidden layer between two RBMs takes the mean of
its two biases: the hidden bias of the RBM below and the visible bias of the RBM above (as
Salakhutdinov's code does). Each RBM models that layer's input as its bias plus twice the input
from its own side; in the DBM the layer hears both sides once, so the mean bias keeps the total
input each RBM expects. Taking the RBM below's bias alone gave a far worse model (on MNIST,
784-500-1000 after 100 epochs per layer: a test bound of -352 nats against about -129 with the
mean). The top layer's bias is the top RBM's hidden bias; the visible bias the bottom RBM's.

Joint training (``fit_dbm``): per minibatch, the mean-field means ``mu`` of the batch (the
data-dependent statistics, visible layer clamped) and ``k`` block Gibbs sweeps of ``n_chains``
persistent chains (the model's); the gradient of the mean negative log-likelihood

    dL/dW_l = <h_l h_{l+1}^T>_model - <h_l h_{l+1}^T>_data + weight_decay W_l
    dL/db_l = <h_l>_model - <h_l>_data

goes into ``.grad`` and any torch optimizer applies it (SGD with momentum by default), so that
checkpoints, resume, learning-rate schedules and data-parallel training come from ``fit``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch

from ... import ops
from ...train import distributed, fit
from .._checks import check_count, training_rows
from .model import DBM

__all__ = ["PersistentChains", "dbm_gradients", "fit_dbm", "pretrain_dbm"]


def dbm_gradients(dbm: DBM, data_states, model_states, *, weight_decay: float = 0.0) -> list[torch.Tensor]:
    """The gradient of the mean negative log-likelihood from data-dependent statistics
    (``data_states``: the visible batch and the mean-field means, one tensor per layer) and the
    model's (``model_states``: the chains' states): ``[dW_0, ..., dW_{L-1}, db_0, ..., db_L]``."""
    d, m = data_states, model_states
    nd, nm = d[0].shape[0], m[0].shape[0]
    # Each weight's gradient is two products accumulated into one buffer that starts as the
    # weight decay term: no pass over the weights for each term.
    grads = [torch.addmm(w.detach(), m[layer].t(), m[layer + 1], beta=weight_decay, alpha=1 / nm)
             .addmm_(d[layer].t(), d[layer + 1], alpha=-1 / nd) for layer, w in enumerate(dbm.weights)]
    grads += [m.mean(0) - d.mean(0) for d, m in zip(data_states, model_states)]
    return grads


class PersistentChains:
    """The model's persistent chains: one ``[n_chains, n_l]`` tensor per layer, started from
    Bernoulli(1/2) states at the first update; checkpointed by ``fit`` (each rank its own)."""

    def __init__(self, n_chains: int):
        self.n_chains = n_chains
        self.states: list[torch.Tensor] | None = None

    def advance(self, dbm: DBM, steps: int, generator) -> list[torch.Tensor]:
        if self.states is None:
            self.states = dbm.random_states(self.n_chains, generator=generator)
        self.states = dbm.gibbs(self.states, steps, generator=generator)
        return self.states

    def state_dict(self) -> dict:
        return {"states": self.states}

    def load_state_dict(self, state: dict) -> None:
        self.states = state["states"]


def _check_positive(value, name: str, fn: str) -> int:
    return check_count(value, name, fn)


def _generators(dbm: DBM, generator: torch.Generator | None) -> tuple[torch.Generator, torch.Generator]:
    """(this rank's stream, the CPU generator the batches are shuffled with), both drawn from
    ``generator`` (a random seed if None)."""
    return distributed.run_generators(generator, dbm.weights[0].device)


def _as_rows(dbm: DBM, data, fn: str) -> torch.Tensor:
    return training_rows(data, dbm.n_visible, dbm.weights[0].dtype, fn)


def fit_dbm(
    dbm: DBM,
    data: torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 100,
    n_chains: int = 100,
    k: int = 5,
    mean_field_iterations: int = 10,
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 2e-4,
    sparsity_target: float | None = None,
    sparsity_cost: float = 0.1,
    optimizer: torch.optim.Optimizer | None = None,
    lr_schedule: str | Callable[[int], float] | None = None,
    momentum_schedule: Callable[[int], float] | None = None,
    generator: torch.Generator | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
    eval_fn: Callable[[DBM, int], dict] | None = None,
) -> list[dict]:
    """Joint training of ``dbm`` on the rows of ``data`` (see the module's docstring): mean-field
    with ``mean_field_iterations`` sweeps, ``n_chains`` persistent chains advanced ``k`` sweeps
    per update, ``weight_decay`` on the weights, SGD with ``lr`` and ``momentum`` unless an
    ``optimizer`` is given. ``sparsity_target`` ``p``: each hidden layer's mean-field means are
    pulled towards an average of ``p`` by the penalty of Hinton's practical guide (section 11):
    with ``q`` the batch's mean of the means of layer ``l``, ``sparsity_cost * (q - p)`` is added
    to the gradient of ``b_l`` and, times the mean of layer ``l - 1``'s states, to that of the
    weights from below. ``lr_schedule``/``momentum_schedule`` as for :func:`dgm_fast.train.fit`
    (e.g. ``"linear"`` decay, as Salakhutdinov & Hinton decay theirs). Returns ``fit``'s history (the epoch's mean ``reconstruction``: the
    squared error of the visible means given the mean-field ``mu_1``)."""
    fn = "fit_dbm"
    data = _as_rows(dbm, data, fn)
    for name, value in (("n_chains", n_chains), ("k", k), ("mean_field_iterations", mean_field_iterations)):
        _check_positive(value, name, fn)
    if sparsity_target is not None and not 0 < sparsity_target < 1:
        raise ValueError(f"{fn}: sparsity_target must lie in (0, 1), got {sparsity_target}")
    if not sparsity_cost >= 0:
        raise ValueError(f"{fn}: sparsity_cost must be >= 0, got {sparsity_cost}")
    n_weights = len(dbm.weights)
    generator, shuffle_gen = _generators(dbm, generator)
    optimizer = optimizer or torch.optim.SGD(dbm.parameters(), lr=lr, momentum=momentum)
    chains = PersistentChains(n_chains)
    params = [*dbm.weights, *dbm.biases]

    def step(batch) -> dict:
        v = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(dbm.weights[0])
        means = dbm.mean_field(v, iterations=mean_field_iterations)
        model = chains.advance(dbm, k, generator)
        with torch.no_grad():
            data_states = [v, *means]
            grads = dbm_gradients(dbm, data_states, model, weight_decay=weight_decay)
            if sparsity_target is not None:
                for layer in range(1, n_weights + 1):
                    pull = sparsity_cost * (data_states[layer].mean(0) - sparsity_target)
                    grads[n_weights + layer] += pull
                    grads[layer - 1] += torch.outer(data_states[layer - 1].mean(0), pull)
            for p, g in zip(params, grads):
                p.grad = g
            recon = ((torch.sigmoid(dbm.biases[0] + means[0] @ dbm.weights[0].t()) - v) ** 2).sum(1).mean()
        optimizer.step()
        return {"reconstruction": recon}  # fit averages it over the epoch

    evaluate = None if eval_fn is None else (lambda epoch: eval_fn(dbm, epoch))
    return fit(step, data, model=dbm, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
               lr_schedule=lr_schedule, momentum_schedule=momentum_schedule, state={"chains": chains}, generators={"generator": generator},
               shuffle_generator=shuffle_gen, eval_fn=evaluate, checkpoint=checkpoint,
               checkpoint_every=checkpoint_every, extra={"layer_sizes": dbm.layer_sizes}, progress=progress,
               desc="DBM epochs")


def _scales(layer: int, top: int) -> tuple[float, float]:
    """(up, down) weight scales of the RBM under hidden layer ``layer + 1``."""
    return (1.0 if layer + 1 == top else 2.0), (1.0 if layer == 0 else 2.0)


def pretrain_dbm(
    dbm: DBM,
    data: torch.Tensor,
    *,
    epochs: int | list[int] = 10,
    batch_size: int = 100,
    k: int = 1,
    lr: float = 0.05,
    momentum: float = 0.5,
    weight_decay: float = 2e-4,
    generator: torch.Generator | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    eval_fn: Callable[[torch.nn.Module, int], dict] | None = None,
) -> list[list[dict]]:
    """Greedy layer-wise pretraining of ``dbm``'s weights and biases, bottom layer first (see the
    module's docstring for the doubled weights). ``epochs``: one number for every layer or one
    per layer. ``checkpoint_dir``: layer ``l`` is checkpointed after every epoch in
    ``pretrain<l>.pt`` there, and a run started again resumes (finished layers are read back).
    ``eval_fn(layer's parameters, epoch)`` after each epoch goes into the history. Returns each
    layer's ``fit`` history."""
    fn = "pretrain_dbm"
    data = _as_rows(dbm, data, fn)
    n_layers = len(dbm.weights)
    per_layer = list(epochs) if isinstance(epochs, (list, tuple)) else [epochs] * n_layers
    if len(per_layer) != n_layers:
        raise ValueError(f"{fn}: epochs lists {len(per_layer)} values for {n_layers} layers of weights")
    _check_positive(k, "k", fn)
    generator, shuffle_gen = _generators(dbm, generator)
    top = n_layers
    histories = []
    upper_visible_biases = []  # each upper RBM's visible bias, averaged in at the end

    for layer in range(n_layers):
        up, down = _scales(layer, top)
        w = dbm.weights[layer]
        visible_bias = dbm.biases[0] if layer == 0 else torch.nn.Parameter(torch.zeros_like(dbm.biases[layer]))
        hidden_bias = torch.nn.Parameter(torch.zeros_like(dbm.biases[layer + 1]))
        params = [w, visible_bias, hidden_bias]
        optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum)
        below = [(dbm.weights[l], dbm.biases[l + 1], _scales(l, top)[0]) for l in range(layer)]

        def step(batch, w=w, vb=visible_bias, hb=hidden_bias, up=up, down=down, below=below, opt=optimizer) -> dict:
            x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(w)
            with torch.no_grad():
                for wl, bl, scale in below:  # the layer below's up-pass, as in its training
                    x = torch.sigmoid(bl + scale * (x @ wl))
                up_input = up * (x @ w)
                h0 = torch.sigmoid(hb + up_input)
                h = ops.bernoulli_logits(up_input, hb, generator=generator)
                for _ in range(k):
                    down_input = down * (h @ w.t())
                    if layer == 0:  # binary states at the bottom; probabilities above, like the inputs
                        x_model = ops.bernoulli_logits(down_input, vb, generator=generator)
                    else:
                        x_model = torch.sigmoid(vb + down_input)
                    up_input = up * (x_model @ w)
                    h_model = torch.sigmoid(hb + up_input)
                    h = ops.bernoulli_logits(up_input, hb, generator=generator)
                n = x.shape[0]
                # The usual CD statistics, as Salakhutdinov's code takes them: the doubling
                # changes the conditionals, not the form of the update.
                w.grad = (x_model.t() @ h_model - x.t() @ h0) / n + weight_decay * w
                vb.grad = x_model.mean(0) - x.mean(0)
                hb.grad = h_model.mean(0) - h0.mean(0)
                recon = ((torch.sigmoid(vb + down * (h0 @ w.t())) - x) ** 2).sum(1).mean()
            opt.step()
            return {"reconstruction": recon}

        checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / f"pretrain{layer}.pt"
        histories.append(fit(step, data, model=torch.nn.ParameterList(params), optimizer=optimizer,
                             epochs=per_layer[layer], batch_size=batch_size, generators={"generator": generator},
                             shuffle_generator=shuffle_gen, checkpoint=checkpoint, progress=progress,
                             eval_fn=None if eval_fn is None else (lambda epoch, m=params: eval_fn(m, epoch)),
                             desc=f"layer {layer + 1}/{n_layers}"))
        with torch.no_grad():
            dbm.biases[layer + 1].copy_(hidden_bias)  # what the up-pass of the next layer's training uses
        if layer > 0:
            upper_visible_biases.append(visible_bias.detach())
    with torch.no_grad():  # composed: each hidden layer between two RBMs takes the mean of its two biases
        for layer, visible_bias in enumerate(upper_visible_biases, start=1):
            dbm.biases[layer].add_(visible_bias).mul_(0.5)
    return histories
