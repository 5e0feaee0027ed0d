"""Training machinery shared by every model: :func:`fit`, the one training loop (batching,
epochs or updates, schedules, progress, evaluation, atomic checkpoints, bit-exact resume), and
the checkpoint files it writes.

A model's own algorithms live with it and plug into :func:`fit` with an update step
(:func:`dgm_fast.models.rbm.fit_rbm` for CD, PCD, FPCD and PT). Under ``torchrun`` the same
loop trains data-parallel across processes: :mod:`dgm_fast.train.distributed`.
"""

from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .loop import Stateful, fit, fused_adam, make_loader, make_schedule

__all__ = ["Stateful", "distributed", "fit", "fused_adam", "load_checkpoint", "make_loader", "make_schedule",
           "save_checkpoint"]
