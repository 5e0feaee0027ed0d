"""The one training loop of every model: :func:`fit`.

A model plugs in by giving its update step, a function of one batch; everything around it is
here: batching (tensors, Datasets, DataLoaders, streaming IterableDatasets), epochs or a number
of updates, learning-rate schedules, a tqdm progress bar, an evaluation hook with a metrics
history, and atomic checkpoints that hold everything a bit-exact resume needs (the model, the
optimizer, the schedule, the algorithm's state such as persistent chains or fast weights, every
random generator, and the position inside the epoch).

Distributed training (the large-scale pretraining issue) will plug into two places marked
below: the step, where gradients or update statistics are all-reduced, and :func:`_is_writer`,
which lets rank 0 alone write files.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import (BatchSampler, DataLoader, Dataset, DistributedSampler, IterableDataset, RandomSampler,
                              SequentialSampler, TensorDataset)

from . import distributed

from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["LR_SCHEDULES", "Stateful", "fit", "fused_adam", "make_loader", "make_schedule"]

CHECKPOINT_FORMAT = 1
_CHUNK_BATCHES = 256  # run_batches gets at most this many batches' rows at a time


class Stateful(Protocol):
    """What :func:`fit` checkpoints besides the model and optimizer: anything with
    ``state_dict()`` and ``load_state_dict(state)`` (a training method's persistent chains, a
    sparsity target's running means, an LR scheduler)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


_CHUNK_INDICES = 1 << 16  # a permutation is handed out as Python ints this many at a time


def _chunked(order: torch.Tensor):
    for chunk in order.split(_CHUNK_INDICES):
        yield from chunk.tolist()


class _CompactRandomSampler(RandomSampler):
    """``RandomSampler``'s order and random draws, with the epoch's permutation kept as a tensor
    (8 bytes a row) rather than a list of Python ints (36): on a file of 784-byte rows that list
    alone would be 4.6 % of the file in memory."""

    def __iter__(self):
        if self.replacement or self._num_samples is not None or self.generator is None:
            yield from super().__iter__()
            return
        n = len(self.data_source)
        yield from _chunked(torch.randperm(n, generator=self.generator))
        # RandomSampler draws a second permutation at the end and keeps none of it: so do we,
        # so that a run's later draws do not depend on which sampler served it.
        torch.randperm(n, generator=self.generator)


class _CompactDistributedSampler(DistributedSampler):
    """``DistributedSampler``'s shard of each epoch's permutation (shuffled, the tail dropped),
    kept as a tensor (see _CompactRandomSampler)."""

    def __iter__(self):
        if not (self.shuffle and self.drop_last):
            yield from super().__iter__()
            return
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.dataset), generator=g)[:self.total_size]
        yield from _chunked(order[self.rank:self.total_size:self.num_replicas])


def make_loader(data, batch_size: int, *, shuffle: bool = True, generator: torch.Generator | None = None,
                name: str = "fit") -> DataLoader:
    """``data`` as a DataLoader: a DataLoader is used as it is; a tensor (rows are examples) or a
    Dataset is batched, shuffled with ``generator`` (a CPU generator, which the checkpoints
    save). Tensors are checked for emptiness and NaN/Inf here, once, rather than per batch.

    In a process group (:mod:`dgm_fast.train.distributed`) each rank gets its shard of every
    epoch from a ``DistributedSampler`` (seeded from rank 0's ``generator``; call ``set_epoch``),
    which leaves out the last ``n mod world_size`` rows of each epoch's shuffle so that every rank
    has as many batches. A DataLoader must then bring its own ``DistributedSampler``."""
    parallel = distributed.is_distributed()
    if isinstance(data, DataLoader):
        if parallel and _distributed_sampler(data) is None:
            raise ValueError(f"{name}: in a process group of {distributed.world_size()} ranks a DataLoader must shard "
                             "the data with a torch.utils.data.DistributedSampler (or pass the tensor or Dataset itself)")
        return data
    if batch_size < 1:
        raise ValueError(f"{name}: batch_size must be >= 1, got {batch_size}")
    data = _as_dataset(data, name)
    if isinstance(data, IterableDataset):  # a stream: it decides its own order
        if parallel:
            raise ValueError(f"{name}: a stream (IterableDataset) cannot be sharded over {distributed.world_size()} "
                             "ranks here; pass a map-style Dataset (e.g. dgm_fast.data.MemmapDataset) or a DataLoader "
                             "with a DistributedSampler")
        return DataLoader(data, batch_size=batch_size)
    if parallel:
        order = _shard(data, shuffle, generator, name)
    else:
        order = _CompactRandomSampler(data, generator=generator) if shuffle else SequentialSampler(data)
    return _batches(data, order, batch_size, generator)


