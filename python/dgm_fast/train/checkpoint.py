"""Checkpoints: ``torch.save`` written atomically, read back without unpickling code."""

from __future__ import annotations

import os

import torch

from .._io import atomic_write

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """``torch.save`` through a temporary file and an atomic rename."""
    with atomic_write(path) as f:
        torch.save(state, f)


def load_checkpoint(path: str | os.PathLike) -> dict:
    try:
        # weights_only: a checkpoint holds tensors, numbers and dicts, nothing to unpickle
        # beyond them, so a tampered file cannot run code.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(
            f"could not read the checkpoint {path} ({exc}); it is corrupt or not a dgm_fast "
            "checkpoint. Delete it to start over, or pass resume=False."
        ) from exc
