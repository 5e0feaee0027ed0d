"""Greedy layer-wise pretraining of a deep belief net (Hinton, Osindero & Teh 2006).

Each RBM of the stack is trained, bottom first, with :func:`dgm_fast.models.rbm.fit_rbm` (the
common training loop, the RBM's native chain and update ops; any of CD-k, PCD, FPCD, PT) on what
the layers below make of the data, ``upward``:

* ``"probabilities"`` (the default): the hidden probabilities of the layer below, each computed
  from the probabilities below it. The same expected statistics with less noise, as Hinton's
  practical guide advises for learning features.
* ``"samples"``: binary states drawn up through the layers below, ``h_l ~ q(h_l | h_{l-1})``:
  samples of the aggregated posterior, which is what the variational bound's argument has the
  new layer model. On MNIST it gave the better bound (bench/RESULTS.md).

Those inputs are computed batch by batch as the rows are fetched (``fit_rbm(inputs=...)``), so no
second copy of the dataset is ever held.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ...train import distributed
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
    upward: str = "probabilities",
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    **fit_options,
) -> list[list[dict]]:
    """Trains ``dbn.rbms`` one after the other, bottom first, on ``data`` (a tensor of rows; or a
    Dataset, e.g. a :class:`~dgm_fast.data.MemmapDataset` streamed from disk, or a DataLoader),
    each on the layer below's hidden
    probabilities or, with ``upward="samples"``, on binary states drawn up through the layers
    below (from a generator of their own, checkpointed with the layer). ``epochs``: one count
    for every layer or one per layer; ``fit_options`` go to
    :func:`~dgm_fast.models.rbm.fit_rbm` for every layer (``method``, ``k``, ``lr``, ``momentum``,
    ``weight_decay``, ``n_chains``, ``method_options``, ...).

    With ``checkpoint_dir``, layer ``i`` checkpoints to ``layer{i}.pt`` there after every epoch,
    and a run started again resumes: finished layers are read back, the interrupted one
    continues. Returns each layer's history.
    """
    if not isinstance(dbn, DBN):
        raise TypeError(f"pretrain_dbn: dbn must be a dgm_fast.DBN, got {type(dbn).__name__}")
    if upward not in ("probabilities", "samples"):
        raise ValueError(f"pretrain_dbn: upward must be 'probabilities' or 'samples', got {upward!r}")
    if dbn.untied:
        raise ValueError("pretrain_dbn: this DBN is untied (up-down fine-tuned); greedy pretraining trains tied "
                         "layers. Pretrain a new DBN, or keep fine-tuning this one with fine_tune_dbn")
    dbn._check_data(data, "pretrain_dbn")
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
    input_seeds = torch.randint(2**62, (n_layers,), generator=generator, device=generator.device).tolist()
    seeds, input_seeds = distributed.broadcast_object((seeds, input_seeds))  # a process group: rank 0's
    if distributed.is_distributed():  # each rank draws its own upward samples
        input_seeds = [distributed.rank_seed(seed, distributed.rank()) for seed in input_seeds]
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
        inputs, input_generator = None, None
        if i > 0 and upward == "samples":
            input_generator = torch.Generator(device=device).manual_seed(input_seeds[i])
            inputs = functools.partial(dbn.up, layers=i, sample=True, generator=input_generator)
        elif i > 0:
            inputs = functools.partial(dbn.up, layers=i)
        checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / f"layer{i}.pt"
        histories.append(fit_rbm(rbm, data, inputs=inputs, input_generator=input_generator, epochs=counts[i],
                                 batch_size=batch_size, generator=layer_generator, checkpoint=checkpoint,
                                 progress=progress, **fit_options))
    return histories
