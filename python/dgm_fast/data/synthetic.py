"""Data sets larger than memory, made from MNIST: each row a distorted copy of a training image,
written to a ``.npy`` file chunk by chunk (``dgm-fast data mnist-large``), to test streaming and
data-parallel training at scale.

Elastic distortions (Simard, Steinkraus & Platt 2003): a displacement field of uniform noise in
[-1, 1] per pixel and axis, smoothed by a Gaussian of ``sigma`` pixels and scaled by ``alpha``,
moves every pixel (bilinear resampling). ``noise``: Gaussian noise of ``noise_std`` added to the
intensities, clipped to [0, 1]. Chunk ``c`` depends only on (seed, c): an interrupted write
resumes at its first unfinished chunk and gives the same bytes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .._io import atomic_write

__all__ = ["elastic_distort", "write_distorted_mnist"]

CHUNK_ROWS = 10_000


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def elastic_distort(images: torch.Tensor, *, alpha: float = 34.0, sigma: float = 4.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """``images`` ``[n, H, W]`` in [0, 1], each moved by its own smooth random displacement field
    (``alpha`` pixels of displacement at most before smoothing, ``sigma`` the smoothing's width)."""
    if images.dim() != 3:
        raise ValueError(f"elastic_distort: images must be [n, H, W], got {list(images.shape)}")
    n, h, w = images.shape
    field = torch.rand((n, 2, h, w), generator=generator) * 2 - 1
    kernel = _gaussian_kernel(sigma)
    pad = kernel.numel() // 2
    # separable smoothing of both components, zero outside the image as in Simard et al.
    field = F.conv2d(field.reshape(2 * n, 1, h, w), kernel.view(1, 1, 1, -1), padding=(0, pad))
    field = F.conv2d(field, kernel.view(1, 1, -1, 1), padding=(pad, 0)).reshape(n, 2, h, w) * alpha
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    # grid_sample wants (x, y) in [-1, 1] (align_corners=True: -1 and 1 are the outer pixels' centres)
    x = (xs + field[:, 0]) / (w - 1) * 2 - 1
    y = (ys + field[:, 1]) / (h - 1) * 2 - 1
    grid = torch.stack([x, y], dim=-1)
    out = F.grid_sample(images.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.squeeze(1).clamp_(0, 1)


def _chunk(source: torch.Tensor, chunk: int, rows: int, seed: int, distortion: str, alpha: float, sigma: float,
           noise_std: float) -> np.ndarray:
    g = torch.Generator().manual_seed(seed * 1_000_003 + chunk)
    picks = torch.randint(source.shape[0], (rows,), generator=g)
    images = source[picks]
    if distortion == "elastic":
        images = elastic_distort(images.reshape(rows, 28, 28), alpha=alpha, sigma=sigma, generator=g).reshape(rows, -1)
    else:
        images = (images + noise_std * torch.randn(images.shape, generator=g)).clamp_(0, 1)
    return (images * 255).round_().to(torch.uint8).numpy()


def write_distorted_mnist(path: str | os.PathLike, rows: int, *, distortion: str = "elastic", seed: int = 0,
                          alpha: float = 34.0, sigma: float = 4.0, noise_std: float = 0.1, progress: bool = True,
                          source: torch.Tensor | None = None) -> Path:
    """Writes ``rows`` distorted MNIST training images to ``path`` (``.npy``, uint8 ``[rows, 784]``;
    ``MemmapDataset(path, scale=1/255)`` reads it back). The file appears under its name only
    once complete; until then it is ``path.partial`` with a ``path.partial.json`` that records the
    chunks written, from which a new call with the same arguments resumes.

    ``source``: the images to distort (``[n, 784]`` in [0, 1]; default MNIST's 50,000 training
    images)."""
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"write_distorted_mnist: the file must end in .npy, got {path}")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"write_distorted_mnist: rows must be a positive integer, got {rows!r}")
    if distortion not in ("elastic", "noise"):
        raise ValueError(f"write_distorted_mnist: distortion must be 'elastic' or 'noise', got {distortion!r}")
    if not (sigma > 0 and alpha >= 0 and noise_std >= 0):
        raise ValueError(f"write_distorted_mnist: sigma must be > 0, alpha and noise_std >= 0, got sigma={sigma}, "
                         f"alpha={alpha}, noise_std={noise_std}")
    if source is None:
        from .mnist import load_mnist

        source, _ = load_mnist("train")
    if source.dim() != 2 or source.shape[1] != 784:
        raise ValueError(f"write_distorted_mnist: source must be [n, 784], got {list(source.shape)}")
    partial, journal = path.with_name(path.name + ".partial"), path.with_name(path.name + ".partial.json")
    settings = {"rows": rows, "distortion": distortion, "seed": seed, "alpha": alpha, "sigma": sigma,
                "noise_std": noise_std, "source_rows": int(source.shape[0])}
    done = 0
    if partial.exists() and journal.exists():
        saved = json.loads(journal.read_text())
        if saved.get("settings") == settings:
            done = int(saved["chunks_done"])
    if done == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(rows, 784)).flush()
    out = np.lib.format.open_memmap(partial, mode="r+")
    if out.shape != (rows, 784) or out.dtype != np.uint8:
        raise RuntimeError(f"{partial} does not hold [{rows}, 784] uint8 rows; delete it and {journal} to start over")
    chunks = math.ceil(rows / CHUNK_ROWS)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=rows, initial=min(rows, done * CHUNK_ROWS), unit="rows", unit_scale=True, desc=path.name)
    try:
        for chunk in range(done, chunks):
            start = chunk * CHUNK_ROWS
            n = min(CHUNK_ROWS, rows - start)
            out[start:start + n] = _chunk(source, chunk, n, seed, distortion, alpha, sigma, noise_std)
            if chunk % 10 == 9 or chunk == chunks - 1:  # the journal never runs ahead of the bytes on disk
                out.flush()
                with atomic_write(journal, "w") as f:
                    json.dump({"settings": settings, "chunks_done": chunk + 1}, f)
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    del out
    os.replace(partial, path)
    journal.unlink()
    return path
