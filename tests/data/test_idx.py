"""IDX files and Fashion-MNIST from the Debian package."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from dgm_fast import data
from dgm_fast.data import (
    DatasetIntegrityError,
    DatasetNotFoundError,
    load_fashion_mnist,
    load_idx,
    load_mnist_idx,
)


# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------


def _idx_bytes(arr: np.ndarray) -> bytes:
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}
    code = codes[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _write(path: Path, payload: bytes) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


@pytest.mark.parametrize("gz", ["", ".gz"])
def test_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7).astype(np.uint8)
    ip = _write(tmp_path / f"train-images-idx3-ubyte{gz}", _idx_bytes(images))
    lp = _write(tmp_path / f"train-labels-idx1-ubyte{gz}", _idx_bytes(labels))
    x = load_idx(ip)
    assert x.dtype == torch.uint8 and torch.equal(x, torch.from_numpy(images))
    x, y = load_idx(ip, lp)
    assert y.dtype == torch.int64 and torch.equal(y, torch.from_numpy(labels).long())

    xs, ys = load_mnist_idx(tmp_path, "train")
    assert xs.shape == (7, 20) and xs.dtype == torch.float32
    assert torch.allclose(xs, torch.from_numpy(images).reshape(7, -1).float() / 255)
    assert torch.equal(ys, y)
    xs256, _ = load_mnist_idx(tmp_path, "train", scale=1 / 256)
    assert torch.equal(xs256 * 256, torch.from_numpy(images).reshape(7, -1).float())
    xb, _ = load_mnist_idx(tmp_path, "train", binarize="threshold")
    assert torch.equal(xb, (xs > 0.5).float())


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_other_types_are_big_endian(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    out = load_idx(_write(tmp_path / "a.idx", _idx_bytes(arr)))
    assert np.array_equal(out.numpy(), arr) and out.numpy().dtype == np.dtype(dtype)


def test_idx_truncated_and_corrupt_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    good = _idx_bytes(images)
    with pytest.raises(DatasetIntegrityError, match=r"truncated: dimensions \(10, 28, 28\)"):
        load_idx(_write(tmp_path / "t.idx3-ubyte", good[:-100]))
    with pytest.raises(DatasetIntegrityError, match="truncated.*decompressed file has"):
        load_idx(_write(tmp_path / "t2-idx3-ubyte.gz", good[:-100]))
    # a gzip stream cut short
    full = tmp_path / "full.gz"
    _write(full, good)
    cut = tmp_path / "cut-idx3-ubyte.gz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DatasetIntegrityError, match="truncated gzip"):
        load_idx(cut)
    with pytest.raises(DatasetIntegrityError, match="longer than its header says"):
        load_idx(_write(tmp_path / "long", good + b"\0"))
    with pytest.raises(DatasetIntegrityError, match="magic number 12345678"):
        load_idx(_write(tmp_path / "bad", bytes.fromhex("12345678") + good[4:]))
    with pytest.raises(DatasetIntegrityError, match="header of a 3-dimensional IDX file"):
        load_idx(_write(tmp_path / "hdr", good[:9]))
    with pytest.raises(DatasetIntegrityError, match="give it a .gz suffix"):
        load_idx(tmp_path.joinpath("full.gz").rename(tmp_path / "compressed-no-suffix"))
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_idx(tmp_path / "missing")


def test_idx_label_mismatch(tmp_path):
    ip = _write(tmp_path / "i", _idx_bytes(np.zeros((4, 2, 2), np.uint8)))
    lp = _write(tmp_path / "l", _idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DatasetIntegrityError, match="3 labels but .* 4 images"):
        load_idx(ip, lp)


def test_mnist_idx_missing_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="t10k-images-idx3-ubyte.*pass root="):
        load_mnist_idx(tmp_path, "test")
    with pytest.raises(ValueError, match="'train' and 'test'"):
        load_mnist_idx(tmp_path, "valid")


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST (Debian package dataset-fashion-mnist)
# ---------------------------------------------------------------------------------------------

_FASHION_FILES = [
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
]


@pytest.mark.skipif(
    not all((data.FASHION_MNIST_ROOT / f).is_file() for f in _FASHION_FILES),
    reason="Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist "
    "(installs the IDX files under /usr/share/datasets/fashion-mnist)",
)
def test_fashion_mnist_from_the_debian_package():
    xtr, ytr = load_fashion_mnist("train")
    xte, yte = load_fashion_mnist("test")
    assert xtr.shape == (60_000, 784) and xte.shape == (10_000, 784)
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert xtr.min() == 0 and xtr.max() == 1
    # Xiao et al. (2017): 10 categories of 7,000 images each.
    counts = torch.bincount(ytr, minlength=10) + torch.bincount(yte, minlength=10)
    assert counts.tolist() == [7000] * 10


def test_fashion_mnist_missing_says_apt_get(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist("train", root=tmp_path)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    assert "root=" in str(info.value)


def test_a_gzip_that_expands_past_its_declared_size_is_not_expanded(tmp_path):
    # A header declaring 2x2 bytes, then 64 MiB of zeros: a few KB on disk.
    path = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") * 2 + bytes(4))
        for _ in range(64):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < 200_000
    with pytest.raises(DatasetIntegrityError, match="longer than its header says.*not decompressed further"):
        load_idx(path)
