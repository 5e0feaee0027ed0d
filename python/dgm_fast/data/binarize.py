"""Fixed and per-epoch binarization of intensities in [0, 1].

There is no offline source for the fixed binarized MNIST of Larochelle & Murray; a stochastic
binarization with a fixed seed stands in for it (say which, when you compare with papers).
"""

from __future__ import annotations


import torch
from torch.utils.data import Dataset

_BINARIZE_MODES = ("threshold", "stochastic")


def binarize(
    x: torch.Tensor,
    mode: str = "threshold",
    *,
    threshold: float = 0.5,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Binarize intensities in [0, 1] to {0, 1}, keeping ``x``'s floating dtype.

    ``"threshold"``: ``x > threshold``. ``"stochastic"``: each value becomes 1 with probability
    equal to it (``torch.bernoulli``), drawn from a ``torch.Generator`` seeded with ``seed``
    (or from ``generator`` if given), so the same seed gives the same result on the same device.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"binarize expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"binarize expects floating-point intensities in [0, 1], got dtype {x.dtype}; "
            "scale integer pixels first (e.g. x.float() / 255)"
        )
    if x.numel() and torch.isnan(x).any():
        raise ValueError("binarize: x contains NaN; intensities must lie in [0, 1]")
    if mode == "threshold":
        return (x > threshold).to(x.dtype)
    if mode == "stochastic":
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError(
                "stochastic binarization needs probabilities in [0, 1], got values in "
                f"[{x.min().item():g}, {x.max().item():g}]"
            )
        if generator is None:
            generator = torch.Generator(device=x.device).manual_seed(seed)
        return torch.bernoulli(x, generator=generator)
    raise ValueError(f"unknown binarization mode {mode!r}: use one of {_BINARIZE_MODES}")


def _maybe_binarize(x: torch.Tensor, mode: str | None, seed: int) -> torch.Tensor:
    if mode is None:
        return x
    return binarize(x, mode, seed=seed)


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that depends on (seed, epoch, index) and on nothing else."""
    h = _splitmix64(seed & _MASK64)
    h = _splitmix64(h ^ (epoch & _MASK64))
    h = _splitmix64(h ^ (index & _MASK64))
    return h >> 1


class DynamicBinarization(Dataset):
    """Stochastically binarize each item afresh every epoch.

    Wraps a tensor of intensities in [0, 1] (optionally with ``labels``) or a ``Dataset``
    whose items are such tensors or tuples whose first element is one (the rest passes
    through unchanged). Item ``i`` is drawn with ``torch.bernoulli`` from a generator seeded
    by a hash of ``(seed, epoch, i)``, so:

    * fetching the same index twice in the same epoch gives the same binary image;
    * calling :meth:`set_epoch` with a new epoch gives a fresh binarization;
    * results do not depend on shuffling, batch size, fetch order or the number of
      DataLoader workers, and are reproducible from ``seed`` and ``epoch`` alone.

    Call ``set_epoch(epoch)`` before iterating a DataLoader each epoch (as with
    ``DistributedSampler``). With ``num_workers > 0`` the workers receive a copy of the dataset
    when the iterator is created, which picks up the new epoch unless
    ``persistent_workers=True`` (then the workers keep the epoch they started with).
    """

    def __init__(
        self,
        data: torch.Tensor | Dataset,
        labels: torch.Tensor | None = None,
        *,
        seed: int = 0,
        epoch: int = 0,
    ):
        if isinstance(data, torch.Tensor):
            if not data.is_floating_point():
                raise TypeError(
                    f"DynamicBinarization needs floating-point intensities in [0, 1], got "
                    f"dtype {data.dtype}; scale integer pixels first (e.g. x.float() / 255)"
                )
            if data.numel() and torch.isnan(data).any():
                raise ValueError("DynamicBinarization: data contains NaN; intensities must lie in [0, 1]")
            if data.numel() and (data.min() < 0 or data.max() > 1):
                raise ValueError(
                    "DynamicBinarization needs intensities in [0, 1], got values in "
                    f"[{data.min().item():g}, {data.max().item():g}]"
                )
            if labels is not None and len(labels) != len(data):
                raise ValueError(
                    f"labels has {len(labels)} entries but data has {len(data)} rows"
                )
        elif labels is not None:
            raise ValueError("labels= is only accepted with a tensor; a Dataset brings its own")
        self.data = data
        self.labels = labels
        self.seed = int(seed)
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the binarization used from now on (one per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.data)

    def _binarize_one(self, x: torch.Tensor, index: int) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(
                "DynamicBinarization: the wrapped dataset must yield floating-point tensors "
                f"in [0, 1] (or tuples starting with one), got {type(x).__name__}"
                + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else "")
            )
        g = torch.Generator(device=x.device).manual_seed(_item_seed(self.seed, self.epoch, index))
        return torch.bernoulli(x, generator=g)

    def __getitem__(self, index: int):
        n = len(self.data)
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        index %= n
        item = self.data[index]
        if isinstance(item, (tuple, list)):
            if not item:
                raise TypeError("DynamicBinarization: the wrapped dataset yielded an empty tuple")
            return (self._binarize_one(item[0], index), *item[1:])
        x = self._binarize_one(item, index)
        if self.labels is not None:
            return x, self.labels[index]
        return x
