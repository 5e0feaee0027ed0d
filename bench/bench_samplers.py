"""Benchmark of the fused samplers against what a PyTorch user would write instead.

    python bench/bench_samplers.py                 # CPU
    python bench/bench_samplers.py --device cuda   # GPU: adds CUDA-graph captured variants
    python bench/bench_samplers.py --by-isa        # CPU: each instruction-set variant, one thread

For each case it times (median of torch.utils.benchmark's blocked_autorange):
  dgm_fast          the fused op
  eager             the same computation in plain PyTorch ops
  torch.compile     that eager function compiled by inductor (default mode)
  eager+graph       (CUDA) the eager function captured in a CUDA graph and replayed
  dgm_fast+graph    (CUDA) the fused op captured in a CUDA graph and replayed
and prints a Markdown table of times and speed-ups (baseline time / dgm_fast time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import torch

from timing import graphed, print_header, time_fn
from dgm_fast.bench.bench_samplers import eager_bernoulli, eager_reparam, fused_bernoulli, fused_reparam










def cases(device):
    for batch, width in [(100, 500), (1024, 4096), (4096, 4096)]:
        x = torch.randn(batch, width, device=device)
        b = torch.randn(width, device=device)
        yield f"bernoulli_logits {batch}x{width}", fused_bernoulli, eager_bernoulli, (x, b)
    for batch, latent in [(1024, 50), (4096, 4096)]:
        mu = torch.randn(batch, latent, device=device)
        lv = torch.randn(batch, latent, device=device)
        yield f"normal_reparam {batch}x{latent}", fused_reparam, eager_reparam, (mu, lv)


_ISA_SCRIPT = """
import torch, dgm_fast
from timing import time_fn
torch.set_num_threads(1)
x, mu, lv = torch.randn(1024, 4096), torch.zeros(1024, 4096), torch.zeros(1024, 4096)
print(dgm_fast.build_info()["cpu_isa"], *(time_fn(f, a, {t}) * 1e3 for f, a in (
    (lambda: ops.uniform_bits((1024, 4096)), ()), (ops.bernoulli_logits, (x,)), (ops.normal_reparam, (mu, lv)))))
"""


def by_isa(min_run_time):
    """One thread, 1024x4096, each CPU loop variant (DGM_FAST_CPU_ISA) in its own process."""
    print("| variant | uniform_bits (4M words) | bernoulli_logits | normal_reparam |")
    print("|---|---|---|---|")
    here = os.path.dirname(os.path.abspath(__file__))
    for isa in ("default", "avx2", "avx512"):
        run = subprocess.run([sys.executable, "-c", _ISA_SCRIPT.format(t=min_run_time)], cwd=here,
                             capture_output=True, text=True, env=dict(os.environ, DGM_FAST_CPU_ISA=isa))
        if run.returncode != 0:
            print(f"| {isa} | not supported here | | |")
            continue
        name, *ms = run.stdout.split()
        print(f"| {name} | " + " | ".join(f"{float(t):.2f} ms" for t in ms) + " |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--by-isa", action="store_true", help="CPU: time each instruction-set variant instead")
    args = parser.parse_args()
    if args.by_isa:
        by_isa(args.min_run_time)
        return
    device = torch.device(args.device)
    print_header(device)

    columns = ["dgm_fast", "eager", "torch.compile"]
    if device.type == "cuda":
        columns += ["eager+graph", "dgm_fast+graph"]
    print("| case | " + " | ".join(f"{c} (µs)" for c in columns) + " | eager / dgm_fast | compile / dgm_fast |"
          + (" eager+graph / dgm_fast+graph |" if device.type == "cuda" else ""))
    print("|" + "---|" * (len(columns) + 3 + (device.type == "cuda")))
    for name, fused, eager, fn_args in cases(device):
        t = {"dgm_fast": time_fn(fused, fn_args, args.min_run_time),
             "eager": time_fn(eager, fn_args, args.min_run_time)}
        t["torch.compile"] = (float("nan") if args.no_compile
                              else time_fn(torch.compile(eager), fn_args, args.min_run_time))
        if device.type == "cuda":
            t["eager+graph"] = time_fn(graphed(eager, fn_args), fn_args, args.min_run_time)
            t["dgm_fast+graph"] = time_fn(graphed(fused, fn_args), fn_args, args.min_run_time)
        row = [f"{t[c] * 1e6:,.1f}" for c in columns]
        row += [f"{t['eager'] / t['dgm_fast']:.2f}×", f"{t['torch.compile'] / t['dgm_fast']:.2f}×"]
        if device.type == "cuda":
            row.append(f"{t['eager+graph'] / t['dgm_fast+graph']:.2f}×")
        print(f"| {name} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
