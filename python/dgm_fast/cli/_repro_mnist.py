"""What the MNIST reproductions of Salakhutdinov & Murray (2008) share (``repro rbm-mnist`` and
``repro dbn-mnist``): the data, the AIS protocol and its options, the run-directory options, and
the per-epoch clock."""

from __future__ import annotations

import argparse
import time

import torch

from ._common import plots_unavailable

BATCH = 100


def add_protocol_options(p: argparse.ArgumentParser, out: str) -> None:
    """The AIS protocol's options (--runs, --temperatures, --ais-refine) and :func:`add_run_options`."""
    p.add_argument("--runs", type=int, default=100, help="AIS and reverse AIS runs (default: %(default)s)")
    p.add_argument("--temperatures", type=int, default=0, metavar="N",
                   help="AIS with N evenly spaced inverse temperatures instead of the paper's 14,501 (for quick "
                   "checks; 0: the paper's schedule)")
    p.add_argument("--ais-refine", type=int, default=1, metavar="K",
                   help="split each step of the paper's schedule into K (14,500 K + 1 temperatures), for models "
                   "whose AIS effective sample size is low (default: %(default)s)")
    add_run_options(p, out)


def add_run_options(p: argparse.ArgumentParser, out: str) -> None:
    """What every MNIST reproduction takes: --train-size, --seed, --device, --out, --quiet,
    --no-plots, --restart."""
    p.add_argument("--train-size", type=int, default=50_000, metavar="N",
                   help="train on the first N of the 50,000 training images (for quick checks)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="(default: %(default)s)")
    p.add_argument("--out", default=out, help="output directory (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true", help="write no PNGs (no matplotlib needed)")
    p.add_argument("--restart", action="store_true", help="delete the models of an earlier run in --out first")


#: The protocol options' defaults, which a table's command line leaves out.
PROTOCOL_DEFAULTS = {"runs": 100, "temperatures": 0, "ais_refine": 1, "train_size": 50_000, "seed": 0, "device": "cpu"}


def protocol_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the protocol options, or None."""
    if args.runs < 2 or args.train_size < BATCH:
        return "--runs must be >= 2 and --train-size >= 100"
    if args.temperatures == 1 or args.temperatures < 0 or args.ais_refine < 1:
        return "--temperatures must be 0 (the paper's schedule) or >= 2, --ais-refine >= 1"
    return run_problem(args)


def run_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with :func:`add_run_options`' --device and --no-plots, or None."""
    if args.device == "cuda":
        from .. import build_info

        if not (torch.cuda.is_available() and build_info()["cuda"]):
            return "--device cuda needs a GPU visible to PyTorch and a build of dgm_fast with CUDA kernels"
    return plots_unavailable(args.no_plots)


def load_data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's first --train-size training images and its 10,000 test images, each binarized
    stochastically once (seeds --seed and --seed + 1), on --device."""
    from ..data import load_mnist

    train_x, _ = load_mnist("train", binarize="stochastic", seed=args.seed)
    test_x, _ = load_mnist("test", binarize="stochastic", seed=args.seed + 1)
    return train_x[: args.train_size].to(args.device), test_x.to(args.device)


def estimate_log_z(model, data: torch.Tensor, args: argparse.Namespace, reverse_init=None) -> dict:
    """AIS and reverse AIS of ``model`` (an RBM or a DBM; base rate from ``data``'s marginals), each summarised as
    ``{"log_z", "lower", "upper", "ess"}``, with the seconds both took and the schedule's length.
    Reverse AIS starts from ``reverse_init`` when given, else from its default burn-in."""
    from .. import evaluate

    betas = (torch.linspace(0, 1, args.temperatures, dtype=torch.float64) if args.temperatures
             else evaluate.default_betas(refine=args.ais_refine))
    start = time.perf_counter()
    results = {
        "ais": evaluate.ais(model, args.runs, betas, data=data,
                            generator=torch.Generator(device=args.device).manual_seed(1)),
        "reverse_ais": evaluate.reverse_ais(model, args.runs, betas, data=data, init=reverse_init,
                                            generator=torch.Generator(device=args.device).manual_seed(2)),
    }
    summary = {name: {"log_z": r.log_z, "lower": r.log_z_lower, "upper": r.log_z_upper, "ess": r.ess}
               for name, r in results.items()}
    return {**summary, "ais_seconds": time.perf_counter() - start, "temperatures": len(betas)}


class EpochSeconds:
    """An ``eval_fn`` of the training loops that records each epoch's wall time."""

    def __init__(self):
        self.last = time.perf_counter()

    def __call__(self, *model_and_epoch) -> dict:
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        return {"seconds": elapsed}
