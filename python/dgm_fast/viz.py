"""PNG images without plotting dependencies: sample grids and training curves."""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Mapping, Sequence

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


# ---------------------------------------------------------------------------------------------
# line charts

# A 3x5 bitmap font: five rows per glyph, top to bottom, each a 3-bit number (4 = left pixel).
# Letters are upper case only; lower case is drawn as upper case, unknown characters as blanks.
_FONT = dict(zip(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-+()/:,=_% ",
    "75557 26227 71747 71317 55711 74717 74757 71122 75757 75717 25755 65656 34443 65556 74647 "
    "74644 34553 55755 72227 11152 55655 44447 57755 65555 25552 65644 25563 65655 34216 72222 "
    "55557 55552 55775 55255 55222 71247 00002 00700 02720 12221 42224 11244 02020 00024 07070 "
    "00007 41241 00000".split(),
))


def _text(image: torch.Tensor, text: str, x: int, y: int, color, scale: int = 2, anchor: str = "left",
          rotate: bool = False) -> None:
    """Draws ``text`` into an ``[H, W, 3]`` image. ``(x, y)``: top-left corner (``anchor``
    "left"), top centre ("center") or top-right ("right") of the text box; with ``rotate`` the
    text runs bottom to top and ``(x, y)`` is the left edge of its centre."""
    rows = []
    for ch in text.upper():
        code = _FONT.get(ch, "00000")
        rows.append([[(int(r) >> (2 - c)) & 1 for c in range(3)] + [0] for r in code])
    if not rows:
        return
    bitmap = torch.tensor(rows, dtype=torch.bool).permute(1, 0, 2).reshape(5, -1)[:, :-1]  # [5, 4n-1]
    bitmap = bitmap.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    if rotate:
        bitmap = torch.rot90(bitmap, 1, (0, 1))
        y -= bitmap.shape[0] // 2
    elif anchor == "center":
        x -= bitmap.shape[1] // 2
    elif anchor == "right":
        x -= bitmap.shape[1]
    h, w = bitmap.shape
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + h, image.shape[0]), min(x + w, image.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    mask = bitmap[y0 - y : y1 - y, x0 - x : x1 - x]
    image[y0:y1, x0:x1][mask] = torch.tensor(color, dtype=image.dtype)


def _nice_ticks(lo: float, hi: float, target: int = 5) -> tuple[list[float], int]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering ``[lo, hi]``, and
    the number of decimals their labels need."""
    if not hi > lo:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [i * step for i in range(first, last + 1)], decimals


def _line(image: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, color, width: int = 2) -> None:
    """A polyline through the pixel coordinates ``(xs, ys)``, ``width`` pixels thick."""
    points = []
    for i in range(len(xs) - 1):
        n = int(max(abs(xs[i + 1] - xs[i]), abs(ys[i + 1] - ys[i])) * 2) + 2
        t = torch.linspace(0, 1, n)
        points.append(torch.stack([xs[i] + t * (xs[i + 1] - xs[i]), ys[i] + t * (ys[i + 1] - ys[i])], 1))
    if not points:
        points.append(torch.stack([xs, ys], 1))
    px = torch.cat(points).round().long()
    color = torch.tensor(color, dtype=image.dtype)
    for dy in range(-(width // 2), width - width // 2):
        for dx in range(-(width // 2), width - width // 2):
            x = (px[:, 0] + dx).clamp(0, image.shape[1] - 1)
            y = (px[:, 1] + dy).clamp(0, image.shape[0] - 1)
            image[y, x] = color


_COLORS = [(0.12, 0.40, 0.75), (0.90, 0.42, 0.05)]


def line_chart(
    series: Mapping[str, Sequence[float]],
    x: Sequence[float] | None = None,
    *,
    xlabel: str = "epoch",
    title: str | None = None,
    width: int = 640,
    height: int = 400,
) -> torch.Tensor:
    """Draws one or two series against ``x`` (default 1, 2, ..., n) as an ``[H, W, 3]`` RGB
    image with values in [0, 1]: axes with tick marks and round-valued labels, a light grid and
    the series' names along their axes. The first series uses the left axis (blue); a second
    one gets its own scale on the right axis (orange). NaN and Inf values are left out."""
    items = [(str(name), torch.as_tensor(list(ys), dtype=torch.float64)) for name, ys in series.items()]
    if not 1 <= len(items) <= 2:
        raise ValueError(f"line_chart: expected one or two series, got {len(items)}")
    n = len(items[0][1])
    if n == 0 or any(len(ys) != n for _, ys in items):
        raise ValueError("line_chart: the series must be non-empty and of the same length")
    xs = torch.arange(1, n + 1, dtype=torch.float64) if x is None else torch.as_tensor(list(x), dtype=torch.float64)
    if len(xs) != n:
        raise ValueError(f"line_chart: x has {len(xs)} values but the series {n}")

    scale, glyph_w = 2, 8  # font scale; advance per character in pixels
    axes = []  # per series: (ticks, labels, colour)
    for i, (name, ys) in enumerate(items):
        finite = ys[torch.isfinite(ys)]
        ticks, dec = _nice_ticks(*((float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)))
        axes.append((ticks, [f"{t:.{dec}f}" for t in ticks], _COLORS[i] if len(items) == 2 else (0.0, 0.0, 0.0)))
    # margin: tick (5) + gap (4) + labels + gap (14) + rotated name (10) + edge (8)
    margins = [41 + max(len(label) for label in labels) * glyph_w for _, labels, _ in axes]
    left, right = margins[0], (margins[1] if len(items) == 2 else 24)
    top, bottom = (40 if title else 20), 56
    plot_w, plot_h = width - left - right, height - top - bottom
    if plot_w < 40 or plot_h < 40:
        raise ValueError(f"line_chart: {width}x{height} is too small for these labels")
    x0, y0, x1, y1 = left, top, left + plot_w, top + plot_h  # plot box; y grows downwards
    black, light = torch.tensor((0.0, 0.0, 0.0)), torch.tensor((0.9, 0.9, 0.9))
    image = torch.ones(height, width, 3)

    xticks, xdec = _nice_ticks(float(xs.min()), float(xs.max()), target=min(8, max(n - 1, 1)))
    to_px = lambda v: x0 + (v - xticks[0]) / (xticks[-1] - xticks[0]) * plot_w  # noqa: E731
    for t in xticks:
        px = round(to_px(t))
        image[y0:y1, px] = light
        image[y1 : y1 + 5, px] = black
        _text(image, f"{t:.{xdec}f}", px, y1 + 9, (0, 0, 0), scale, "center")
    _text(image, xlabel, (x0 + x1) // 2, height - 18, (0, 0, 0), scale, "center")
    to_py = []
    for i, ((name, _), (ticks, labels, color)) in enumerate(zip(items, axes)):
        to_py.append(lambda v, lo=ticks[0], hi=ticks[-1]: y1 - (v - lo) / (hi - lo) * plot_h)
        for t, label in zip(ticks, labels):
            py = round(to_py[i](t))
            if i == 0:
                image[py, x0:x1] = light
                image[py, x0 - 5 : x0] = black
                _text(image, label, x0 - 9, py - 5, color, scale, "right")
            else:
                image[py, x1 : x1 + 5] = black
                _text(image, label, x1 + 9, py - 5, color, scale, "left")
        _text(image, name, 8 if i == 0 else width - 18, (y0 + y1) // 2, color, scale, rotate=True)
    image[y0 : y1 + 1, x0] = image[y1, x0 : x1 + 1] = black  # axes, and a frame
    image[y0 : y1 + 1, x1] = black if len(items) == 2 else torch.tensor((0.5, 0.5, 0.5))
    image[y0, x0 : x1 + 1] = torch.tensor((0.5, 0.5, 0.5))
    if title:
        _text(image, title, width // 2, 12, (0, 0, 0), scale, "center")

    for i, (_, ys) in enumerate(items):
        keep = torch.isfinite(ys)
        px, py = to_px(xs[keep]).float(), to_py[i](ys[keep]).float()
        if len(px):
            _line(image, px, py, _COLORS[i])
        if n <= 60 or len(px) == 1:  # markers at the data points
            for a, b in zip(px.round().long().tolist(), py.round().long().tolist()):
                image[max(b - 2, 0) : b + 3, max(a - 2, 0) : a + 3] = torch.tensor(_COLORS[i])
    return image


def write_line_chart(path: str | os.PathLike, series: Mapping[str, Sequence[float]], x=None, **kwargs) -> None:
    """:func:`line_chart` written as a PNG (atomically)."""
    write_png(path, line_chart(series, x, **kwargs))
