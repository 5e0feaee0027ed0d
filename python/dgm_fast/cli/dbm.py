"""``dgm-fast train dbm``: a deep Boltzmann machine, pretrained greedily with doubled weights, then
trained jointly (mean-field and persistent chains), on scikit-learn's digits (default) or MNIST,
with checkpoints, samples, curves and the mean-field bound with AIS log Z."""

from __future__ import annotations

import argparse
import sys

import torch

from ._common import (add_distributed_options, binary_images, fail, hidden_layers, plots_unavailable, prepare_out,
                      processes_phrase)

AIS_RUNS, AIS_BETAS = 100, 2000
SAMPLE_STEPS = 1000
# Options that define a run: resuming with different ones would mix two runs.
_RUN_OPTIONS = ("layers", "data", "pretrain_epochs", "pretrain_lr", "epochs", "batch_size", "lr", "momentum",
                "weight_decay", "sparsity_target", "sparsity_cost", "chains", "k", "mean_field", "seed")


def add_parser(train_sub) -> None:
    p = train_sub.add_parser(
        "dbm", help="train a deep Boltzmann machine",
        description="Trains a DBM as Salakhutdinov & Hinton (2009) do: greedy pretraining of its layers as RBMs with "
        "doubled weights (CD-1), then joint training with mean-field for the data and persistent Gibbs chains for "
        "the model. Data: scikit-learn's digits (8x8) or MNIST (the 50,000 training images), binarized "
        "stochastically with --seed. Writes pretrain<i>.pt (each layer, after every epoch) and joint.pt (after "
        "every epoch of joint training): running the same command again resumes. Then dbm.pt, samples.png, "
        "curve.png and bound.json: the mean-field lower bound on the training data's log-likelihood after "
        f"pretraining and after joint training, with log Z by AIS ({AIS_RUNS} runs, {AIS_BETAS} temperatures) "
        "and by reverse AIS. dgm_fast.DBM.load(OUT/dbm.pt) reads the model back.",
    )
    p.add_argument("--layers", default="100,50", help="hidden layer sizes, bottom first (default: %(default)s)")
    p.add_argument("--data", choices=["digits", "mnist"], default="digits", help="(default: %(default)s)")
    p.add_argument("--pretrain-epochs", type=int, default=30, help="epochs per layer (default: %(default)s)")
    p.add_argument("--pretrain-lr", type=float, default=0.05, help="(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=30, help="epochs of joint training (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=20, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.005, help="joint training's (default: %(default)s)")
    p.add_argument("--momentum", type=float, default=0.5, help="(default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=2e-4, help="(default: %(default)s)")
    p.add_argument("--sparsity-target", type=float, default=None, metavar="P",
                   help="joint training pulls each hidden layer's mean activation towards P (default: none)")
    p.add_argument("--sparsity-cost", type=float, default=0.1, help="the sparsity penalty's weight "
                   "(default: %(default)s)")
    p.add_argument("--chains", type=int, default=100, help="persistent chains per process (default: %(default)s)")
    p.add_argument("--k", type=int, default=5, help="Gibbs sweeps of the chains per update (default: %(default)s)")
    p.add_argument("--mean-field", type=int, default=10, help="mean-field sweeps per update (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--out", default="runs/dbm", help="output directory (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true", help="write no PNGs (no matplotlib needed)")
    p.add_argument("--restart", action="store_true", help="delete the checkpoints of an earlier run in --out")
    add_distributed_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from .._io import atomic_write
    from ..models.dbm import DBM, fit_dbm, pretrain_dbm
    from ..train import distributed

    writer = distributed.rank() == 0  # under torchrun: rank 0 alone checks, writes and prints

    def say(line: str) -> None:
        if writer:
            print(line, flush=True)

    hidden = hidden_layers(args.layers)
    if isinstance(hidden, str):
        return fail(hidden)
    if min(args.pretrain_epochs, args.epochs) < 0 or min(args.batch_size, args.chains, args.k, args.mean_field) < 1:
        return fail("--pretrain-epochs and --epochs must be >= 0; --batch-size, --chains, --k and --mean-field >= 1")
    if args.lr <= 0 or args.pretrain_lr <= 0:
        return fail("--lr and --pretrain-lr must be > 0")
    problem = plots_unavailable(args.no_plots)
    if problem:
        return fail(problem)
    out = Path(args.out)
    config = {name: getattr(args, name) for name in _RUN_OPTIONS}

    earlier_run = [*out.glob("pretrain*.pt"), out / "joint.pt", out / "dbm.pt"]  # what --restart deletes
    problem = distributed.broadcast_object(
        prepare_out(out, config, _RUN_OPTIONS, earlier_run, args.restart, "DBM") if writer else None)
    if problem:
        return fail(problem)
    try:
        data, _, side = binary_images(args.data, args.seed)
    except (OSError, ValueError) as exc:
        return fail(f"--data {args.data}: {exc}")
    sizes = [data.shape[1], *hidden]
    name = "-".join(map(str, sizes))
    dbm = DBM(sizes, generator=torch.Generator().manual_seed(args.seed))
    dbm.init_visible_bias_from_data(data)
    say(f"DBM {name} on {len(data)} {args.data} images: pretraining, {args.pretrain_epochs} epochs per layer; then "
        f"joint training, {args.epochs} epochs, {args.chains} chains x {args.k} sweeps, {args.mean_field} mean-field "
        f"sweeps; batches of {args.batch_size}" + processes_phrase(args.batch_size))
    start = time.perf_counter()
    try:
        pretraining = pretrain_dbm(dbm, data, epochs=args.pretrain_epochs, batch_size=args.batch_size,
                                   lr=args.pretrain_lr, weight_decay=args.weight_decay, checkpoint_dir=out,
                                   generator=torch.Generator().manual_seed(args.seed + 1),
                                   progress=not args.quiet and writer)
        seconds = time.perf_counter() - start
        bounds = {"pretrained": _bound(dbm, data, args.seed)}  # every rank: AIS spreads its runs over them
        start = time.perf_counter()
        joint = fit_dbm(dbm, data, epochs=args.epochs, batch_size=args.batch_size, n_chains=args.chains, k=args.k,
                        mean_field_iterations=args.mean_field, lr=args.lr, momentum=args.momentum,
                        weight_decay=args.weight_decay, sparsity_target=args.sparsity_target,
                        sparsity_cost=args.sparsity_cost, checkpoint=out / "joint.pt",
                        generator=torch.Generator().manual_seed(args.seed + 2), progress=not args.quiet and writer)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the checkpoints in {out} hold the last completed epochs: run the same command to "
              "resume", file=sys.stderr)
        return 130
    except ValueError as exc:
        return fail(str(exc))
    seconds += time.perf_counter() - start
    if args.epochs:
        bounds["joint"] = _bound(dbm, data, args.seed)
    if not writer:
        return 0
    dbm.save(out / "dbm.pt")
    p = data.mean(0).clamp(1e-3, 1 - 1e-3)
    baseline = float((data * p.log() + (1 - data) * (-p).log1p()).sum(1).mean())
    with atomic_write(out / "bound.json", "w") as f:
        json.dump({**bounds, "independent_pixels": baseline, "pretraining": pretraining, "joint_training": joint},
                  f, indent=2)
    if not args.no_plots:
        from ..viz import save_curves, save_image_grid

        shown = dbm.sample(100, SAMPLE_STEPS, visible_means=True, generator=torch.Generator().manual_seed(args.seed + 5))
        save_image_grid(out / "samples.png", shown.reshape(-1, side, side), nrow=10,
                        title=f"DBM {name}: 100 samples ({SAMPLE_STEPS} Gibbs sweeps from random states; "
                        "visible probabilities)")
        merged = [{"epoch": r["epoch"], f"layer {i}": r["reconstruction"]}
                  for i, history in enumerate(pretraining) for r in history]
        merged += [{"epoch": r["epoch"], "joint": r["reconstruction"]} for r in joint]
        panels = [{"ylabel": "pretraining: reconstruction\nerror (squared, per image)",
                   "series": {f"layer {i + 1}": f"layer {i}" for i in range(len(pretraining))}},
                  {"ylabel": "joint training: reconstruction\nfrom mean-field (per image)", "series": {"DBM": "joint"}}]
        if merged:
            save_curves(out / "curve.png", merged, panels, title=f"DBM {name}: pretraining, then joint training")
            print(f"wrote {out / 'samples.png'} and {out / 'curve.png'}")
    print(f"wrote {out / 'dbm.pt'} and {out / 'bound.json'}; {seconds:.1f} s of training this run")
    for stage, bound in bounds.items():
        print(f"{stage}: training data log-likelihood >= {bound['bound_ais']:.3f} (AIS) / "
              f"{bound['bound_reverse_ais']:.3f} (reverse AIS) nats per image over {len(data)} rows (mean-field "
              f"bound; independent pixels: {baseline:.3f})")
    return 0


def _bound(dbm, data: torch.Tensor, seed: int) -> dict:
    """The mean-field bound on ``data``'s mean log-likelihood, with log Z by AIS and by reverse AIS."""
    from .. import evaluate

    betas = torch.linspace(0, 1, AIS_BETAS, dtype=torch.float64)
    fwd = evaluate.ais(dbm, AIS_RUNS, betas, data=data, generator=torch.Generator().manual_seed(seed + 3))
    rev = evaluate.reverse_ais(dbm, AIS_RUNS, betas, data=data, generator=torch.Generator().manual_seed(seed + 4))
    bound = {name: float(evaluate.dbm_lower_bound(dbm, data, result.log_z).mean())
             for name, result in (("ais", fwd), ("reverse_ais", rev))}
    return {"bound_ais": bound["ais"], "bound_reverse_ais": bound["reverse_ais"], "log_z_ais": fwd.log_z,
            "log_z_reverse_ais": rev.log_z, "ess_ais": fwd.ess, "ess_reverse_ais": rev.ess}
