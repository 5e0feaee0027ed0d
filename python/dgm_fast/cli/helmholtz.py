"""``dgm-fast train helmholtz``: a Helmholtz machine (a sigmoid belief net and its recognition
model) trained by wake-sleep, reweighted wake-sleep or NVIL, on digits (default) or MNIST."""

from __future__ import annotations

import argparse

import torch

from ._directed import add_common_options, run_directed

_OPTIONS = ("layers", "data", "algorithm", "k", "epochs", "batch_size", "lr", "seed")


def add_parser(train_sub, name: str = "helmholtz", model_file: str = "helmholtz.pt") -> None:
    what = ("a sigmoid belief net (trained with a recognition model, as a Helmholtz machine)" if name == "sbn"
            else "a Helmholtz machine")
    p = train_sub.add_parser(
        name, help=f"train {what}",
        description=f"Trains {what} by wake-sleep, reweighted wake-sleep (--k samples) or NVIL. Data: "
        "scikit-learn's digits (8x8) or MNIST (the 50,000 training images), binarized stochastically with --seed. "
        "Writes checkpoint.pt after every epoch (the same command resumes), then "
        f"{model_file}, result.json (the importance-sampled log-likelihood, with its standard error), samples.png "
        "and curve.png.",
    )
    add_common_options(p, layers="32,16", epochs=50, batch_size=20, lr=3e-3, out=f"runs/{name}")
    p.add_argument("--algorithm", choices=["wake-sleep", "rws", "nvil"], default="rws", help="(default: %(default)s)")
    p.add_argument("--k", type=int, default=5, help="samples per image for rws (default: %(default)s)")
    p.set_defaults(func=lambda args: run(args, name, model_file))


def run(args: argparse.Namespace, name: str = "helmholtz", model_file: str = "helmholtz.pt") -> int:
    from ..models.helmholtz import HelmholtzMachine, fit_helmholtz

    def build(n_visible, latent):
        return HelmholtzMachine([n_visible, *latent], generator=torch.Generator().manual_seed(args.seed))

    def train(hm, data, checkpoint, generator, progress):
        hm.generative.init_visible_bias_from_data(data)
        return fit_helmholtz(hm, data, algorithm=args.algorithm, k=args.k, epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr, generator=generator, checkpoint=checkpoint,
                             progress=progress)

    describe = f"rws, k={args.k}" if args.algorithm == "rws" else args.algorithm
    files = {model_file: lambda hm: hm.generative if name == "sbn" else hm}
    if name == "sbn":
        files["helmholtz.pt"] = lambda hm: hm
    return run_directed(args, kind="SBN" if name == "sbn" else "Helmholtz machine", options=_OPTIONS,
                        describe=describe, build=build, train=train, model_files=files)
