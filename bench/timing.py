"""Timing helpers of the scripts in bench/ (run as `python bench/<script>.py`); the packaged suite
(`dgm-fast bench`) times with pytest-benchmark instead."""

from __future__ import annotations

import torch
from torch.utils.benchmark import Timer


def time_fn(fn, args, min_run_time: float, warmup: int = 1) -> float:
    """Median seconds per call of ``fn(*args)`` after ``warmup`` calls (and compilation)."""
    for _ in range(warmup):
        fn(*args)
    # Timer runs its statement with num_threads=1 unless told otherwise: time on all of torch's
    # threads, as the user's code (and numpy's BLAS in scikit-learn) would run.
    timer = Timer("fn(*args)", globals={"fn": fn, "args": args}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def print_header(device: torch.device) -> None:
    """The machine, date and versions a benchmark table was measured with."""
    import datetime
    import platform

    import dgm_fast

    info = dgm_fast.build_info()
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else None
    print(f"date: {datetime.date.today()}  machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads{', ' + gpu if gpu else ''}")
    print(f"torch {torch.__version__}, dgm_fast {info['version']} (cpu_isa={info['cpu_isa']}, "
          f"cuda kernels={info['cuda']})\n")
