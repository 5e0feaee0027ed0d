"""scikit-learn's digits."""

from __future__ import annotations


import torch

from dgm_fast.data import (
    load_digits,
)


# ---------------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------------


def test_digits_shape_and_range():
    x, y = load_digits()
    assert x.shape == (1797, 64) and x.dtype == torch.float32
    assert y.shape == (1797,) and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() == 1.0
    assert torch.equal(torch.unique(y), torch.arange(10))
