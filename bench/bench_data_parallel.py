"""Data-parallel RBM training on this machine: 1 and 2 processes, one thread each, and the share
of each update spent in the gradient all-reduce.

    python bench/bench_data_parallel.py [--updates 300] [--json bench/runs/data-parallel.json]

For each size (784-500 with batches of 100, MNIST's; 64-100 with batches of 20, the digits'),
CD-1 through ``fit_rbm`` with SGD (momentum 0.5) on random binary rows, three ways:

  1 process            ``fit_rbm`` plainly: no process group, each epoch one native call
  torchrun, 1 process  a process group of one: the data-parallel path (an update per call, the
                       all-reduce hook, which has nothing to exchange)
  torchrun, 2 processes  the same, each process with its own shard and batches; an update
                       averages both gradients, so it covers 2 x batch rows

Each process runs ``torch.set_num_threads(1)`` (two cores: no oversubscription). Rows per second
are the rows of all processes over the wall time of the slowest process; the all-reduce share
is the time inside ``dgm_fast.train.distributed.all_reduce_mean_`` (timed by wrapping it) over
the training time, on rank 0 (waiting for the slower process included); last, the same
all-reduce alone, 200 times, for its cost without training around it. Process start-up, data creation and the first epoch's warm-up
updates are not timed: each run trains ``--updates`` updates after 20 untimed ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

SIZES = [(784, 500, 100), (64, 100, 20)]
WARMUP = 20


def isolated_all_reduce(args) -> None:
    """The all-reduce of one update's gradients (784 x 500 + 784 + 500 floats) alone, 200 times."""
    from dgm_fast.train import distributed

    torch.set_num_threads(1)
    distributed.init_from_env("cpu", timeout_s=120)
    grads = [torch.randn(784, 500), torch.randn(784), torch.randn(500)]
    for _ in range(20):
        distributed.all_reduce_mean_(grads)
    torch.distributed.barrier()
    start = time.perf_counter()
    for _ in range(200):
        distributed.all_reduce_mean_(grads)
    seconds = (time.perf_counter() - start) / 200
    if distributed.rank() == 0:
        Path(args.result).write_text(json.dumps({"all_reduce_ms": 1000 * seconds,
                                                 "gigabytes_per_second": 4 * sum(g.numel() for g in grads) / seconds / 1e9}))
    distributed.shutdown()


def worker(args) -> None:
    from dgm_fast.models.rbm import RBM, fit_rbm
    from dgm_fast.train import distributed

    torch.set_num_threads(1)
    distributed.init_from_env("cpu", timeout_s=120)
    ranks, rank = distributed.world_size(), distributed.rank()
    nv, nh, batch = args.size
    rows = (args.updates + WARMUP) * batch * ranks
    data = torch.bernoulli(torch.full((rows, nv), 0.3), generator=torch.Generator().manual_seed(0))
    rbm = RBM(nv, nh, generator=torch.Generator().manual_seed(1))
    reduce_seconds = [0.0]
    original = distributed.all_reduce_mean_

    def timed(tensors):
        start = time.perf_counter()
        original(tensors)
        reduce_seconds[0] += time.perf_counter() - start

    distributed.all_reduce_mean_ = timed
    clock = {}

    def eval_fn(model, epoch):
        return {}

    # the warm-up updates, then the timed ones: two calls over the same rows' shards
    fit_rbm(rbm, data[:WARMUP * batch * ranks], epochs=1, batch_size=batch, lr=0.01, momentum=0.5,
            progress=False, generator=torch.Generator().manual_seed(2))
    reduce_seconds[0] = 0.0
    if distributed.is_distributed():
        torch.distributed.barrier()
    start = time.perf_counter()
    fit_rbm(rbm, data[WARMUP * batch * ranks:], epochs=1, batch_size=batch, lr=0.01, momentum=0.5,
            progress=False, generator=torch.Generator().manual_seed(3))
    clock["train"] = time.perf_counter() - start
    clock["all_reduce"] = reduce_seconds[0]
    times = distributed.gather_objects(clock)
    if rank == 0:
        slowest = max(t["train"] for t in times)
        result = {"processes": ranks, "rows_per_second": args.updates * batch * ranks / slowest,
                  "update_ms": 1000 * slowest / args.updates,
                  "all_reduce_ms": 1000 * times[0]["all_reduce"] / args.updates,
                  "all_reduce_share": times[0]["all_reduce"] / times[0]["train"]}
        Path(args.result).write_text(json.dumps(result))
    distributed.shutdown()


def launch(size, processes: int | None, updates: int, result: Path) -> dict:
    """One run; ``size`` None: the isolated all-reduce."""
    mode = ["--worker", "--size", *map(str, size)] if size else ["--all-reduce"]
    script = [str(Path(__file__).resolve()), *mode, "--updates", str(updates), "--result", str(result)]
    if processes is None:
        command = [sys.executable, *script]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                   *script]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-4000:])
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--all-reduce", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker or args.all_reduce:
        (worker if args.worker else isolated_all_reduce)(args)
        return
    from dgm_fast._machine import describe

    print(f"{describe()}; {time.strftime('%Y-%m-%d')}; `python bench/bench_data_parallel.py --updates {args.updates}`")
    print("\n| RBM, batch per process | run | rows / s | per update (ms) | all-reduce per update (ms) | all-reduce share |")
    print("|---|---|---|---|---|---|")
    results = []
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"dgm_fast_dp_{os.getpid()}.json"
    for size in SIZES:
        for label, processes in (("1 process", None), ("torchrun, 1 process", 1), ("torchrun, 2 processes", 2)):
            r = launch(size, processes, args.updates, scratch)
            r.update({"size": size, "run": label})
            results.append(r)
            reduce = "—" if processes is None else f"{r['all_reduce_ms']:.3f}"
            share = "—" if processes is None else f"{100 * r['all_reduce_share']:.1f} %"
            print(f"| {size[0]}-{size[1]}, {size[2]} | {label} | {r['rows_per_second']:,.0f} | {r['update_ms']:.2f} | "
                  f"{reduce} | {share} |", flush=True)
    alone = launch(None, 2, args.updates, scratch)
    print(f"\nThe all-reduce of one 784-500 update's gradients alone (2 processes, 200 times): "
          f"{alone['all_reduce_ms']:.3f} ms, {alone['gigabytes_per_second']:.2f} GB/s of gradient")
    scratch.unlink(missing_ok=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": describe(), "date": time.strftime("%Y-%m-%d"),
                                         "updates": args.updates, "results": results, "all_reduce_alone": alone},
                                        indent=2))


if __name__ == "__main__":
    main()
