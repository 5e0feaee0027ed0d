"""``dgm-fast train made``: a MADE on binarized digits (default) or MNIST, with its exact test
log-likelihood (the ensemble of its mask sets)."""

from __future__ import annotations

import argparse

import torch

from ._common import fail, hidden_layers
from ._autoregressive import add_common_options, run_autoregressive

_OPTIONS = ("data", "hidden", "masks", "direct", "epochs", "batch_size", "lr", "lr_schedule", "order_agnostic",
            "seed")


def add_parser(train_sub) -> None:
    p = train_sub.add_parser(
        "made", help="train a MADE (exact likelihood)",
        description="Trains a MADE (Germain et al. 2015): a masked MLP with ReLU hidden layers and direct "
        "input-to-output connections, by maximum likelihood with Adam. With --masks M > 1 each batch uses one of "
        "M mask sets (connectivity-agnostic training) and the test images are scored by the mean probability over "
        "all M; --order-agnostic gives each mask set its own random ordering of the pixels. Data: scikit-learn's "
        "digits (8x8) or MNIST, binarized stochastically once with --seed. Writes checkpoint.pt after every epoch "
        "(the same command resumes), then made.pt, result.json (the exact test log-likelihood), samples.png and "
        "curve.png. Germain et al.'s MNIST model: --hidden 8000,8000 --masks 32.",
    )
    add_common_options(p, hidden="500", epochs=100, batch_size=100, lr=1e-3, out="runs/made")
    p.add_argument("--masks", type=int, default=1, help="mask sets (default: %(default)s)")
    p.add_argument("--no-direct", dest="direct", action="store_false", help="no direct input-to-output connections")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.made import MADE, fit_made

    hidden = hidden_layers(args.hidden, minimum=1)
    if isinstance(hidden, str):
        return fail(hidden.replace("--layers", "--hidden"))
    if args.masks < 1:
        return fail("--masks must be >= 1")

    def build(n_visible):
        return MADE(n_visible, hidden, n_masks=args.masks, order_agnostic=args.order_agnostic, direct=args.direct,
                    generator=torch.Generator().manual_seed(args.seed))

    def train(made, rows, checkpoint, generator, progress, eval_fn):
        return fit_made(made, rows, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                        lr_schedule=args.lr_schedule, generator=generator, checkpoint=checkpoint, progress=progress,
                        eval_fn=eval_fn)

    def final_scores(made, rows):
        if made.n_masks == 1:
            return {"one mask set": made.log_prob(rows)}
        return {f"ensemble of {made.n_masks} mask sets": made.log_prob(rows), "mask set 0": made.log_prob(rows, mask=0)}

    describe = (f"hidden {','.join(map(str, hidden))}, {args.masks} mask set{'s' if args.masks > 1 else ''}"
                + ("" if args.direct else ", no direct connections")
                + (", order-agnostic" if args.order_agnostic else ""))
    return run_autoregressive(args, kind="MADE", options=_OPTIONS, describe=describe, build=build, train=train,
                              validation_score=lambda made, rows: made.log_prob(rows, mask=0),
                              final_scores=final_scores, model_file="made.pt")
