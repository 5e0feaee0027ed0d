"""IDX files (``train-images-idx3-ubyte[.gz]`` ...): your own MNIST copy, or Fashion-MNIST from
the Debian package ``dataset-fashion-mnist``."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from .binarize import _maybe_binarize
from .errors import DatasetIntegrityError, DatasetNotFoundError

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
                return _read_declared(f, path)
        except EOFError as exc:
            raise DatasetIntegrityError(
                f"{path} is a truncated gzip file ({exc}); download it again"
            ) from exc
        except (gzip.BadGzipFile, OSError, zlib.error) as exc:
            raise DatasetIntegrityError(f"{path} is not a valid gzip file ({exc})") from exc
    return path.read_bytes()


def _read_declared(f, path: Path) -> bytes:
    """The decompressed bytes of a gzip stream, read no further than the size its IDX header
    declares (plus one byte, to tell a longer file): a small file that would expand to far more
    (a decompression bomb) is refused before it is expanded."""
    data = f.read(4)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or data[3] == 0:
        return data  # _parse_idx says what is wrong with it
    data += f.read(4 * data[3])
    header = 4 + 4 * data[3]
    if len(data) < header:
        return data
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(data[3])]
    expected = header + math.prod(dims) * _IDX_TYPES[data[2]].itemsize
    data += f.read(expected - header)
    if f.read(1):
        raise DatasetIntegrityError(
            f"{path} is longer than its header says: dimensions {tuple(dims)} of {_IDX_TYPES[data[2]].name} "
            f"need {expected} bytes (header {header} + data), the decompressed file has more; it was not "
            "decompressed further"
        )
    return data


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
