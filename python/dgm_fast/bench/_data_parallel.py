"""The two sides of the data-parallel family (bench_data_parallel.py): the calls that both ranks
of a gloo group of two make, and the peer process that makes them as rank 1.

The benchmark's own process is rank 0. For each case it starts the peer,

    python -m dgm_fast.bench._data_parallel --port PORT --op OP --impl IMPL --size BATCH VISIBLE HIDDEN

which joins the group through rank 0's TCPStore on 127.0.0.1. Before every call, in the
benchmark's untimed setup, rank 0 broadcasts one word (1: make the next call, 0: leave) and both
ranks put the parameters back to their starting values, so that every timed call is the same
work (see bench_dbn.py on the subnormal slow-down of weights trained on and on). The timed call
is the call alone, on both ranks at once, the slower one setting the pace through the
collectives.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from datetime import timedelta

import torch
import torch.distributed as dist

from dgm_fast.bench.bench_rbm import binary_batch
from dgm_fast.models.rbm import RBM, fit_rbm
from dgm_fast.train import distributed

ROWS = 2000  # per epoch, over all ranks
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.5, 1e-4
TIMEOUT = timedelta(seconds=60)

# The operations and their implementations (in a group of two processes unless named otherwise).
EPOCH, ALL_REDUCE = "epoch", "all_reduce"
DGM_FAST, DGM_FAST_ONE, EAGER_DDP = "dgm_fast", "dgm_fast, 1 process", "eager+DDP"
PER_TENSOR = "torch all_reduce per tensor"
IMPLS = {EPOCH: (DGM_FAST, DGM_FAST_ONE, EAGER_DDP), ALL_REDUCE: (DGM_FAST, PER_TENSOR)}


class FreeEnergyRBM(torch.nn.Module):
    """CD-1 as a PyTorch user writes it for ``DistributedDataParallel``: a loss whose gradient is
    the CD-1 gradient, the mean free energy of the data minus that of the one-step negatives
    (sampled without autograd), so that ``backward`` gives the gradients and DDP all-reduces
    them in buckets while backward runs."""

    def __init__(self, rbm: RBM):
        super().__init__()
        self.weight = torch.nn.Parameter(rbm.weight.detach().clone())
        self.visible_bias = torch.nn.Parameter(rbm.visible_bias.detach().clone())
        self.hidden_bias = torch.nn.Parameter(rbm.hidden_bias.detach().clone())

    def free_energy(self, v):
        return -(v @ self.visible_bias) - torch.nn.functional.softplus(torch.addmm(self.hidden_bias, v, self.weight)).sum(1)

    def forward(self, v):
        with torch.no_grad():
            h = torch.bernoulli(torch.sigmoid(torch.addmm(self.hidden_bias, v, self.weight)))
            negatives = torch.bernoulli(torch.sigmoid(torch.addmm(self.visible_bias, h, self.weight.t())))
        return self.free_energy(v).mean() - self.free_energy(negatives).mean()


class Case:
    """One implementation's call at one size, as either rank makes it: ``restart()`` (untimed)
    then ``call()`` (timed on rank 0)."""

    def __init__(self, op: str, impl: str, size: tuple[int, int, int]):
        self.op, self.impl, (self.batch, nv, nh) = op, impl, size
        self.data = binary_batch(ROWS, nv, "cpu", torch.Generator().manual_seed(1))
        self.rbm = RBM(nv, nh, generator=torch.Generator().manual_seed(2))
        self.call_seconds = 0.0  # in timed_call
        self.reduce_seconds = 0.0  # inside all_reduce_mean_ (see timing_all_reduce)
        if op == ALL_REDUCE:  # one update's gradients, different on each rank
            g = torch.Generator().manual_seed(3 + distributed.rank())
            self.grads = [torch.randn(nv, nh, generator=g), torch.randn(nv, generator=g), torch.randn(nh, generator=g)]
            self.params = self.grads
        elif impl == EAGER_DDP:
            self.module = FreeEnergyRBM(self.rbm)
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.module)  # collective: both ranks
            decay = [{"params": [self.module.weight], "weight_decay": WEIGHT_DECAY},
                     {"params": [self.module.visible_bias, self.module.hidden_bias], "weight_decay": 0.0}]
            self.optimizer = torch.optim.SGD(decay, lr=LR, momentum=MOMENTUM)
            share = distributed.my_share(ROWS)
            self.batches = list(self.data[share].split(self.batch))
            self.params = list(self.module.parameters())
        else:
            self.params = [self.rbm.weight, self.rbm.visible_bias, self.rbm.hidden_bias]
        self.start = [p.detach().clone() for p in self.params]

    def restart(self) -> None:
        with torch.no_grad():
            for p, p0 in zip(self.params, self.start):
                p.copy_(p0)
        if self.impl == EAGER_DDP:
            self.optimizer.state.clear()  # fit_rbm's momentum also starts from zero every call

    def call(self) -> None:
        if self.op == ALL_REDUCE and self.impl == DGM_FAST:
            distributed.all_reduce_mean_(self.grads)
        elif self.op == ALL_REDUCE:
            for t in self.grads:
                dist.all_reduce(t)
                t.div_(2)
        elif self.impl in (DGM_FAST, DGM_FAST_ONE):
            # An epoch of fit_rbm: in a group it shards the rows, broadcasts rank 0's parameters
            # (once per call here; once per run in training) and averages every update's gradients.
            fit_rbm(self.rbm, self.data, epochs=1, batch_size=self.batch, lr=LR, momentum=MOMENTUM,
                    weight_decay=WEIGHT_DECAY, progress=False, generator=torch.Generator().manual_seed(4))
        elif self.impl == EAGER_DDP:
            for v in self.batches:
                loss = self.ddp(v)
                self.optimizer.zero_grad(set_to_none=False)
                loss.backward()
                self.optimizer.step()

    def timed_call(self) -> None:
        """``call``, its time added to ``call_seconds`` (for the all-reduce share)."""
        start = time.perf_counter()
        self.call()
        self.call_seconds += time.perf_counter() - start

    @contextlib.contextmanager
    def timing_all_reduce(self):
        """While it lasts, the time fit spends in ``all_reduce_mean_`` adds up in
        ``reduce_seconds`` (the gradient hook looks the function up at every call)."""
        original = distributed.all_reduce_mean_

        def timed(tensors):
            start = time.perf_counter()
            original(tensors)
            self.reduce_seconds += time.perf_counter() - start

        distributed.all_reduce_mean_ = timed
        try:
            yield
        finally:
            distributed.all_reduce_mean_ = original


def join(port: int, rank: int, store: dist.TCPStore | None = None) -> dist.TCPStore:
    """Joins (rank 1) or opens (rank 0, with its store) the gloo group of two."""
    if store is None:
        store = dist.TCPStore("127.0.0.1", port, world_size=2, is_master=False, timeout=TIMEOUT)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=2, timeout=TIMEOUT)
    return store


def word(value: int) -> int:
    """Rank 0's word to rank 1 (1: one more call, 0: leave), as rank 1 receives it."""
    w = torch.tensor([value], dtype=torch.int64)
    dist.broadcast(w, 0)
    return int(w.item())


def peer() -> None:
    parser = argparse.ArgumentParser(description="rank 1 of the data-parallel benchmark")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--op", choices=list(IMPLS), required=True)
    parser.add_argument("--impl", choices=sorted({i for impls in IMPLS.values() for i in impls}), required=True)
    parser.add_argument("--size", type=int, nargs=3, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread each: the two processes share two cores
    join(args.port, rank=1)
    case = Case(args.op, args.impl, tuple(args.size))
    while word(0):
        case.restart()
        case.call()
    leave(case)


def leave(case: Case) -> None:
    """Leaves the group once both processes are done. What holds the group
    (DistributedDataParallel does) must go first: a group destroyed while still referenced lives
    on into interpreter shutdown, and there gloo's threads abort the process about every other
    time ("terminate called without an active exception", seen with this benchmark)."""
    case.__dict__.clear()
    distributed.shutdown()


if __name__ == "__main__":
    peer()
