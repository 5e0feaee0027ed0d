"""``dgm-fast train gmmn``: a generative moment matching network on digits (default) or MNIST, in
data space or in an autoencoder's code space (GMMN+AE), with its Parzen-window log-likelihood."""

from __future__ import annotations

import argparse

import torch

from ._common import fail
from ._implicit import add_common_options, run_implicit

_OPTIONS = ("data", "space", "latent", "hidden", "bandwidths", "code", "ae_hidden", "ae_epochs", "epochs",
            "batch_size", "lr", "seed")


def add_parser(train_sub) -> None:
    p = train_sub.add_parser(
        "gmmn", help="train a generative moment matching network (GMMN or GMMN+AE)",
        description="Trains a GMMN (Li, Swersky & Zemel 2015): an MLP generator with ReLU layers, by Adam on the "
        "squared MMD between each batch and as many samples (the fused, tiled MMD with a sum of RBF kernels). "
        "--space code trains an autoencoder with sigmoid layers first (autoencoder.pt) and the GMMN on its codes "
        "(GMMN+AE); samples are the decoded codes. Data: scikit-learn's digits (8x8) or MNIST, grey levels in "
        "[0, 1]. Writes checkpoint.pt after every epoch (the same command resumes), then gmmn.pt, result.json (the "
        "Parzen-window log-likelihood of the test images, sigma chosen on the validation images), samples.png and "
        "curve.png.",
    )
    add_common_options(p, epochs=300, batch_size=1000, lr=1e-3, out="runs/gmmn")
    p.add_argument("--space", choices=["data", "code"], default="data", help="(default: %(default)s)")
    p.add_argument("--latent", type=int, default=10, help="the width of z (default: %(default)s)")
    p.add_argument("--hidden", default="64,256,256,1024", help="the generator's hidden widths (default: %(default)s)")
    p.add_argument("--bandwidths", default=None, metavar="S,S,...",
                   help="the RBF kernels' widths (default: 2,5,10,20,40,80 on MNIST (Li et al.), 0.5,1,2,4,8 on "
                   "digits, 0.25,0.5,1,2,4 on codes)")
    p.add_argument("--code", type=int, default=32, help="--space code: the code's width (default: %(default)s)")
    p.add_argument("--ae-hidden", type=int, default=1024, help="--space code: the autoencoder's hidden width "
                   "(default: %(default)s)")
    p.add_argument("--ae-epochs", type=int, default=50, help="--space code: the autoencoder's epochs "
                   "(default: %(default)s)")
    p.set_defaults(func=run)


def _bandwidths(args) -> list[float] | str:
    if args.bandwidths is None:
        if args.space == "code":
            return [0.25, 0.5, 1.0, 2.0, 4.0]
        return [2.0, 5.0, 10.0, 20.0, 40.0, 80.0] if args.data == "mnist" else [0.5, 1.0, 2.0, 4.0, 8.0]
    try:
        widths = [float(s) for s in args.bandwidths.split(",")]
    except ValueError:
        return f"--bandwidths must be comma-separated numbers, got {args.bandwidths!r}"
    if not widths or not all(s > 0 and s != float("inf") for s in widths):
        return f"--bandwidths must be positive and finite, got {args.bandwidths!r}"
    return widths


def run(args: argparse.Namespace) -> int:
    from ..models.gmmn import GMMN, Autoencoder, fit_autoencoder, fit_gmmn
    from ._common import hidden_layers

    hidden = hidden_layers(args.hidden, minimum=1)
    if isinstance(hidden, str):
        return fail(hidden.replace("--layers", "--hidden"))
    bandwidths = _bandwidths(args)
    if isinstance(bandwidths, str):
        return fail(bandwidths)
    if min(args.latent, args.code, args.ae_hidden) < 1 or args.ae_epochs < 0:
        return fail("--latent, --code and --ae-hidden must be >= 1, --ae-epochs >= 0")
    code = args.space == "code"
    parts: dict = {}

    def build(n_visible):
        if code:
            parts["ae"] = Autoencoder([n_visible, args.ae_hidden, args.code],
                                      generator_rng=torch.Generator().manual_seed(args.seed + 10))
        return GMMN(args.code if code else n_visible, n_latent=args.latent, hidden_sizes=hidden,
                    generator_rng=torch.Generator().manual_seed(args.seed))

    def train(gmmn, rows, out, generator, progress):
        if code:
            ae = parts["ae"]
            history = fit_autoencoder(ae, rows, epochs=args.ae_epochs, batch_size=100, lr=1e-3,
                                      generator=torch.Generator().manual_seed(args.seed + 11),
                                      checkpoint=out / "autoencoder_checkpoint.pt", progress=progress)
            print(f"autoencoder {ae.layer_sizes}: reconstruction {history[-1]['reconstruction']:.2f} nats per image"
                  if history else "autoencoder: no epochs", flush=True)
            with torch.no_grad():
                rows = ae.encode(rows)
        return fit_gmmn(gmmn, rows, bandwidths=bandwidths, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                        generator=generator, checkpoint=out / "checkpoint.pt", progress=progress)

    def sample(gmmn, n, generator):
        x = gmmn.sample(n, generator=generator)
        if code:
            with torch.no_grad():
                x = parts["ae"].decode(x)
        return x

    files = {"gmmn.pt": lambda gmmn: gmmn}
    if code:
        files["autoencoder.pt"] = lambda gmmn: parts["ae"]
    describe = (f"code {args.code}, " if code else "") + f"bandwidths {','.join(f'{s:g}' for s in bandwidths)}"
    return run_implicit(args, kind="GMMN+AE" if code else "GMMN", options=_OPTIONS, describe=describe, build=build,
                        train=train, sample=sample, model_files=files, extra_files=("autoencoder_checkpoint.pt",),
                        curves=[{"ylabel": "squared MMD\n(per batch)", "series": {"training": "mmd2"},
                                 "yscale": "log"}])
