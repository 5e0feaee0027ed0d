"""Memory-mapped datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dgm_fast.data import DatasetIntegrityError, DatasetNotFoundError, MemmapDataset, load_memmap


# ---------------------------------------------------------------------------------------------
# memory-mapped datasets
# ---------------------------------------------------------------------------------------------


def test_memmap_dataset_matches_the_array(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(100, 28, 28), dtype=np.uint8)
    path = tmp_path / "x.npy"
    np.save(path, arr)
    labels = np.arange(100)
    ds = MemmapDataset(path, scale=1 / 255, flatten=True, labels=labels)
    assert isinstance(ds.array, np.memmap) and len(ds) == 100
    x5, y5 = ds[5]
    assert x5.shape == (784,) and x5.dtype == torch.float32 and y5 == 5
    assert torch.allclose(x5, torch.from_numpy(arr[5]).reshape(-1).float() / 255)
    assert torch.equal(ds[-1][0], ds[99][0])
    loader = DataLoader(ds, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    seen = torch.full((100, 784), -1.0)
    for xb, yb in loader:  # batches come through __getitems__, in shuffled order
        seen[yb] = xb
    assert torch.allclose(seen, torch.from_numpy(arr).reshape(100, -1).float() / 255)
    batch = ds.__getitems__([7, 3, 3, 99])
    ref = torch.from_numpy(arr[[7, 3, 3, 99]]).reshape(4, -1).float() / 255
    assert torch.allclose(torch.stack([b[0] for b in batch]), ref)
    # through a DataLoader with workers: every row arrives once and matches
    plain = MemmapDataset(path)
    rows = torch.cat(list(DataLoader(plain, batch_size=32, num_workers=2)))
    assert rows.dtype == torch.float32 and torch.equal(rows, torch.from_numpy(arr).float())


def test_memmap_raw_file_and_errors(tmp_path):
    arr = np.arange(60, dtype=np.float32).reshape(6, 10)
    raw = tmp_path / "x.f32"
    arr.tofile(raw)
    ds = MemmapDataset(raw, shape=(6, 10), dtype=np.float32)
    assert torch.equal(ds[2], torch.from_numpy(arr[2]))
    assert isinstance(load_memmap(raw, shape=(6, 10), dtype="float32"), np.memmap)
    with pytest.raises(ValueError, match="pass shape= and dtype="):
        MemmapDataset(raw)
    with pytest.raises(DatasetIntegrityError, match="needs 280 bytes .* the file has 240"):
        MemmapDataset(raw, shape=(7, 10), dtype=np.float32)
    npy = tmp_path / "y.npy"
    np.save(npy, arr)
    with pytest.raises(ValueError, match=r"has shape \(6, 10\), not the requested \(6, 11\)"):
        load_memmap(npy, shape=(6, 11))
    with pytest.raises(DatasetNotFoundError):
        MemmapDataset(tmp_path / "nope.npy")
    with pytest.raises(IndexError, match="out of range"):
        ds[6]


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc to read RSS")
def test_memmap_reads_rows_lazily(tmp_path):
    # A 2 GiB .npy (sparse on disk): opening it and reading a few rows must not load it.
    n, d = 2 * 1024 * 1024, 1024
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, d))
    for i in (0, 12345, n - 1):
        mm[i] = (i % 251) + 1
    mm.flush()
    del mm

    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    before = rss()
    ds = MemmapDataset(path, scale=1 / 255)
    for i in (0, 12345, n - 1):
        assert torch.allclose(ds[i], torch.full((d,), ((i % 251) + 1) / 255))
    assert torch.equal(ds[1], torch.zeros(d))
    assert rss() - before < 64 * 1024 * 1024, "reading 4 rows loaded far more than 4 rows"


def test_batches_are_the_files_rows_in_the_order_asked(tmp_path):
    rows = np.random.default_rng(0).integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "rows.npy", rows)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(rows.reshape(1000, 784)))
    index = [5, 3, 4, 999, 0, 5, -1, 6, 7, 8]  # unsorted, repeated, negative, runs
    expected = torch.from_numpy(rows.reshape(1000, 784)[index]).float() * (1 / 255)
    ds = MemmapDataset(tmp_path / "rows.npy", scale=1 / 255, flatten=True)
    assert torch.equal(torch.stack(ds.__getitems__(index)), expected)
    assert torch.equal(ds[-1], expected[6])
    fortran = MemmapDataset(tmp_path / "fortran.npy", scale=1 / 255)  # read through the map
    assert torch.equal(torch.stack(fortran.__getitems__(index)), expected)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RssFile from /proc (Linux)")
def test_reading_a_file_does_not_keep_its_pages_in_the_process(tmp_path):
    def resident_file_kib():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssFile:"):
                return int(line.split()[1])
        pytest.skip("no RssFile in /proc/self/status")

    rows = np.random.default_rng(0).integers(0, 256, (80_000, 784), dtype=np.uint8)  # 63 MB
    np.save(tmp_path / "big.npy", rows)
    del rows
    ds = MemmapDataset(tmp_path / "big.npy")
    before = resident_file_kib()
    order = np.random.default_rng(1).permutation(80_000)
    for start in range(0, 80_000, 1000):
        ds.__getitems__(order[start:start + 1000].tolist())
    # through the map, the whole file (61,250 KiB) would now count as this process's memory
    assert resident_file_kib() - before < 8 * 1024
