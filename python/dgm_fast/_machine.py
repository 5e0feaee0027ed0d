"""The machine a measurement ran on, in the words results tables use."""

from __future__ import annotations

import platform

import torch


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: str | torch.device = "cpu") -> str:
    """``"<CPU model>, <n> threads[, <GPU>]; torch <version>"``."""
    gpu = f", {torch.cuda.get_device_name()}" if torch.device(device).type == "cuda" else ""
    return f"{cpu_model()}, {torch.get_num_threads()} threads{gpu}; torch {torch.__version__}"
