"""``dgm-fast train vae``: a variational autoencoder trained by the ELBO or the IWAE bound, on
digits (default) or MNIST."""

from __future__ import annotations

import argparse

import torch

from ._common import fail
from ._directed import add_common_options, run_directed

_OPTIONS = ("layers", "hidden", "data", "algorithm", "k", "epochs", "batch_size", "lr", "seed")


def add_parser(train_sub) -> None:
    p = train_sub.add_parser(
        "vae", help="train a variational autoencoder (ELBO or IWAE)",
        description="Trains a VAE with Gaussian latent layers and a Bernoulli likelihood, by the ELBO averaged over "
        "--k samples or by the importance-weighted bound with --k samples (Burda et al. 2015), with Adam. "
        "Data: scikit-learn's digits (8x8) or MNIST, binarized stochastically with --seed. Writes checkpoint.pt "
        "after every epoch (the same command resumes), then vae.pt, result.json (the importance-sampled "
        "log-likelihood, with its standard error), samples.png and curve.png. Burda et al.'s models: "
        "--layers 50 --hidden 200,200 and --layers 100,50 --hidden '200,200;100,100'.",
    )
    add_common_options(p, layers="8", epochs=50, batch_size=20, lr=1e-3, out="runs/vae")
    p.add_argument("--hidden", default=None, metavar="W,W;W,W",
                   help="per stochastic layer, its deterministic tanh layers' widths, ';' between layers "
                   "(default: 200,200 for the first, 100,100 for the others)")
    p.add_argument("--algorithm", choices=["elbo", "iwae"], default="elbo", help="(default: %(default)s)")
    p.add_argument("--k", type=int, default=1, help="samples per image (default: %(default)s)")
    p.set_defaults(func=run)


def _hidden(text: str | None, n_layers: int):
    if text is None:
        return None
    try:
        hidden = [[int(w) for w in part.split(",") if w.strip()] for part in text.split(";")]
    except ValueError:
        return f"--hidden must be comma-separated integers, ';' between layers, got {text!r}"
    if len(hidden) != n_layers or any(w < 1 for h in hidden for w in h):
        return f"--hidden must give positive widths for each of the {n_layers} latent layers, got {text!r}"
    return hidden


def run(args: argparse.Namespace) -> int:
    from ..models.vae import VAE, fit_vae

    n_layers = len(args.layers.split(","))
    hidden = _hidden(args.hidden, n_layers)
    if isinstance(hidden, str):
        return fail(hidden)

    def build(n_visible, latent):
        return VAE([n_visible, *latent], hidden, generator=torch.Generator().manual_seed(args.seed))

    def train(vae, data, checkpoint, generator, progress):
        return fit_vae(vae, data, objective=args.algorithm, k=args.k, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, generator=generator, checkpoint=checkpoint, progress=progress)

    describe = f"{'VAE' if args.algorithm == 'elbo' else 'IWAE'}, k={args.k}"
    return run_directed(args, kind="VAE", options=_OPTIONS, describe=describe, build=build, train=train,
                        model_files={"vae.pt": lambda vae: vae})
