"""AIS throughput: intermediate distributions x runs per second, for a 784x500 RBM.

    python bench/bench_ais.py [--device cuda] [--betas 2000] [--runs 100]

dgm_fast: ``dgm_fast.evaluate.ais`` (one native op advances all runs through all temperatures).
eager: the same algorithm as a plain-PyTorch loop over the temperatures (below), each step a
log-weight update and one Gibbs transition with torch.bernoulli. Both use the schedule's first
``--betas`` temperatures rescaled to end at 1 and float32 states (float64 log weights).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import torch

from dgm_fast import evaluate
from dgm_fast import RBM
from dgm_fast.bench.bench_evaluate import eager_ais


def timed(fn, device):
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--betas", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rbm = RBM(784, 500, init_std=0.05, device=device)
    with torch.no_grad():
        rbm.hidden_bias.normal_(-1, 0.5)
        rbm.visible_bias.normal_(-1, 1)
    base = torch.full((784,), -1.0, device=device)
    full = evaluate.default_betas()
    betas = full[: args.betas] / full[args.betas - 1]
    data = torch.bernoulli(torch.sigmoid(base).expand(1000, -1))
    with torch.no_grad():
        t_ours = timed(lambda: evaluate.ais(rbm, args.runs, betas, data=data), device)
        t_eager = timed(lambda: eager_ais(rbm, base, betas.to(device), args.runs), device)
    rate = lambda t: args.betas * args.runs / t  # noqa: E731
    print(f"date: {datetime.date.today()}  machine: {platform.machine()}, {torch.get_num_threads()} threads"
          f"{', ' + torch.cuda.get_device_name() if device.type == 'cuda' else ''}, torch {torch.__version__}")
    print(f"784x500 RBM, {args.runs} runs, {args.betas} intermediate distributions\n")
    print("| implementation | time (s) | distributions x runs per second | speed-up |")
    print("|---|---|---|---|")
    print(f"| dgm_fast.evaluate.ais | {t_ours:.2f} | {rate(t_ours):,.0f} | {t_eager / t_ours:.2f}× |")
    print(f"| plain-PyTorch loop | {t_eager:.2f} | {rate(t_eager):,.0f} | 1.00× |")


if __name__ == "__main__":
    main()
