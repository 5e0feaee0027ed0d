"""PNG images without plotting dependencies: sample grids (and, later, training curves)."""

from __future__ import annotations

import math
import os
import struct
import zlib

import torch

from ._io import atomic_write


def write_png(path: str | os.PathLike, image: torch.Tensor) -> None:
    """Writes a ``[H, W]`` grey or ``[H, W, 3]`` RGB image with values in [0, 1] as PNG."""
    if image.dim() not in (2, 3) or (image.dim() == 3 and image.shape[2] != 3):
        raise ValueError(f"write_png: expected [H, W] or [H, W, 3], got {list(image.shape)}")
    if not torch.isfinite(image).all():
        raise ValueError("write_png: the image contains NaN or Inf")
    pixels = (image.detach().cpu().float().clamp(0, 1) * 255).round().to(torch.uint8)
    height, width = pixels.shape[:2]
    color_type = 0 if pixels.dim() == 2 else 2
    rows = pixels.reshape(height, -1).numpy()
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with atomic_write(path) as f:
        f.write(png)


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1, scale: int = 1) -> torch.Tensor:
    """Tiles ``[N, H, W]`` images with values in [0, 1] into one ``[H', W']`` image."""
    if images.dim() != 3:
        raise ValueError(f"image_grid: expected [N, H, W], got {list(images.shape)}")
    n, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    if scale > 1:
        images = images.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
        h, w = h * scale, w * scale
    grid = torch.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad), 0.5)
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = images[i]
    return grid
