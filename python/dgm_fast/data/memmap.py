"""Rows of a memory-mapped ``.npy`` (or raw) file, for data larger than memory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import DatasetIntegrityError, DatasetNotFoundError


def load_memmap(
    path: str | os.PathLike,
    *,
    shape: Sequence[int] | None = None,
    dtype: Any = None,
    offset: int = 0,
) -> np.ndarray:
    """A read-only memory map of ``path`` (nothing is read until rows are indexed).

    A ``.npy`` file is opened with ``np.load(path, mmap_mode="r")`` (its header gives shape
    and dtype; passing them checks them). Any other file is raw data and needs ``shape`` and
    ``dtype``; its size (after ``offset`` bytes) must match them exactly.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} does not exist")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise DatasetIntegrityError(
                f"cannot memory-map {path}: {exc} (object arrays and truncated files cannot "
                f"be memory-mapped)"
            ) from exc
        if shape is not None and tuple(shape) != arr.shape:
            raise ValueError(f"{path} has shape {arr.shape}, not the requested {tuple(shape)}")
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            raise ValueError(f"{path} has dtype {arr.dtype}, not the requested {np.dtype(dtype)}")
        return arr
    if shape is None or dtype is None:
        raise ValueError(
            f"{path} is not a .npy file: pass shape= and dtype= to map it as raw data "
            f"(or save it with np.save / np.lib.format.open_memmap)"
        )
    dt = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    need = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    have = path.stat().st_size - offset
    if have != need:
        raise DatasetIntegrityError(
            f"{path}: shape {shape} of {dt} needs {need} bytes after offset {offset}, "
            f"the file has {have}"
        )
    return np.memmap(path, dtype=dt, mode="r", shape=shape, offset=offset)


class MemmapDataset(Dataset):
    """Rows of a memory-mapped array as float32 tensors, read lazily.

    ``MemmapDataset("x.npy", scale=1/255)`` over a uint8 ``.npy`` of shape ``[N, ...]`` yields
    ``x[i] * scale`` as a float32 tensor of shape ``[...]`` (flattened to one dimension if
    ``flatten=True``). Only the pages holding the requested rows are read from disk, so the file
    may be larger than memory. Raw (non-``.npy``) files need ``shape`` and ``dtype``.
    ``labels`` (optional, a tensor/array of length N) makes items ``(row, label)``.

    Safe with DataLoader workers (the map is reopened lazily in each process). Batched
    fetching (``__getitems__``) reads all rows of a batch with one sorted fancy index.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        shape: Sequence[int] | None = None,
        dtype: Any = None,
        *,
        scale: float | None = None,
        offset: int = 0,
        flatten: bool = False,
        labels: Any = None,
        out_dtype: torch.dtype = torch.float32,
    ):
        self.path = Path(path)
        self._shape = None if shape is None else tuple(int(s) for s in shape)
        self._dtype = None if dtype is None else np.dtype(dtype)
        self._offset = int(offset)
        arr = load_memmap(self.path, shape=self._shape, dtype=self._dtype, offset=self._offset)
        if arr.ndim == 0:
            raise ValueError(f"{self.path} holds a scalar, not rows")
        self.shape = arr.shape
        self.dtype = arr.dtype
        self.scale = scale
        self.flatten = flatten
        self.out_dtype = out_dtype
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels))
        if self.labels is not None and len(self.labels) != arr.shape[0]:
            raise ValueError(
                f"labels has {len(self.labels)} entries but {self.path} has {arr.shape[0]} rows"
            )
        self._array: np.ndarray | None = arr

    @property
    def array(self) -> np.ndarray:
        """The read-only memory map."""
        if self._array is None:
            self._array = load_memmap(
                self.path, shape=self._shape, dtype=self._dtype, offset=self._offset
            )
        return self._array

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_array"] = None  # reopen in the receiving process instead of pickling the data
        return state

    def __len__(self) -> int:
        return self.shape[0]

    def _to_tensor(self, rows: np.ndarray) -> torch.Tensor:
        # np.array copies just these rows out of the map (a fancy index already did: no copy)
        fresh = type(rows) is np.ndarray and rows.base is None
        t = torch.from_numpy(rows if fresh else np.array(rows))
        t = t.to(self.out_dtype)
        if self.scale is not None:
            t = t * self.scale
        return t

    def __getitem__(self, index: int):
        n = self.shape[0]
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {self.path} with {n} rows")
        x = self._to_tensor(self.array[index])
        if self.flatten:
            x = x.reshape(-1)
        if self.labels is not None:
            return x, self.labels[index]
        return x

    def __getitems__(self, indices: Sequence[int]) -> list:
        idx = np.asarray(indices, dtype=np.int64)
        n = self.shape[0]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"indices out of range for {self.path} with {n} rows")
        idx %= max(n, 1)
        order = np.argsort(idx, kind="stable")
        rows = self._to_tensor(self.array[idx[order]])  # sorted reads are sequential on disk
        batch = torch.empty_like(rows)
        batch[torch.from_numpy(order)] = rows
        if self.flatten:
            batch = batch.reshape(len(idx), -1)
        if self.labels is not None:
            labels = self.labels[torch.from_numpy(idx)]
            return [(batch[i], labels[i]) for i in range(len(idx))]
        return list(batch.unbind(0))
