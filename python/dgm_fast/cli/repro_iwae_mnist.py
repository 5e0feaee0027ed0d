"""``dgm-fast repro iwae-mnist``: Burda, Grosse & Salakhutdinov (2015), "Importance weighted
autoencoders": the same VAE architecture trained by the ELBO (the "VAE" column, K samples
averaged) and by the importance-weighted bound (the "IWAE" column) with K = 1, 5, 50, each
evaluated by importance sampling with 5,000 samples on the test set.

Architectures (--layers): 50 is their one-stochastic-layer model (784-200-200-50, tanh), 100,50
their two-layer one (784-200-200-100-100-50). Data: MNIST binarized stochastically once with a
fixed seed (they binarized dynamically). Training: batches of 20, Adam (beta2 0.999, eps 1e-4) with
--lr; they trained 3,280 epochs with a decaying learning rate, which does not fit here.
"""

from __future__ import annotations

import argparse

import torch

from ._common import fail
from ._repro_directed import Row, add_options, run_table

#: Burda et al. (2015), Table 1 (as cited by the issue; not checked against the paper's text here).
PUBLISHED = {("50", "elbo", 1): "−86.76", ("50", "iwae", 50): "−84.78", ("100,50", "iwae", 50): "−82.90"}
_RUN_OPTIONS = ("layers", "ks", "epochs", "batch_size", "lr", "train_size", "seed", "device")


def add_parser(papers) -> None:
    p = papers.add_parser(
        "iwae-mnist", help="Burda et al. (2015): VAE and IWAE on MNIST with K = 1, 5, 50",
        description=__doc__.split(": ", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes into --out: <row>.pt (after every epoch of that row: vae-k<K>, iwae-k<K>), <row>.json (its "
        "evaluation), then table.md (the table bench/RESULTS.md quotes), samples.png and curves.png. Running the "
        "same command again resumes.")
    p.add_argument("--layers", default="50", help="latent layer sizes, bottom first (default: %(default)s)")
    p.add_argument("--ks", default="1,5,50", help="the K of the rows: the VAE at K = 1, then VAE and IWAE at each "
                   "larger K (default: %(default)s)")
    add_options(p, epochs=100, lr=1e-3, out="runs/repro-iwae-mnist")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.vae import VAE, fit_vae

    try:
        latent = [int(s) for s in args.layers.split(",")]
        ks = [int(s) for s in args.ks.split(",")]
    except ValueError:
        return fail(f"--layers and --ks must be comma-separated integers, got {args.layers!r} and {args.ks!r}")
    if min(latent) < 1 or min(ks) < 1:
        return fail("--layers and --ks must be positive")
    hidden = [[200, 200]] + [[100, 100]] * (len(latent) - 1)
    name = f"{len(latent)} stochastic layer{'s' if len(latent) > 1 else ''} ({'-'.join(map(str, [784, *latent]))})"

    def build():
        return VAE([784, *latent], hidden, generator=torch.Generator().manual_seed(args.seed))

    def trainer(objective, k):
        def train(vae, data, epochs, checkpoint, eval_fn, progress):
            return fit_vae(vae, data, objective=objective, k=k, epochs=epochs, batch_size=args.batch_size, lr=args.lr,
                           generator=torch.Generator(device=args.device).manual_seed(args.seed + 1),
                           checkpoint=checkpoint, eval_fn=eval_fn, progress=progress)
        return train

    rows = []
    for k in sorted(set(ks)):
        for objective in (("elbo",) if k == 1 else ("elbo", "iwae")):
            label = "VAE (ELBO)" if objective == "elbo" else "IWAE"
            rows.append(Row(f"{'vae' if objective == 'elbo' else 'iwae'}-k{k}", name, label, k, build,
                            trainer(objective, k), PUBLISHED.get((args.layers, objective, k), "—")))
    command = (f"dgm-fast repro iwae-mnist --layers {args.layers} --ks {args.ks} --epochs {args.epochs} "
               f"--batch-size {args.batch_size} --lr {args.lr:g}")
    return run_table(args, rows, title=f"VAE and IWAE, {name}, on MNIST", command=command, run_options=_RUN_OPTIONS,
                     notes=["Paper: Burda et al. (2015), Table 1, dynamic binarization, 3,280 epochs."])
