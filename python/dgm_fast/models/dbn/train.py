"""Greedy layer-wise pretraining of a deep belief net (Hinton, Osindero & Teh 2006).

Each RBM of the stack is trained, bottom first, with :func:`dgm_fast.models.rbm.fit_rbm` (the
common training loop, the RBM's native chain and update ops; any of CD-k, PCD, FPCD, PT) on the
**hidden probabilities** of the layer below. Probabilities rather than samples: the same
expected statistics with less noise, as Hinton's practical guide advises for all but the data
layer. Those inputs are computed batch by batch as the DataLoader fetches the rows (a
``collate_fn`` runs the upward pass through the frozen layers below), so no second copy of the
dataset is ever held.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ...train.checkpoint import load_checkpoint
from ..rbm import fit_rbm
from .model import DBN

__all__ = ["pretrain_dbn"]


def pretrain_dbn(
    dbn: DBN,
    data: torch.Tensor,
    *,
    epochs: int | Sequence[int] = 10,
    batch_size: int = 100,
    generator: torch.Generator | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    **fit_options,
) -> list[list[dict]]:
    """Trains ``dbn.rbms`` one after the other, bottom first, each on the layer below's hidden
    probabilities. ``epochs``: one count for every layer or one per layer; ``fit_options`` go to
    :func:`~dgm_fast.models.rbm.fit_rbm` for every layer (``method``, ``k``, ``lr``, ``momentum``,
    ``weight_decay``, ``n_chains``, ``method_options``, ...).

    With ``checkpoint_dir``, layer ``i`` checkpoints to ``layer{i}.pt`` there after every epoch,
    and a run started again resumes: finished layers are read back, the interrupted one
    continues. Returns each layer's history.
    """
    if not isinstance(dbn, DBN):
        raise TypeError(f"pretrain_dbn: dbn must be a dgm_fast.DBN, got {type(dbn).__name__}")
    dbn._check_input(data, "data")
    n_layers = len(dbn.rbms)
    counts = [epochs] * n_layers if isinstance(epochs, int) else list(epochs)
    if len(counts) != n_layers or any(isinstance(e, bool) or not isinstance(e, int) or e < 0 for e in counts):
        raise ValueError(f"pretrain_dbn: epochs must be a non-negative integer or one per layer ({n_layers}), "
                         f"got {epochs!r}")
    device = dbn.rbms[0].weight.device
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (1,)).item()))
    # Every layer's seeds drawn up front, so that a resumed run gives each layer the same ones.
    seeds = torch.randint(2**62, (n_layers,), generator=generator, device=generator.device).tolist()
    if checkpoint_dir is not None:  # before any training: a layer file of another model is not overwritten
        for i, rbm in enumerate(dbn.rbms):
            path = Path(checkpoint_dir) / f"layer{i}.pt"
            if path.exists():
                saved = load_checkpoint(path).get("model_config", {})
                shape = (saved.get("n_visible"), saved.get("n_hidden"))
                if shape != (rbm.n_visible, rbm.n_hidden):
                    raise ValueError(f"pretrain_dbn: {path} holds a {shape[0]}x{shape[1]} RBM, but layer {i} of this "
                                     f"DBN (layer sizes {dbn.layer_sizes}) is {rbm.n_visible}x{rbm.n_hidden}; "
                                     "use another checkpoint_dir or delete that one")
    histories = []
    for i, rbm in enumerate(dbn.rbms):
        layer_generator = torch.Generator(device=device).manual_seed(seeds[i])
        upward = None if i == 0 else functools.partial(dbn.up, layers=i)
        checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / f"layer{i}.pt"
        histories.append(fit_rbm(rbm, data, inputs=upward, epochs=counts[i], batch_size=batch_size,
                                 generator=layer_generator, checkpoint=checkpoint, progress=progress, **fit_options))
    return histories
