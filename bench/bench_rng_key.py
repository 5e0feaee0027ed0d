"""What a LibTorch-stable-ABI port would add to every random op: drawing its Philox key.

    python bench/bench_rng_key.py                 # CPU
    python bench/bench_rng_key.py --device cuda

Today a dgm_fast sampler reads (seed, offset) straight from torch's generator inside its C++
kernel. torch's stable ABI exposes no generator state (docs/wheels.md), so a port would draw
the key with a random op through the dispatcher, `aten::random_` on a 2-element int64 tensor,
before each call. For each sampler shape this times, in one run:

  sampler           ops.bernoulli_logits(logits, generator=g), as today
  key               torch.empty(2, int64).random_(generator=g): the extra draw alone
  key + sampler     both, one after the other: what a port would cost per call

All three are called from Python, so each carries the same Python-to-dispatcher overhead; a port
would call `aten::random_` from C++, so "key" is an upper bound on what it adds.
"""

from __future__ import annotations

import argparse

import torch

from dgm_fast import ops
from timing import print_header, time_fn


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    args = parser.parse_args()
    device = torch.device(args.device)
    print_header(device)
    generator = torch.Generator(device=device).manual_seed(0)

    def sampler(logits):
        return ops.bernoulli_logits(logits, generator=generator)

    def key(_logits):
        return torch.empty(2, dtype=torch.int64, device=device).random_(generator=generator)

    def key_then_sampler(logits):
        key(logits)
        return sampler(logits)

    print("| bernoulli_logits shape | sampler (µs) | key (µs) | key + sampler (µs) | added |")
    print("|---|---|---|---|---|")
    for batch, width in [(10, 100), (20, 100), (100, 500), (1024, 4096)]:
        logits = torch.randn(batch, width, device=device)
        t = {name: time_fn(fn, (logits,), args.min_run_time)
             for name, fn in [("sampler", sampler), ("key", key), ("both", key_then_sampler)]}
        added = t["both"] / t["sampler"] - 1
        print(f"| {batch}x{width} | {t['sampler'] * 1e6:,.2f} | {t['key'] * 1e6:,.2f} | "
              f"{t['both'] * 1e6:,.2f} | {added:+.0%} |", flush=True)


if __name__ == "__main__":
    main()
