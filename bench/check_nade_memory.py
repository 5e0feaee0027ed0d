"""Peak memory of NADE's forward + backward at Larochelle & Murray's MNIST size (batch 100,
D = 784, H = 500, float32), per implementation, each in a fresh process.

    python bench/check_nade_memory.py [--batch 100]

Each process builds the parameters and a batch, runs one small warm-up call, reads its peak
resident set (VmHWM), runs one forward + backward of the mean log-likelihood, and reports how much
the peak grew: the memory the implementation needs for the batch beyond its inputs (the warm-up
call on two rows has already paid for what does not grow with the batch, such as dgm_fast's
[D, H] float64 gradient accumulators). The implementations are the benchmark's (dgm_fast/bench/bench_nade.py): dgm_fast's op, the eager loop, the eager cumulative sum.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

IMPLS = ("dgm_fast", "eager loop", "eager cumsum")


def child(impl: str, batch: int) -> None:
    import torch

    from dgm_fast.bench.bench_nade import _data, _params, cumsum_log_prob, loop_log_prob
    from dgm_fast.ops.nade import nade_log_prob

    def peak_rss() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

    fn = {"dgm_fast": nade_log_prob, "eager loop": loop_log_prob, "eager cumsum": cumsum_log_prob}[impl]
    params, x = _params(784, 500, "cpu"), _data(batch, 784, "cpu")
    torch.autograd.grad(-fn(x[:2], *params)[0].mean(), params)
    base = peak_rss()
    torch.autograd.grad(-fn(x, *params)[0].mean(), params)
    print(json.dumps({"impl": impl, "batch": batch, "peak_growth_mib": (peak_rss() - base) / 2**20}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--child", choices=IMPLS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.batch)
        return
    bdh = args.batch * 784 * 500 * 4 / 2**20
    print(f"batch {args.batch}, D 784, H 500, float32: one [B, D, H] tensor is {bdh:.0f} MiB; "
          f"the parameters W and V are {2 * 784 * 500 * 4 / 2**20:.1f} MiB")
    for impl in IMPLS:
        out = subprocess.run([sys.executable, __file__, "--child", impl, "--batch", str(args.batch)],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout)
        print(f"{impl:>14}: peak RSS grew by {result['peak_growth_mib']:8.1f} MiB")


if __name__ == "__main__":
    main()
