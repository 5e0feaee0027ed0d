"""Benchmark of the fused VAE losses (forward + backward) against what a PyTorch user would write.

    python bench/bench_elbo.py                 # CPU
    python bench/bench_elbo.py --device cuda   # GPU

For each case it times (median of torch.utils.benchmark's blocked_autorange) one forward and
backward pass of the loss with respect to its differentiable inputs:
  dgm_fast          dgm_fast.losses (native forward and backward kernels)
  eager             the plain-PyTorch formula of dgm_fast.reference.elbo, gradient by autograd
  torch.compile     that eager function compiled by inductor (default mode)
and prints a Markdown table of times and speed-ups (baseline time / dgm_fast time).
"""

from __future__ import annotations

import argparse

import torch

from timing import print_header, time_fn
from dgm_fast import losses
from dgm_fast.reference import elbo as reference_elbo


def elbo_step(fn, likelihood):
    def step(x, recon, mu, log_var):
        loss = fn(x, recon, mu, log_var, likelihood=likelihood)
        return torch.autograd.grad(loss, (recon, mu, log_var))
    return step


def iwae_step(fn):
    def step(log_w):
        return torch.autograd.grad(fn(log_w).sum(), log_w)
    return step


def cases(device):
    batch, features, latents = 1024, 784, 50
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.rand(batch, features, generator=g).to(device)
    recon = torch.randn(batch, features, generator=g).to(device).requires_grad_(True)
    mu = torch.randn(batch, latents, generator=g).to(device).requires_grad_(True)
    lv = torch.randn(batch, latents, generator=g).to(device).requires_grad_(True)
    for likelihood in ["bernoulli", "gaussian"]:
        yield (f"gaussian_elbo {likelihood} {batch}x{features}, {latents} latents",
               elbo_step(losses.gaussian_elbo, likelihood),
               elbo_step(reference_elbo.gaussian_elbo, likelihood), (x, recon, mu, lv))
    for k, b in [(5000, 100), (50, 1024)]:
        log_w = (10 * torch.randn(k, b, generator=g)).to(device).requires_grad_(True)
        yield (f"iwae_bound K={k} B={b}", iwae_step(losses.iwae_bound),
               iwae_step(reference_elbo.iwae_bound), (log_w,))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args()
    device = torch.device(args.device)
    print_header(device)

    columns = ["dgm_fast", "eager", "torch.compile"]
    print("| case (forward + backward) | " + " | ".join(f"{c} (µs)" for c in columns)
          + " | eager / dgm_fast | compile / dgm_fast |")
    print("|" + "---|" * (len(columns) + 3))
    for name, fused, eager, fn_args in cases(device):
        t = {"dgm_fast": time_fn(fused, fn_args, args.min_run_time),
             "eager": time_fn(eager, fn_args, args.min_run_time)}
        t["torch.compile"] = (float("nan") if args.no_compile
                              else time_fn(torch.compile(eager), fn_args, args.min_run_time))
        row = [f"{t[c] * 1e6:,.1f}" for c in columns]
        row += [f"{t['eager'] / t['dgm_fast']:.2f}×", f"{t['torch.compile'] / t['dgm_fast']:.2f}×"]
        print(f"| {name} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