def _as_dataset(data, name: str) -> Dataset:
    """A tensor's rows as a TensorDataset, checked here once rather than per batch; a Dataset as it is."""
    if isinstance(data, torch.Tensor):
        if data.dim() == 0 or data.shape[0] == 0:
            raise ValueError(f"{name}: data is empty (shape {list(data.shape)})")
        if data.is_floating_point() and not torch.isfinite(data).all():
            raise ValueError(f"{name}: data contains NaN or Inf")
        return TensorDataset(data)
    if not isinstance(data, Dataset):
        raise TypeError(f"{name}: data must be a Tensor, a Dataset or a DataLoader, got {type(data).__name__}")
    return data


def _batches(data: Dataset, order, batch_size: int, generator) -> DataLoader:
    """Batches of ``data`` in the order of the sampler ``order``, with the draws of
    ``DataLoader(shuffle=True)`` (the loader's ``generator`` gives each epoch's worker seed)."""
    if isinstance(data, TensorDataset):
        # One indexing op per batch rather than a row at a time and a stack: the same rows.
        return DataLoader(data, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None,
                          generator=generator)
    return DataLoader(data, batch_size=batch_size, sampler=order, generator=generator, drop_last=False)


def _shard(data: Dataset, shuffle: bool, generator, name: str) -> DistributedSampler:
    """This rank's sampler in a process group, seeded from rank 0's ``generator``."""
    size = distributed.world_size()
    if len(data) < size:
        raise ValueError(f"{name}: {len(data)} rows cannot be shared by {size} ranks (each needs at least one row)")
    if len(data) % size and distributed.rank() == 0:
        warnings.warn(f"{name}: {len(data)} rows do not divide among {size} ranks; every epoch leaves out "
                      f"{len(data) % size} row(s) of its shuffle (others each epoch), so that every rank takes as many "
                      "steps", stacklevel=3)
    seed = int(torch.randint(2**62, (1,), generator=generator).item())
    return _CompactDistributedSampler(data, num_replicas=size, rank=distributed.rank(), shuffle=shuffle,
                                      seed=distributed.broadcast_object(seed), drop_last=True)


def _index_batches(loader: DataLoader):
    """What yields ``loader``'s batches of indices (its batch sampler; see _batches)."""
    return loader.batch_sampler if loader.batch_sampler is not None else loader.sampler


def _distributed_sampler(loader: DataLoader):
    """The DistributedSampler behind ``loader``, if any."""
    sampler = getattr(_index_batches(loader), "sampler", None)
    return sampler if isinstance(sampler, DistributedSampler) else None


def fused_adam(params, device: torch.device, **kwargs) -> torch.optim.Adam:
    """torch's Adam, fused (one kernel for all parameters) on the CPU and CUDA, where torch has
    that kernel: at small batches the per-parameter loop of the plain Adam is a large share of an
    update (measured: half of a batch-20 wake-sleep update at 784-200-200). ``kwargs`` go to
    ``torch.optim.Adam``."""
    return torch.optim.Adam(params, fused=torch.device(device).type in ("cpu", "cuda"), **kwargs)


# The learning-rate schedules fit knows by name (the commands offer them as --lr-schedule).
LR_SCHEDULES = ("constant", "linear", "cosine")


