"""Data-parallel RBM training on torch.distributed (gloo, CPU), one thread per process: an
epoch of CD-1 over `ROWS` rows in one process and in a group of two, and the all-reduce of one
update's gradients.

``epoch`` (SGD with momentum 0.5 and weight decay, batches of ``batch`` rows per process):

  dgm_fast             fit_rbm in a group of two processes: each trains on its half of the rows
                       and every update averages both gradients (global batch 2 x batch), so the
                       epoch takes half as many updates; each call, like any fit, starts by
                       broadcasting rank 0's parameters (in training: once per run)
  dgm_fast, 1 process  fit_rbm with no process group over all the rows (each epoch one native call)
  eager+DDP            the usual plain-PyTorch form, in a group of two: a free-energy loss whose
                       gradient is the CD-1 gradient, wrapped in DistributedDataParallel (which
                       all-reduces in buckets while backward runs), torch's SGD step
``all_reduce`` (one update's gradients, weight and both biases, between the two processes):

  dgm_fast                     dgm_fast.train.distributed.all_reduce_mean_, the call fit makes
  torch all_reduce per tensor  an all_reduce and a divide per tensor, one after the other

The second process is started for each case (``_data_parallel.py``), and both put their
parameters back to the same start before every call, untimed. Rows per second: ROWS over the
epoch's time. The 2-process dgm_fast epoch records in ``extra_info`` the share of its time spent in
``all_reduce_mean_`` (waiting for the other process included). Both processes share this
machine's cores: with two cores the 2-process run uses both, the 1-process run one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from dgm_fast.bench import _data_parallel as dp
from dgm_fast.bench._common import size_id

QUICK = [(20, 64, 100)]
FULL = [(20, 64, 100), (100, 784, 500)]
# Timed calls, --quick or not: an epoch takes 4 to 100 ms, an all-reduce 0.3 to 4 ms.
ROUNDS = {dp.EPOCH: {True: 3, False: 10}, dp.ALL_REDUCE: {True: 10, False: 50}}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Pair:
    """This process as rank 0 of a gloo group of two, and the peer process as rank 1, making the
    same calls of one case."""

    def __init__(self, op: str, impl: str, size):
        store = dist.TCPStore("127.0.0.1", 0, world_size=2, is_master=True, timeout=dp.TIMEOUT,
                              wait_for_workers=False)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.peer = subprocess.Popen(
            [sys.executable, "-m", "dgm_fast.bench._data_parallel", "--port", str(store.port), "--op", op,
             "--impl", impl, "--size", *map(str, size)], env=env)
        dp.join(store.port, rank=0, store=store)
        self.case = dp.Case(op, impl, size)

    def setup(self) -> None:
        dp.word(1)
        self.case.restart()

    def close(self, ok: bool) -> None:
        if ok:
            dp.word(0)
            dp.leave(self.case)
        else:  # the peer may be inside a collective this process will never join: no barrier
            self.peer.kill()
            self.case.__dict__.clear()
            dist.destroy_process_group()
        self.peer.wait(timeout=60)
        if ok and self.peer.returncode != 0:
            raise RuntimeError(f"the benchmark's second process failed (exit code {self.peer.returncode})")


def _selected(size, setting):
    if setting.device.type != "cpu":
        pytest.skip("data-parallel cases: CPU and gloo only (on GPUs run `torchrun -m dgm_fast train` with NCCL)")
    if size not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")


def _run_pair(op, impl, size, setting, measure, group) -> float:
    """Times one case's calls on this process, rank 0, with the peer making the same calls;
    returns the share of their time spent in ``all_reduce_mean_`` (the warm-up call included)."""
    pair, ok = Pair(op, impl, size), False
    try:
        with pair.case.timing_all_reduce():
            measure(group, impl, pair.case.timed_call, setup=pair.setup, rounds=ROUNDS[op][setting.quick])
        ok = True
        return pair.case.reduce_seconds / pair.case.call_seconds
    finally:
        pair.close(ok)


@pytest.mark.parametrize("impl", dp.IMPLS[dp.EPOCH])
@pytest.mark.parametrize("size", FULL, ids=size_id)
def test_epoch(size, impl, setting, measure, one_thread, benchmark):
    _selected(size, setting)
    group = f"data_parallel fit_rbm(CD-1, {dp.ROWS} rows) {size_id(size)}"
    if impl == dp.DGM_FAST_ONE:
        assert not dist.is_initialized(), "a process group was left over from another case"
        case = dp.Case(dp.EPOCH, impl, size)
        measure(group, impl, case.call, setup=case.restart, rounds=ROUNDS[dp.EPOCH][setting.quick])
        return
    share = _run_pair(dp.EPOCH, impl, size, setting, measure, group)
    if impl == dp.DGM_FAST:
        benchmark.extra_info["all_reduce_share"] = share


@pytest.mark.parametrize("impl", dp.IMPLS[dp.ALL_REDUCE])
@pytest.mark.parametrize("size", FULL, ids=size_id)
def test_all_reduce(size, impl, setting, measure, one_thread):
    _selected(size, setting)
    _run_pair(dp.ALL_REDUCE, impl, size, setting, measure, f"data_parallel all_reduce(gradients) {size_id(size)}")
