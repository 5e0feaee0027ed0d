"""``dgm-fast train gan``: a generative adversarial network on digits (default) or MNIST, with
its Parzen-window log-likelihood."""

from __future__ import annotations

import argparse

import torch

from ._common import fail
from ._implicit import add_common_options, run_implicit

_OPTIONS = ("data", "kind", "k", "latent", "hidden", "epochs", "batch_size", "lr", "seed")


def add_parser(train_sub) -> None:
    p = train_sub.add_parser(
        "gan", help="train a generative adversarial network",
        description="Trains a GAN (Goodfellow et al. 2014): an MLP generator with a sigmoid output and an MLP "
        "discriminator, by Algorithm 1 (--k discriminator steps per generator step) with Adam (betas 0.5, 0.999) and "
        "the fused GAN losses. Data: scikit-learn's digits (8x8) or MNIST, grey levels in [0, 1]. Writes "
        "checkpoint.pt after every epoch (the same command resumes), then gan.pt, result.json (the Parzen-window "
        "log-likelihood of the test images, sigma chosen on the validation images), samples.png and curve.png.",
    )
    add_common_options(p, epochs=300, batch_size=100, lr=1e-3, out="runs/gan")
    p.add_argument("--kind", choices=["minimax", "non_saturating", "reversed"], default="non_saturating",
                   help="the generator's objective (default: %(default)s)")
    p.add_argument("--k", type=int, default=1, help="discriminator steps per generator step (default: %(default)s)")
    p.add_argument("--latent", type=int, default=100, help="the width of z (default: %(default)s)")
    p.add_argument("--hidden", default="256,256",
                   help="the generator's hidden widths, the discriminator's reversed (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.gan import GAN, fit_gan
    from ._common import hidden_layers

    hidden = hidden_layers(args.hidden, minimum=1)
    if isinstance(hidden, str):
        return fail(hidden.replace("--layers", "--hidden"))
    if args.k < 1 or args.latent < 1:
        return fail("--k and --latent must be >= 1")

    def build(n_visible):
        return GAN(n_visible=n_visible, n_latent=args.latent, hidden_sizes=hidden,
                   generator_rng=torch.Generator().manual_seed(args.seed))

    def train(gan, rows, out, generator, progress):
        return fit_gan(gan, rows, kind=args.kind, k=args.k, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, generator=generator, checkpoint=out / "checkpoint.pt", progress=progress)

    curves = [{"ylabel": "loss (nats)", "series": {"discriminator": "d_loss", f"generator ({args.kind})": "g_loss"}},
              {"ylabel": "mean D(x)", "series": {"on data": "d_real", "on samples": "d_fake"}}]
    return run_implicit(args, kind="GAN", options=_OPTIONS, describe=f"{args.kind}, k={args.k}", build=build,
                        train=train, sample=lambda gan, n, g: gan.sample(n, generator=g),
                        model_files={"gan.pt": lambda gan: gan}, curves=curves)