def make_schedule(optimizer: torch.optim.Optimizer, lr_schedule, epochs: int | None):
    """A per-epoch ``LambdaLR`` from ``"constant"`` (None), ``"linear"`` or ``"cosine"`` (both
    reach 0 after ``epochs``) or a function of the epoch (the factor), or None."""
    if lr_schedule is None or lr_schedule == "constant":
        return None
    if lr_schedule in ("linear", "cosine") and not epochs:
        raise ValueError(f"lr_schedule={lr_schedule!r} needs the number of epochs")
    if lr_schedule == "linear":
        fn = lambda epoch: 1.0 - epoch / epochs  # noqa: E731
    elif lr_schedule == "cosine":
        fn = lambda epoch: 0.5 * (1 + math.cos(math.pi * epoch / epochs))  # noqa: E731
    elif callable(lr_schedule):
        fn = lr_schedule
    else:
        raise ValueError(f"lr_schedule must be 'constant', 'linear', 'cosine' or a callable, got {lr_schedule!r}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)


@dataclass
class _Position:
    epoch: int = 0  # completed epochs
    batch: int = 0  # updates done in the current epoch
    updates: int = 0  # updates in all
    epoch_start_rng: Any = None  # the shuffle generator's state when the current epoch began
    history: list = field(default_factory=list)
    sums: dict = field(default_factory=dict)  # the current epoch's step metrics, summed
    counted: int = 0  # steps that returned metrics in the current epoch


def _is_writer() -> bool:
    """Whether this process writes checkpoints (rank 0 under torch.distributed, else always)."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _to_device(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {key: _to_device(value, device) for key, value in obj.items()}
    return obj


def _model_device(model: torch.nn.Module | None) -> torch.device:
    for tensor in (model.parameters() if model is not None else ()):
        return tensor.device
    return torch.device("cpu")


def fit(
    step: Callable[[Any], Mapping[str, float] | None],
    data,
    *,
    run_batches: Callable[[torch.Tensor, int], None] | None = None,
    model: torch.nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 100,
    shuffle: bool = True,
    lr_schedule: str | Callable[[int], float] | None = None,
    momentum_schedule: Callable[[int], float] | None = None,
    state: Mapping[str, Stateful] | None = None,
    generators: Mapping[str, torch.Generator] | None = None,
    shuffle_generator: torch.Generator | None = None,
    eval_fn: Callable[[int], Mapping[str, float]] | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    extra: Mapping[str, Any] | None = None,
    progress: bool = True,
    progress_keys: Iterable[str] | None = None,
    desc: str = "epochs",
) -> list[dict]:
    """Runs ``step(batch)`` over ``data`` for ``epochs`` epochs or ``steps`` updates.

    Args:
        step: one update from one batch (what the DataLoader yields), e.g. a CD step; it may
            return metrics, which are averaged over the epoch into the history.
        data: a tensor (rows are examples), a Dataset, an IterableDataset (streamed; no
            shuffling) or a DataLoader (used as it is).
        run_batches: ``run_batches(rows, batch_size)`` trains on the consecutive minibatches of
            ``rows`` (a tensor, already in the epoch's order) in one call, with what ``step``
            would do to each, and returns no metrics. When ``data`` is a tensor, ``fit`` hands it
            the rows of many updates at once (an epoch, or up to the next checkpoint) instead of
            calling ``step`` per batch: same order, same random draws of the DataLoader, so the
            same result without the per-batch overhead (a native epoch, e.g. ``fit_rbm``'s).
        model, optimizer: checkpointed (``state_dict``). The optimizer's first group's ``lr``
            goes into the history.
        epochs / steps: how long to train, in passes over the data or in updates (one of them).
        lr_schedule: ``"linear"``, ``"cosine"`` or a function of the epoch giving the factor of
            the initial learning rate (a ``LambdaLR`` stepped after each epoch).
        momentum_schedule: a function of the epoch (counted from 0) giving the momentum of every
            parameter group during that epoch, e.g. Hinton's 0.5 for the first 5 epochs, then
            0.9. The optimizer must have a ``momentum`` setting (SGD, RMSprop).
        state: the algorithm's state objects, by name (persistent chains, fast weights,
            running statistics), each with ``state_dict``/``load_state_dict``.
        generators: the run's random generators, by name; their states are checkpointed.
        shuffle_generator: the CPU generator the batches are shuffled with (default: a new one
            seeded from torch's default generator).
        eval_fn: ``eval_fn(epoch)``, called after each epoch (counted from 1); what it returns
            goes into the history.
        checkpoint: a path. After every epoch (and every ``checkpoint_every`` updates) the whole
            state is written there atomically; a run started again with the same path resumes
            where it stopped and ends exactly as an uninterrupted run would.
        extra: anything else worth keeping in the checkpoint (e.g. the model's constructor
            arguments, so that the model can be rebuilt from the file alone).
        progress_keys: the history keys the progress bar shows, with their latest values
            (default: all).

    Returns:
        the history, one dict per epoch: ``epoch``, ``updates``, ``lr``, the step's mean
        metrics and ``eval_fn``'s results.
    """
    if (epochs is None) == (steps is None):
        raise ValueError(f"fit: give exactly one of epochs and steps, got epochs={epochs}, steps={steps}")
    if (epochs is not None and epochs < 0) or (steps is not None and steps < 0):
        raise ValueError(f"fit: epochs and steps must be >= 0, got {epochs} and {steps}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"fit: checkpoint_every must be >= 1, got {checkpoint_every}")
    if shuffle_generator is None:
        shuffle_generator = torch.Generator().manual_seed(int(torch.randint(2**62, (1,)).item()))
    loader = make_loader(data, batch_size, shuffle=shuffle, generator=shuffle_generator)
    # A user's DataLoader shuffles with its own generator (if any): that is the one to save.
    order_generator = loader.generator if isinstance(data, DataLoader) else shuffle_generator
    scheduler = make_schedule(optimizer, lr_schedule, epochs) if optimizer is not None else None
    if momentum_schedule is not None:
        if not callable(momentum_schedule):
            raise TypeError(f"fit: momentum_schedule must be a function of the epoch, got {momentum_schedule!r}")
        if optimizer is None or any("momentum" not in group for group in optimizer.param_groups):
            raise ValueError("fit: momentum_schedule needs an optimizer with a 'momentum' setting (SGD, RMSprop), "
                             f"got {type(optimizer).__name__ if optimizer is not None else None}")
    stateful: dict[str, Stateful] = dict(state or {})
    if scheduler is not None:
        stateful["scheduler"] = scheduler
    generators = dict(generators or {})
    device = _model_device(model)
    pos = _Position()

    parallel = distributed.is_distributed()
    size = distributed.world_size()

    def own_state() -> dict:
        """What differs between ranks: the algorithm's state (persistent chains), the generators."""
        return {
            "state": {name: obj.state_dict() for name, obj in stateful.items()},
            "generators": {name: g.get_state() for name, g in generators.items()},
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        }

    def snapshot() -> dict:
        """The checkpoint; in a process group a collective call, every rank's state in "ranks"."""
        common = {
            "format": CHECKPOINT_FORMAT,
            "model": None if model is None else model.state_dict(),
            "optimizer": None if optimizer is None else optimizer.state_dict(),
            "order_generator": None if order_generator is None else order_generator.get_state(),
            "epoch": pos.epoch, "batch": pos.batch, "updates": pos.updates,
            "epoch_start_rng": pos.epoch_start_rng, "history": pos.history,
            "metric_sums": pos.sums, "metric_count": pos.counted,
            **dict(extra or {}),
        }
        if parallel:
            return {**common, "world_size": size, "ranks": distributed.gather_objects(own_state(), dst=0)}
        return {**common, **own_state()}

    def write() -> None:
        if checkpoint is None:
            return
        state = snapshot()  # every rank takes part in the gather
        if _is_writer():
            save_checkpoint(checkpoint, state)

    saved = None
    if checkpoint is not None and resume:
        # Rank 0 reads the file and hands it to the others: no shared file system needed.
        if _is_writer():
            try:
                saved = load_checkpoint(checkpoint) if Path(checkpoint).exists() else None
            except RuntimeError as exc:  # a corrupt file: every rank raises it, none waits forever
                saved = exc
        saved = distributed.broadcast_object(saved)
        if isinstance(saved, Exception):
            raise saved
    if saved is not None:
        if saved.get("format") != CHECKPOINT_FORMAT:
            raise RuntimeError(f"{checkpoint} is not a checkpoint of this version of dgm_fast.train.fit "
                               f"(format {saved.get('format')!r}); delete it to start over, or pass resume=False")
        saved_size = saved.get("world_size", 1)
        if saved_size != size:
            raise ValueError(
                f"{checkpoint} was written by a run of {saved_size} process(es), this run has {size}: each rank's "
                "persistent chains and random streams are in it, so resume it with the same number of ranks "
                f"(torchrun --nproc-per-node {saved_size} on one machine), or start over with another checkpoint path")
        saved.update(saved.pop("ranks")[distributed.rank()] if parallel else {})
        if model is not None:
            model.load_state_dict(saved["model"])
        if optimizer is not None:
            optimizer.load_state_dict(saved["optimizer"])
        for name, obj in stateful.items():
            if name in saved["state"]:
                obj.load_state_dict(_to_device(saved["state"][name], device))
        for name, g in generators.items():
            g.set_state(saved["generators"][name])
        if order_generator is not None and saved["order_generator"] is not None:
            order_generator.set_state(saved["order_generator"])
        torch.set_rng_state(saved["torch_rng"])
        if saved["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        pos = _Position(saved["epoch"], saved["batch"], saved["updates"], saved["epoch_start_rng"], saved["history"],
                        saved["metric_sums"], saved["metric_count"])
        if pos.batch and order_generator is not None and pos.epoch_start_rng is not None:
            # Mid-epoch: replay the epoch's shuffle, then skip the batches already trained on.
            order_generator.set_state(pos.epoch_start_rng)

    # run_batches gets slices of the tensor's rows; other data goes batch by batch through step.
    # (In a process group every update goes through step: the rows of a native epoch are one
    # process's, and its fused update leaves no gradient to average.)
    rows = data if run_batches is not None and isinstance(data, torch.Tensor) and not parallel else None
    sharded = _distributed_sampler(loader) if parallel else None
    hook = None
    if parallel:
        if model is not None:
            distributed.broadcast_module(model)  # a fresh start: rank 0's initial parameters everywhere
        if optimizer is not None:
            hook = optimizer.register_step_pre_hook(distributed.gradient_all_reduce_hook)
        if sharded is not None:  # a user's DataLoader may shard unevenly; ours cannot
            counts = distributed.gather_objects(len(loader))
            if len(set(counts)) > 1:
                raise ValueError(f"fit: the ranks' DataLoaders give different numbers of batches per epoch ({counts}); "
                                 "every rank must take the same number of steps")

    def run_epoch_in_chunks() -> None:
        """The rest of the epoch through run_batches, in chunks that end where a checkpoint is
        due or the step budget runs out."""
        iter(loader)  # what the DataLoader draws when an epoch's iteration starts (a worker seed)
        order = torch.tensor([i for indices in _index_batches(loader) for i in indices], dtype=torch.long)
        n_batches = len(loader)
        while pos.batch < n_batches and not (steps is not None and pos.updates >= steps):
            stop = min(n_batches, pos.batch + _CHUNK_BATCHES)  # bounds the rows gathered per call
            if steps is not None:
                stop = min(stop, pos.batch + steps - pos.updates)
            if checkpoint_every is not None:
                stop = min(stop, pos.batch + checkpoint_every - pos.updates % checkpoint_every)
            run_batches(rows[order[pos.batch * batch_size:stop * batch_size]], batch_size)
            if steps is not None and bar is not None:
                bar.update(stop - pos.batch)
            pos.updates += stop - pos.batch
            pos.batch = stop
            if checkpoint_every is not None and pos.updates % checkpoint_every == 0:
                write()

    def done() -> bool:
        return pos.epoch >= epochs if epochs is not None else pos.updates >= steps

    total = epochs if epochs is not None else steps
    latest: dict[str, Any] = {}  # the newest value of every key, for the progress bar
    shown = None if progress_keys is None else tuple(progress_keys)
    bar = _progress(progress and _is_writer(), total=total, initial=pos.epoch if epochs is not None else pos.updates,
                    desc=desc if epochs is not None else "updates")
    try:
        while not done():
            if pos.batch == 0:
                pos.sums, pos.counted = {}, 0
                if order_generator is not None:
                    pos.epoch_start_rng = order_generator.get_state()
                if momentum_schedule is not None:  # mid-epoch, a resumed optimizer has it already
                    momentum = float(momentum_schedule(pos.epoch))
                    if not 0 <= momentum < 1:
                        raise ValueError(f"fit: momentum_schedule({pos.epoch}) gave {momentum}; "
                                         "a momentum must lie in [0, 1)")
                    for group in optimizer.param_groups:
                        group["momentum"] = momentum
            if rows is not None:
                run_epoch_in_chunks()
            if sharded is not None:
                sharded.set_epoch(pos.epoch)
            for index, batch in enumerate(loader if rows is None else ()):
                if index < pos.batch:
                    continue  # trained on before the checkpoint this run resumed from
                if steps is not None and pos.updates >= steps:
                    break
                metrics = step(batch)  # distributed: gradients / statistics are reduced in here
                pos.batch += 1
                pos.updates += 1
                if metrics:
                    pos.counted += 1
                    for key, value in metrics.items():
                        pos.sums[key] = pos.sums.get(key, 0.0) + float(value)
                if steps is not None and bar is not None:
                    bar.update(1)
                if checkpoint_every is not None and pos.updates % checkpoint_every == 0:
                    write()
            if pos.batch == 0:
                raise ValueError("fit: the data yielded no batches")
            pos.epoch += 1
            pos.batch = 0
            if scheduler is not None:
                scheduler.step()
            record: dict[str, Any] = {"epoch": pos.epoch, "updates": pos.updates}
            if optimizer is not None:
                record["lr"] = optimizer.param_groups[0]["lr"]
            sums, counted = pos.sums, pos.counted
            if parallel:  # the epoch's metrics over all ranks' steps
                parts = distributed.gather_objects((sums, counted))
                sums = {key: sum(part[0].get(key, 0.0) for part in parts) for key in sums}
                counted = sum(part[1] for part in parts)
            record.update({key: value / counted for key, value in sums.items()})
            if eval_fn is not None:
                results = eval_fn(pos.epoch)
                if not isinstance(results, Mapping):
                    raise TypeError(f"fit: eval_fn must return a mapping of metric names to values, got "
                                    f"{type(results).__name__} {results!r}")
                if parallel:
                    results = _mean_over_ranks(results)
                record.update(results)
            pos.history.append(record)
            if bar is not None:
                if epochs is not None:
                    bar.update(1)
                latest.update(record)
                bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in latest.items()
                                 if k not in ("epoch", "updates") and (shown is None or k in shown)})
            write()
    finally:
        if bar is not None:
            bar.close()
        if hook is not None:
            hook.remove()
    return pos.history


def _mean_over_ranks(results: Mapping[str, Any]) -> dict:
    """``eval_fn``'s results of every rank, a number that differs between them replaced by its mean
    (values the ranks computed together, such as an AIS log Z, are the same everywhere and kept)."""
    parts = distributed.gather_objects(dict(results))
    merged = dict(results)
    for key, value in results.items():
        values = [part.get(key) for part in parts]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and len(set(values)) > 1:
            merged[key] = sum(values) / len(values)
    return merged


def _progress(enabled: bool, **kwargs):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(**kwargs)
