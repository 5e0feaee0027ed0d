"""scikit-learn's bundled digits: the embedded default data."""

from __future__ import annotations

import torch


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
