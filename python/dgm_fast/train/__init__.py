"""Training machinery shared by every model: atomic checkpoints (and, next, the one training loop).

A model's own algorithms live with it (:mod:`dgm_fast.models.rbm` for CD, PCD, FPCD and PT).
"""

from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["load_checkpoint", "save_checkpoint"]
