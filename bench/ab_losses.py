"""The fused ELBO and IWAE against torch.compile, call by call: forward + backward of the suite's
four loss cases (`python/dgm_fast/bench/bench_losses.py`), dgm_fast and the compiled plain-PyTorch
reference alternating, so that a shared VM's drift (±40 % between pytest-benchmark runs here)
falls on both alike. Prints, per case, the medians of `--pairs` alternating calls, `--repeats`
times, and compile / dgm_fast for each repeat.

    python bench/ab_losses.py [--pairs 400] [--repeats 3] [--only iwae] [--glibc-heap-default]
    DGM_FAST_CPU_ISA=avx2 python bench/ab_losses.py     # the AVX2 loops on an AVX-512 CPU

Each call allocates megabytes (a [1024, 784] gradient) and frees them. glibc's malloc hands a
freed top of its heap back to the kernel once it passes a threshold that it adjusts as it goes,
and the next call then takes a page fault per 4 KiB it touches: measured here, 150-290 faults
per call on both sides, tripling a 200 µs call, on or off from one run to the next depending on
what ran before. So the script re-runs itself with MALLOC_TRIM_THRESHOLD_ and
MALLOC_MMAP_THRESHOLD_ at 256 MiB, so that freed memory stays in the heap for reuse (as jemalloc
and tcmalloc keep it), unless --glibc-heap-default is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

import dgm_fast
from dgm_fast import losses, reference


def alternate(fa, fb, pairs: int) -> tuple[float, float]:
    """Medians (µs) of fa and fb over ``pairs`` alternating calls, after a warm-up."""
    for _ in range(30):
        fa(), fb()
    ta, tb = [], []
    for _ in range(pairs):
        t = time.perf_counter()
        fa()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        fb()
        tb.append(time.perf_counter() - t)
    return statistics.median(ta) * 1e6, statistics.median(tb) * 1e6


def cases():
    g = torch.Generator().manual_seed(0)
    batch, features, latents = 1024, 784, 50
    x = torch.rand(batch, features, generator=g)
    for likelihood in ("bernoulli", "gaussian"):
        recon, mu, lv = (torch.randn(batch, n, generator=g).requires_grad_() for n in (features, latents, latents))
        compiled = torch.compile(reference.elbo.gaussian_elbo)

        def ours(recon=recon, mu=mu, lv=lv, likelihood=likelihood):
            return torch.autograd.grad(losses.gaussian_elbo(x, recon, mu, lv, likelihood=likelihood), (recon, mu, lv))

        def theirs(recon=recon, mu=mu, lv=lv, likelihood=likelihood, compiled=compiled):
            return torch.autograd.grad(compiled(x, recon, mu, lv, likelihood=likelihood), (recon, mu, lv))

        yield f"gaussian_elbo {likelihood} {batch}x{features}, {latents} latents", ours, theirs
    for k, b in ((5000, 100), (50, 1024)):
        w = (10 * torch.randn(k, b, generator=g)).requires_grad_()
        compiled = torch.compile(reference.elbo.iwae_bound)
        # the training loss (reduction="mean", the suite's case), and the bound per example summed
        # by the caller (the per-row path: a backward pass scales the stored gradient)
        yield (f"iwae_bound K={k} B={b}, reduction='mean'",
               lambda w=w: torch.autograd.grad(losses.iwae_bound(w, reduction="mean"), (w,)),
               lambda w=w, compiled=compiled: torch.autograd.grad(compiled(w).mean(), (w,)))
        yield (f"iwae_bound K={k} B={b}, per example, .sum()",
               lambda w=w: torch.autograd.grad(losses.iwae_bound(w).sum(), (w,)),
               lambda w=w, compiled=compiled: torch.autograd.grad(compiled(w).sum(), (w,)))


HEAP_SETTINGS = {"MALLOC_TRIM_THRESHOLD_": str(256 << 20), "MALLOC_MMAP_THRESHOLD_": str(256 << 20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="the cases whose name contains this, e.g. iwae")
    parser.add_argument("--glibc-heap-default", action="store_true",
                        help="keep glibc's adaptive trim and mmap thresholds (page faults vary by run)")
    args = parser.parse_args()
    if not args.glibc_heap_default and any(os.environ.get(k) != v for k, v in HEAP_SETTINGS.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **HEAP_SETTINGS})
    info = dgm_fast.build_info()
    heap = "glibc's default heap thresholds" if args.glibc_heap_default else "glibc heap trim/mmap thresholds 256 MiB"
    print(f"cpu_isa={info['cpu_isa']}, {torch.get_num_threads()} threads, torch {torch.__version__}, {heap}; "
          f"medians of {args.pairs} alternating calls, forward + backward\n")
    print("| case | dgm_fast (µs) | torch.compile (µs) | compile / dgm_fast, each repeat |")
    print("|---|---|---|---|")
    for name, ours, theirs in cases():
        if args.only not in name:
            continue
        runs = [alternate(ours, theirs, args.pairs) for _ in range(args.repeats)]
        ratios = ", ".join(f"{b / a:.2f}×" for a, b in runs)
        print(f"| {name} | {statistics.median(a for a, _ in runs):,.1f} | {statistics.median(b for _, b in runs):,.1f} "
              f"| {ratios} |", flush=True)


if __name__ == "__main__":
    main()
