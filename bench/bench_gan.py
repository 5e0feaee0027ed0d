"""Benchmark of the fused GAN losses against plain PyTorch.

    python bench/bench_gan.py                  # CPU
    python bench/bench_gan.py --device cuda

gan_losses at batch 65,536 (real and fake), each kind, forward + backward of both losses
(medians of torch.utils.benchmark's blocked_autorange): dgm_fast against the plain-PyTorch
softplus form in eager mode and compiled by inductor.
"""

from __future__ import annotations

import argparse

import torch

from dgm_fast import losses
from dgm_fast.bench.bench_losses import eager_gan
from timing import fwd_bwd, print_header, time_fn


def gan_table(device, min_run_time, compile_):
    print("### gan_losses, forward + backward of both losses, batch 65,536 real + 65,536 fake, float32\n")
    print("| kind | dgm_fast (µs) | eager (µs) | torch.compile (µs) | eager / dgm_fast | compile / dgm_fast |")
    print("|---|---|---|---|---|---|")
    n = 65536
    r = (torch.randn(n, device=device) * 3).requires_grad_()
    f = (torch.randn(n, device=device) * 3).requires_grad_()
    for kind in losses.GAN_KINDS:
        ours = fwd_bwd(lambda a, b, k=kind: losses.gan_losses(a, b, k))
        eager = fwd_bwd(eager_gan(kind))
        t_ours = time_fn(ours, (r, f), min_run_time)
        t_eager = time_fn(eager, (r, f), min_run_time)
        t_comp = float("nan")
        if compile_:
            comp = fwd_bwd(torch.compile(eager_gan(kind)))
            t_comp = time_fn(comp, (r, f), min_run_time, warmup=2)
        print(f"| {kind} | {t_ours * 1e6:,.1f} | {t_eager * 1e6:,.1f} | {t_comp * 1e6:,.1f} | "
              f"{t_eager / t_ours:.2f}× | {t_comp / t_ours:.2f}× |", flush=True)
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args()
    device = torch.device(args.device)
    print_header(device)
    gan_table(device, args.min_run_time, not args.no_compile)


if __name__ == "__main__":
    main()
