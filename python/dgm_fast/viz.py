"""Pictures of models and runs, drawn with matplotlib: sample grids and training curves.

matplotlib comes with the ``plots`` extra (``pip install "dgm_fast[plots]"``). Figures are built
with matplotlib's object-oriented API (no pyplot, no global backend state) and written to PNG
atomically.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence

import torch

from ._io import atomic_write

__all__ = ["MISSING_MATPLOTLIB", "figure", "image_grid", "save_curves", "save_figure", "save_image_grid"]

MISSING_MATPLOTLIB = (
    "dgm_fast draws its plots with matplotlib, which is not installed: "
    'pip install "dgm_fast[plots]" (or pip install matplotlib)'
)


def figure(**kwargs):
    """A matplotlib ``Figure`` (no pyplot state), with a clear error when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc
    return Figure(**kwargs)


def save_figure(fig, path: str | os.PathLike) -> None:
    """Writes ``fig`` as a PNG at ``path``, atomically."""
    with atomic_write(path) as f:
        fig.savefig(f, format="png")


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1, pad_value: float = 0.5) -> torch.Tensor:
    """Tiles ``[N, H, W]`` images into one ``[rows * (H + pad) + pad, nrow * (W + pad) + pad]``
    image, row by row, with ``pad`` pixels of ``pad_value`` between them."""
    if images.dim() != 3:
        raise ValueError(f"image_grid: expected [N, H, W] images, got shape {list(images.shape)}")
    n, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    padded = torch.full((rows * nrow, h + pad, w + pad), pad_value, dtype=images.dtype)
    padded[:n, :h, :w] = images
    grid = padded.reshape(rows, nrow, h + pad, w + pad).permute(0, 2, 1, 3).reshape(rows * (h + pad), nrow * (w + pad))
    return torch.nn.functional.pad(grid, (pad, 0, pad, 0), value=pad_value)


def save_image_grid(path: str | os.PathLike, images: torch.Tensor, *, nrow: int | None = None,
                    title: str | None = None, pixel_inches: float = 0.08, dpi: int = 100) -> None:
    """Writes ``[N, H, W]`` grey images with values in [0, 1] (0 black, 1 white) as one PNG grid,
    each pixel a sharp square, with an optional title."""
    images = images.detach().float().cpu()
    if images.dim() != 3:
        raise ValueError(f"save_image_grid: expected [N, H, W] images, got shape {list(images.shape)}")
    if not torch.isfinite(images).all():
        raise ValueError("save_image_grid: the images contain NaN or Inf")
    grid = image_grid(images.clamp(0, 1), nrow)
    height, width = grid.shape
    top = 0.35 if title else 0.0  # inches for the title
    fig = figure(figsize=(width * pixel_inches, height * pixel_inches + top), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, height * pixel_inches / (height * pixel_inches + top)))
    ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 * top / (height * pixel_inches + top))
    save_figure(fig, path)


def save_curves(path: str | os.PathLike, history: Sequence[Mapping], panels: Sequence[Mapping], *,
                x: str = "epoch", xlabel: str = "epoch", title: str | None = None) -> None:
    """Writes training curves as one PNG: one panel per entry of ``panels``, stacked, sharing the
    x axis (``history[i][x]``).

    Each panel is ``{"ylabel": ..., "series": {legend label: history key}}``, optionally with
    ``"bands": {legend label: (lower key, upper key)}`` (shaded, e.g. an estimate's +-3 sigma) and
    ``"yscale": "log"``. A series is drawn at the records that hold its key (an evaluation every
    few epochs is one line through its points); one that no record holds is left out, and a panel
    with nothing to draw too. Non-finite values leave gaps.
    """

    def points(*keys):
        rows = [r for r in history if all(k in r and r[k] is not None for k in keys)]
        return [r[x] for r in rows], *([float(r[k]) for r in rows] for k in keys)

    drawn = []
    for panel in panels:
        series = {label: points(key) for label, key in panel["series"].items()}
        series = {label: xy for label, xy in series.items() if xy[0]}
        bands = {label: points(lo, hi) for label, (lo, hi) in panel.get("bands", {}).items()}
        bands = {label: xyz for label, xyz in bands.items() if xyz[0]}
        if series or bands:
            drawn.append((panel, series, bands))
    if not drawn:
        raise ValueError("save_curves: none of the panels' series is in the history")
    fig = figure(figsize=(6.4, 1.2 + 2.2 * len(drawn)), dpi=120, layout="constrained")
    axes = fig.subplots(len(drawn), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (panel, series, bands) in zip(axes, drawn):
        for label, (xs, lo, hi) in bands.items():
            ax.fill_between(xs, lo, hi, alpha=0.25, linewidth=0, label=label)
        for label, (xs, ys) in series.items():
            ax.plot(xs, ys, marker="o" if len(xs) <= 40 else None, markersize=3, linewidth=1.6, label=label)
        ax.set_ylabel(panel["ylabel"])
        if panel.get("yscale"):
            ax.set_yscale(panel["yscale"])
        ax.grid(True, alpha=0.3)
        if len(series) + len(bands) > 1:
            ax.legend(frameon=False)
    axes[-1].set_xlabel(xlabel)
    if title:  # wrapped to the figure's width: a long one ran off both edges
        fig.suptitle("\n".join(textwrap.wrap(title, 64)), fontsize=11)
    save_figure(fig, path)
