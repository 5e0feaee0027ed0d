"""``dgm-fast train nade``: a NADE on binarized digits (default) or MNIST, with its exact test
log-likelihood."""

from __future__ import annotations

import argparse

import torch

from ._common import fail
from ._autoregressive import add_common_options, run_autoregressive

_OPTIONS = ("data", "hidden", "epochs", "batch_size", "lr", "lr_schedule", "order_agnostic", "seed")


def add_parser(train_sub) -> None:
    p = train_sub.add_parser(
        "nade", help="train a NADE (exact likelihood)",
        description="Trains a NADE (Larochelle & Murray 2011) with one sigmoid hidden layer by maximum likelihood, "
        "with Adam; its recurrence and gradient run in one native call. --order-agnostic draws a random ordering "
        "of the pixels for every image (Uria et al. 2014); --orderings K then scores the test images by the mean "
        "probability over K orderings. Data: scikit-learn's digits (8x8) or MNIST, binarized stochastically once "
        "with --seed. Writes checkpoint.pt after every epoch (the same command resumes), then nade.pt, "
        "result.json (the exact test log-likelihood), samples.png and curve.png.",
    )
    add_common_options(p, hidden="500", epochs=100, batch_size=100, lr=1e-3, out="runs/nade")
    p.add_argument("--orderings", type=int, default=1, metavar="K",
                   help="the test log-likelihood of an ensemble of K orderings (the model's own and K-1 random "
                   "ones; default: %(default)s, its own only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.nade import NADE, fit_nade

    try:
        hidden = int(args.hidden)
    except ValueError:
        hidden = 0
    if hidden < 1:
        return fail(f"--hidden must be one positive width, got {args.hidden!r}")
    if args.orderings < 1:
        return fail("--orderings must be >= 1")

    def build(n_visible):
        return NADE(n_visible, hidden, generator=torch.Generator().manual_seed(args.seed))

    def train(nade, rows, checkpoint, generator, progress, eval_fn):
        return fit_nade(nade, rows, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                        lr_schedule=args.lr_schedule, order_agnostic=args.order_agnostic, generator=generator,
                        checkpoint=checkpoint, progress=progress, eval_fn=eval_fn)

    def final_scores(nade, rows):
        scores = {"own ordering": nade.log_prob(rows)}
        if args.orderings > 1:
            ensemble = nade.ensemble_log_prob(rows, args.orderings, generator=torch.Generator().manual_seed(args.seed + 7))
            scores = {f"ensemble of {args.orderings} orderings": ensemble, **scores}
        return scores

    describe = f"{hidden} hidden units" + (", order-agnostic" if args.order_agnostic else "")
    return run_autoregressive(args, kind="NADE", options=_OPTIONS, describe=describe, build=build, train=train,
                              validation_score=lambda nade, rows: nade.log_prob(rows),
                              final_scores=final_scores, model_file="nade.pt")
