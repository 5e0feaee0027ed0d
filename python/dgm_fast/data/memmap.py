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

    Rows are read with ``os.pread`` into fresh buffers, not through the map: pages touched
    through a map stay resident in the process (its RSS) until the kernel needs them, so an
    epoch over a file larger than memory would show the whole file as the process's memory.
    Read this way, only the page cache holds them, which the kernel shares and evicts. A batch
    (``__getitems__``) is read in index order, each run of consecutive rows in one call. The
    map (``array``) serves files whose rows are not contiguous (Fortran order).

    Safe with DataLoader workers (the file is reopened lazily in each process).
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
        # where row i starts in the file, when rows are contiguous bytes there
        self._row_bytes = int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.dtype.itemsize
        self._data_offset = int(arr.offset) if arr.flags.c_contiguous and isinstance(arr, np.memmap) else None
        self._fd: int | None = None

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
        state["_fd"] = None
        return state

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None

    def _read_rows(self, sorted_idx: np.ndarray) -> np.ndarray:
        """Rows at ``sorted_idx`` (ascending, non-negative) as a fresh array ``[k, ...]``."""
        if self._data_offset is None:
            return self.array[sorted_idx]  # a fancy index copies
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        size = self._row_bytes
        out = bytearray(len(sorted_idx) * size)
        view = memoryview(out)
        # runs of consecutive rows: one read each
        breaks = np.flatnonzero(np.diff(sorted_idx) != 1) + 1
        for run_start, run_stop in zip(np.r_[0, breaks], np.r_[breaks, len(sorted_idx)]):
            first, count = int(sorted_idx[run_start]), int(run_stop - run_start)
            want = count * size
            got = os.preadv(self._fd, [view[run_start * size:run_start * size + want]],
                            self._data_offset + first * size)
            if got != want:
                raise DatasetIntegrityError(f"{self.path}: read {got} of {want} bytes at row {first}; the file "
                                            "was truncated after it was opened")
        return np.frombuffer(out, dtype=self.dtype).reshape(len(sorted_idx), *self.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def _to_tensor(self, rows: np.ndarray) -> torch.Tensor:
        # rows from _read_rows are this call's own buffer: no copy before the conversion
        t = torch.from_numpy(rows).to(self.out_dtype)
        if self.scale is not None:
            t = t * self.scale
        return t

    def __getitem__(self, index: int):
        n = self.shape[0]
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {self.path} with {n} rows")
        x = self._to_tensor(self._read_rows(np.array([index % n], dtype=np.int64))[0])
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
        rows = self._to_tensor(self._read_rows(idx[order]))  # sorted reads are sequential on disk
        batch = torch.empty_like(rows)
        batch[torch.from_numpy(order)] = rows
        if self.flatten:
            batch = batch.reshape(len(idx), -1)
        if self.labels is not None:
            labels = self.labels[torch.from_numpy(idx)]
            return [(batch[i], labels[i]) for i in range(len(idx))]
        return list(batch.unbind(0))
