"""Helmholtz machines: a sigmoid belief net and its recognition model (:mod:`.model`), trained by
wake-sleep, reweighted wake-sleep or NVIL (:mod:`.train`)."""

from .model import HelmholtzMachine
from .train import ALGORITHMS, NVILBaseline, fit_helmholtz, nvil_loss, rws_loss, wake_sleep_loss

__all__ = ["ALGORITHMS", "HelmholtzMachine", "NVILBaseline", "fit_helmholtz", "nvil_loss", "rws_loss",
           "wake_sleep_loss"]
