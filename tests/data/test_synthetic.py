"""dgm_fast.data.synthetic: distorted MNIST written chunk by chunk, resumable."""

import json

import numpy as np
import pytest
import torch

from dgm_fast.data import MemmapDataset
from dgm_fast.data import synthetic
from dgm_fast.data.synthetic import elastic_distort, write_distorted_mnist


@pytest.fixture
def source():
    g = torch.Generator().manual_seed(0)
    return torch.rand((200, 784), generator=g) * (torch.rand((200, 784), generator=g) < 0.2)


def test_no_displacement_is_the_identity_and_a_displacement_moves_pixels(source):
    images = source[:10].reshape(10, 28, 28)
    same = elastic_distort(images, alpha=0.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(same, images, rtol=0, atol=1e-5)
    moved = elastic_distort(images, alpha=34.0, generator=torch.Generator().manual_seed(1))
    assert (moved - images).abs().mean() > 0.01 and moved.min() >= 0 and moved.max() <= 1


@pytest.mark.parametrize("distortion", ["elastic", "noise"])
def test_an_interrupted_write_resumes_to_the_same_bytes(tmp_path, monkeypatch, source, distortion):
    monkeypatch.setattr(synthetic, "CHUNK_ROWS", 100)
    whole = write_distorted_mnist(tmp_path / "whole.npy", 2550, distortion=distortion, source=source, progress=False)
    path = tmp_path / "cut.npy"
    real_chunk = synthetic._chunk

    def dies_at_chunk_14(*args):
        if args[1] == 14:
            raise KeyboardInterrupt
        return real_chunk(*args)

    monkeypatch.setattr(synthetic, "_chunk", dies_at_chunk_14)
    with pytest.raises(KeyboardInterrupt):
        write_distorted_mnist(path, 2550, distortion=distortion, source=source, progress=False)
    assert not path.exists()  # only a complete file takes the name
    journal = json.loads(path.with_name("cut.npy.partial.json").read_text())
    assert journal["chunks_done"] == 10  # recorded every 10 chunks, after a flush
    monkeypatch.setattr(synthetic, "_chunk", real_chunk)
    write_distorted_mnist(path, 2550, distortion=distortion, source=source, progress=False)
    assert np.array_equal(np.load(path), np.load(whole))
    assert not path.with_name("cut.npy.partial").exists() and not path.with_name("cut.npy.partial.json").exists()
    rows = MemmapDataset(path, scale=1 / 255, flatten=True)
    assert len(rows) == 2550 and rows[0].shape == (784,)


def test_bad_arguments(tmp_path, source):
    with pytest.raises(ValueError, match="must end in .npy"):
        write_distorted_mnist(tmp_path / "x.bin", 10, source=source)
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        write_distorted_mnist(tmp_path / "x.npy", 0, source=source)
    with pytest.raises(ValueError, match="'elastic' or 'noise'"):
        write_distorted_mnist(tmp_path / "x.npy", 10, distortion="blur", source=source)
    with pytest.raises(ValueError, match=r"source must be \[n, 784\]"):
        write_distorted_mnist(tmp_path / "x.npy", 10, source=source[:, :100])
