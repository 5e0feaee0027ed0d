"""How the tiled MMD scales, in time and peak memory, against the plain-PyTorch reference that
builds the whole N x N kernel matrices. (Its speed at fixed sizes, with torch.compile and the
matrix products' floor beside it, is in the packaged suite: ``dgm-fast bench --only losses``.)

    python bench/bench_mmd.py                  # CPU
    python bench/bench_mmd.py --device cuda

Each size runs in a fresh subprocess: one forward + backward timed, peak RSS growth from VmHWM in
/proc/self/status. dgm_fast at --scale-sizes; the plain reference only where its estimated
forward + backward footprint fits in --reference-limit-gb, otherwise its requirement is computed
and printed instead of run. Sizes above --max-n are not run; their time is extrapolated
(labelled) from the two largest measured sizes as a * N^2.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

import torch

from timing import print_header

BANDWIDTHS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


_CHILD = textwrap.dedent(
    """
    import json, sys, time, torch
    from dgm_fast import losses, reference

    def peak_rss():  # this process's peak RSS in bytes (VmHWM: unlike ru_maxrss, reset by exec)
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))

    n, d, which, device = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    bw = tuple(float(s) for s in sys.argv[5].split(","))
    fn = losses.mmd if which == "dgm_fast" else reference.mmd.mmd
    x = torch.randn(n, d, device=device, requires_grad=True)
    y = (torch.randn(n, d, device=device) + 0.05).requires_grad_()
    fn(x[:8], y[:8], bw).backward()  # warm up kernels and the allocator
    x.grad = y.grad = None
    if device == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    base = peak_rss()
    t0 = time.perf_counter()
    loss = fn(x, y, bw)
    loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = peak_rss()
    cuda_peak = torch.cuda.max_memory_allocated() if device == "cuda" else 0
    print(json.dumps({"seconds": seconds, "rss_growth": peak - base, "cuda_peak": cuda_peak}))
    """
)


def _run_child(n, d, which, device):
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(d), which, device,
                          ",".join(str(s) for s in BANDWIDTHS)], capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1] if out.stderr else f"exit {out.returncode}"
    return json.loads(out.stdout.strip().splitlines()[-1]), None


def scaling_table(device, sizes, max_n, reference_limit_gb):
    d = 784
    print(f"### mmd (unbiased) scaling and peak memory, D = {d}, {len(BANDWIDTHS)} bandwidths, float32, "
          "one forward + backward per fresh process\n")
    mem_col = "peak CUDA memory (MiB)" if device.type == "cuda" else "peak RSS growth (MiB)"
    print(f"| N = M | dgm_fast time (s) | dgm_fast {mem_col} | reference time (s) | reference {mem_col} |")
    print("|---|---|---|---|---|")
    measured = []
    for n in sizes:
        mat_gb = n * n * 4 / 1e9  # one N x N float32 kernel matrix
        if n <= max_n:
            r, err = _run_child(n, d, "dgm_fast", device.type)
            if r is not None:
                measured.append((n, r["seconds"]))
                mem = (r["cuda_peak"] if device.type == "cuda" else r["rss_growth"]) / 2**20
                ours = (f"{r['seconds']:.2f}", f"{mem:,.0f}")
            else:
                ours = (f"failed: {err}", "")
        else:
            if len(measured) >= 2:
                (n1, t1), (n2, t2) = measured[-2], measured[-1]
                a = t2 / n2**2  # a * N^2 from the largest measured size
                ours = (f"extrapolated ≈ {a * n * n:,.0f} (a·N² from N={n2}; N={n1}→{n2} grew "
                        f"{t2 / t1:.2f}× for {(n2 / n1) ** 2:.0f}× the pairs)", "not run")
            else:
                ours = ("not run", "not run")
        # the reference's autograd keeps, per kernel matrix (kxx, kyy, kxy), the squared distances,
        # one exp per bandwidth and about two more N x N temporaries
        per_matrix = len(BANDWIDTHS) + 3
        need_gb = 3 * per_matrix * mat_gb
        if need_gb <= reference_limit_gb:
            r, err = _run_child(n, d, "reference", device.type)
            if r is not None:
                mem = (r["cuda_peak"] if device.type == "cuda" else r["rss_growth"]) / 2**20
                ref = (f"{r['seconds']:.2f}", f"{mem:,.0f}")
            else:
                ref = (f"failed: {err}", "")
        else:
            ref = ("not run (computed requirement instead)",
                   f"≈ 3 × {per_matrix} × N² × 4 B = {need_gb:,.1f} GB forward + backward "
                   f"(one N × N float32 matrix is {mat_gb:,.1f} GB; even the 3 kernel matrices alone, "
                   f"{3 * mat_gb:,.1f} GB) > {reference_limit_gb} GB limit")
        print(f"| {n:,} | {ours[0]} | {ours[1]} | {ref[0]} | {ref[1]} |", flush=True)
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--scale-sizes", default="4096,8192,16384,65536")
    parser.add_argument("--max-n", type=int, default=16384, help="largest N run for dgm_fast")
    parser.add_argument("--reference-limit-gb", type=float, default=6.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    print_header(device)
    sizes = [int(s) for s in args.scale_sizes.split(",")]
    scaling_table(device, sizes, args.max_n, args.reference_limit_gb)


if __name__ == "__main__":
    main()
