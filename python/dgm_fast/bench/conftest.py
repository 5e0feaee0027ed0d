"""The benchmark suite's pytest plumbing (run it with ``dgm-fast bench``; docs in ``__init__.py``).

Each benchmark case is one family x operation x size x implementation. A case's implementations
share a pytest-benchmark group (``"rbm cd_step 100x784x500 cpu"``), so pytest-benchmark prints
them side by side. Each carries ``extra_info``: ``impl``, and after the run ``dgm_fast_speedup``,
the implementation's median over dgm_fast's median, in the saved JSON. Every saved run also
records the machine: CPU model and ISA, threads, GPU, torch and CUDA versions, and dgm_fast's
build info.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import dgm_fast
from dgm_fast._machine import cpu_model
from dgm_fast.bench.report import format_time


def pytest_addoption(parser):
    group = parser.getgroup("dgm_fast")
    group.addoption("--dgm-device", default="cpu", choices=["cpu", "cuda"], help="device to benchmark on")
    group.addoption("--dgm-quick", action="store_true", help="the small sizes only")
    group.addoption("--dgm-command", default="", help="the dgm-fast bench command line, kept in saved runs")


@dataclass
class Setting:
    device: torch.device
    quick: bool


@pytest.fixture(scope="session")
def setting(request) -> Setting:
    device = torch.device(request.config.getoption("--dgm-device"))
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.exit("--device cuda: no GPU is available to torch", returncode=2)
    if device.type == "cuda" and not dgm_fast.build_info()["cuda"]:
        pytest.exit("--device cuda: this build of dgm_fast has no CUDA kernels", returncode=2)
    return Setting(device, request.config.getoption("--dgm-quick"))


# (group, impl) -> median seconds, for the summary printed at the end.
_medians: dict[tuple[str, str], float] = {}


@pytest.fixture
def measure(benchmark, setting):
    """``measure(group, impl, fn, *args, warmup=1, setup=None, rounds=None)``: times
    ``fn(*args)`` as one case.

    ``warmup`` untimed calls come first (torch.compile compiles, a CUDA graph is captured, an
    optimizer creates its momentum buffers). ``setup=``, ``rounds=``: ``setup()`` runs, untimed,
    before every call, warm-up ones too, and the case makes exactly ``warmup + rounds`` calls
    (pytest-benchmark's pedantic mode; the data-parallel family's second process makes each call
    with this one). On CUDA each timed call ends with a synchronize, so the time is the work's,
    not the launch's.
    """

    def run(group: str, impl: str, fn, *args, warmup: int = 1, setup=None, rounds: int | None = None):
        for _ in range(warmup):
            if setup is not None:
                setup()
            fn(*args)
        if setting.device.type == "cuda":
            torch.cuda.synchronize()

            def timed(*a):
                out = fn(*a)
                torch.cuda.synchronize()
                return out
        else:
            timed = fn
        benchmark.group = f"{group} {setting.device.type}"
        benchmark.extra_info["impl"] = impl
        if setup is None:
            benchmark(timed, *args)
        else:
            benchmark.pedantic(timed, args=args, setup=setup, rounds=rounds)
        if benchmark.stats is not None:  # None under --benchmark-disable (smoke runs)
            _medians[(benchmark.group, impl)] = benchmark.stats.stats.median

    return run


def pytest_benchmark_update_machine_info(config, machine_info):
    info = dgm_fast.build_info()
    machine_info["dgm_fast"] = {k: v for k, v in info.items() if k != "parallel_backend"}
    machine_info["cpu_model"] = cpu_model()
    machine_info["torch"] = torch.__version__
    machine_info["torch_cuda"] = torch.version.cuda
    machine_info["threads"] = torch.get_num_threads()
    machine_info["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    machine_info["dgm_fast_bench_command"] = config.getoption("--dgm-command") or "pytest (dgm_fast/bench)"


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Puts each implementation's median over dgm_fast's (same group) into its extra_info."""
    dgm = {b["group"]: b["stats"]["median"]
           for b in output_json["benchmarks"] if b["extra_info"].get("impl") == "dgm_fast"}
    for b in output_json["benchmarks"]:
        if b["group"] in dgm:
            b["extra_info"]["dgm_fast_speedup"] = b["stats"]["median"] / dgm[b["group"]]


def pytest_terminal_summary(terminalreporter):
    if not _medians:
        return
    tr = terminalreporter
    tr.section("dgm_fast: median per call, and that median over dgm_fast's (above 1: dgm_fast is faster)")
    groups: dict[str, dict[str, float]] = {}
    for (group, impl), median in _medians.items():
        groups.setdefault(group, {})[impl] = median
    width = max(map(len, groups))
    for group, impls in groups.items():
        ref = impls.get("dgm_fast")
        cells = []
        for impl, median in impls.items():
            cell = f"{impl} {format_time(median)}"
            if ref and impl != "dgm_fast":
                cell += f" ({median / ref:.2f}x)"
            cells.append(cell)
        tr.write_line(f"{group:<{width}}  " + " | ".join(cells))
