"""``dgm-fast train dbn``: a deep belief net, pretrained greedily layer by layer, on scikit-learn's
digits (default) or MNIST, with per-layer checkpoints, samples, curves and the AIS bound."""

from __future__ import annotations

import argparse
import sys

import torch

from ._common import (add_distributed_options, binary_images, fail, hidden_layers, plots_unavailable, prepare_out,
                      processes_phrase)

AIS_RUNS, AIS_BETAS = 100, 5000
SAMPLE_STEPS = 1000
# Options that define a run: resuming with different ones would mix two runs.
_RUN_OPTIONS = ("layers", "data", "method", "k", "epochs", "upward", "batch_size", "lr", "momentum", "weight_decay",
                "fine_tune_epochs", "fine_tune_k", "fine_tune_lr", "seed")


def add_parser(train_sub) -> None:
    p = train_sub.add_parser(
        "dbn", help="pretrain a deep belief net layer by layer",
        description="Pretrains a DBN greedily (Hinton, Osindero & Teh 2006): each RBM, bottom first, on the hidden "
        "probabilities of the layer below, streamed batch by batch; then, with --fine-tune-epochs, up-down "
        "fine-tuning (contrastive wake-sleep with untied recognition and generative weights). Data: "
        "scikit-learn's digits (8x8, binarized stochastically with --seed) or MNIST (28x28, the 50,000 training "
        "images, binarized likewise). Writes layer<i>.pt (after every epoch of that layer) and updown.pt (after "
        "every epoch of fine-tuning): running the same command again resumes. Then dbn.pt, samples.png, "
        "curve.png (each layer's reconstruction error, and the up-down wake error) and bound.json: the "
        "variational lower bound on the training data's log-likelihood after greedy training and after "
        f"fine-tuning, with the top RBM's log Z by AIS ({AIS_RUNS} runs, {AIS_BETAS} temperatures) and by "
        "reverse AIS. dgm_fast.DBN.load(OUT/dbn.pt) reads the model back.",
    )
    p.add_argument("--layers", default="100,100", help="hidden layer sizes, bottom first (default: %(default)s)")
    p.add_argument("--data", default="digits", metavar="digits|mnist|FILE.npy",
                   help="scikit-learn's digits, MNIST, or a .npy file of rows (uint8 grey levels or floats in [0, 1], "
                   "any trailing shape), memory-mapped and streamed from disk, binarized stochastically with --seed "
                   "(default: %(default)s)")
    p.add_argument("--method", choices=["cd", "pcd", "fpcd", "pt"], default="cd", help="(default: %(default)s)")
    p.add_argument("--k", type=int, default=1, help="Gibbs sweeps per update (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=50, help="epochs per layer (default: %(default)s)")
    p.add_argument("--upward", choices=["probabilities", "samples"], default="probabilities",
                   help="what each upper layer trains on: the probabilities of the layer below, or binary states "
                   "drawn up through the layers below (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=20, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.05, help="(default: %(default)s)")
    p.add_argument("--momentum", type=float, default=0.5, help="(default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="(default: %(default)s)")
    p.add_argument("--fine-tune-epochs", type=int, default=20,
                   help="epochs of up-down fine-tuning after pretraining, 0 for none (default: %(default)s)")
    p.add_argument("--fine-tune-k", type=int, default=3,
                   help="Gibbs sweeps in the top RBM per up-down update (default: %(default)s)")
    p.add_argument("--fine-tune-lr", type=float, default=0.001, help="(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--out", default="runs/dbn", help="output directory (default: %(default)s)")
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
    from ..models.dbn import DBN, fine_tune_dbn, pretrain_dbn
    from ..train import distributed

    # Under torchrun every rank runs this; rank 0 alone checks and writes the files and prints.
    writer = distributed.rank() == 0

    def say(line: str) -> None:
        if writer:
            print(line, flush=True)

    hidden = hidden_layers(args.layers)
    if isinstance(hidden, str):
        return fail(hidden)
    if args.epochs < 0 or args.fine_tune_epochs < 0 or args.batch_size < 1 or args.k < 1 or args.fine_tune_k < 1:
        return fail("--epochs and --fine-tune-epochs must be >= 0, --batch-size, --k and --fine-tune-k >= 1")
    if args.fine_tune_lr <= 0:
        return fail("--fine-tune-lr must be > 0")
    problem = plots_unavailable(args.no_plots)
    if problem:
        return fail(problem)
    out = Path(args.out)
    config = {name: getattr(args, name) for name in _RUN_OPTIONS}

    earlier_run = [*out.glob("layer*.pt"), out / "updown.pt", out / "dbn.pt"]  # what --restart deletes
    problem = distributed.broadcast_object(
        prepare_out(out, config, _RUN_OPTIONS, earlier_run, args.restart, "DBN") if writer else None)
    if problem:
        return fail(problem)

    try:
        data, rows, side = binary_images(args.data, args.seed)
    except (OSError, ValueError, TypeError) as exc:
        return fail(f"--data {args.data}: {exc}")
    sizes = [rows.shape[1], *hidden]
    dbn = DBN(sizes, generator=torch.Generator().manual_seed(args.seed))
    dbn.rbms[0].init_visible_bias_from_data(rows)
    say(f"pretraining a DBN {'-'.join(map(str, sizes))} on {len(data)} {args.data} images: "
        f"{args.method.upper()}-{args.k}, {args.epochs} epochs per layer, batches of {args.batch_size}"
        + processes_phrase(args.batch_size))
    start = time.perf_counter()
    try:
        histories = pretrain_dbn(
            dbn, data, epochs=args.epochs, batch_size=args.batch_size, upward=args.upward, method=args.method, k=args.k,
            lr=args.lr,
            momentum=args.momentum, weight_decay=args.weight_decay, checkpoint_dir=out,
            generator=torch.Generator().manual_seed(args.seed + 1), progress=not args.quiet and writer,
            progress_keys=("lr", "reconstruction_error"),
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted; the layer checkpoints in {out} hold the last completed epochs: run the same command "
              "to resume", file=sys.stderr)
        return 130
    except ValueError as exc:
        return fail(str(exc))
    seconds = time.perf_counter() - start
    bounds = {"greedy": _bound(dbn, rows, args.seed)}
    fine_tuning = []
    if args.fine_tune_epochs:
        say(f"up-down fine-tuning: {args.fine_tune_epochs} epochs, CD-{args.fine_tune_k} in the top RBM")
        start = time.perf_counter()
        try:
            fine_tuning = fine_tune_dbn(
                dbn, data, epochs=args.fine_tune_epochs, batch_size=args.batch_size, k=args.fine_tune_k,
                lr=args.fine_tune_lr, momentum=args.momentum, weight_decay=args.weight_decay,
                checkpoint=out / "updown.pt", generator=torch.Generator().manual_seed(args.seed + 6),
                progress=not args.quiet and writer)
        except KeyboardInterrupt:
            print(f"\ninterrupted; {out / 'updown.pt'} holds the last completed epoch: run the same command to resume",
                  file=sys.stderr)
            return 130
        except ValueError as exc:
            return fail(str(exc))
        seconds += time.perf_counter() - start
        bounds["fine_tuned"] = _bound(dbn, rows, args.seed)  # every rank: AIS spreads its runs over them
    if not writer:
        return 0
    dbn.save(out / "dbn.pt")
    p = rows.mean(0).clamp(1e-3, 1 - 1e-3)
    baseline = float((rows * p.log() + (1 - rows) * (-p).log1p()).sum(1).mean())
    with atomic_write(out / "bound.json", "w") as f:
        json.dump({**bounds, "independent_pixels": baseline, "histories": histories, "fine_tuning": fine_tuning},
                  f, indent=2)
    if not args.no_plots:
        from ..viz import save_curves, save_image_grid

        # Shown as the bottom layer's means given the sampled first hidden layer: grey levels read better.
        shown = dbn.sample(100, SAMPLE_STEPS, visible_means=True, generator=torch.Generator().manual_seed(args.seed + 5))
        shape = (side, side) if side else (1, shown.shape[1])  # rows that are no square image: strips
        save_image_grid(out / "samples.png", shown.reshape(-1, *shape), nrow=10,
                        title=f"DBN {'-'.join(map(str, sizes))}: 100 samples ({SAMPLE_STEPS} sweeps in the top RBM)")
        merged = [{"epoch": r["epoch"], f"layer {i}": r["reconstruction_error"]}
                  for i, history in enumerate(histories) for r in history]
        merged += [{"epoch": r["epoch"], "wake": r["wake_error"]} for r in fine_tuning]
        panels = [{"ylabel": "reconstruction error\n(mean squared, per unit)",
                   "series": {f"layer {i + 1}": f"layer {i}" for i in range(len(histories))}}]
        if fine_tuning:
            panels.append({"ylabel": "up-down wake error\n(visible layer, mean squared)",
                           "series": {"generative model": "wake"}})
        if merged:
            save_curves(out / "curve.png", merged, panels,
                        title=f"DBN {'-'.join(map(str, sizes))}: greedy pretraining"
                        + (", then up-down fine-tuning" if fine_tuning else ""))
        print(f"wrote {out / 'samples.png'} and {out / 'curve.png'}")
    print(f"wrote {out / 'dbn.pt'} and {out / 'bound.json'}; {seconds:.1f} s of training this run")
    for name, bound in bounds.items():
        print(f"{name.replace('_', '-')}: training data log-likelihood >= {bound['bound_ais']:.3f} (AIS) / "
              f"{bound['bound_reverse_ais']:.3f} (reverse AIS) nats per image over {len(rows)} rows (variational "
              f"bound; independent pixels: {baseline:.3f})")
    return 0


def _bound(dbn, data: torch.Tensor, seed: int) -> dict:
    """The variational bound on ``data``'s mean log-likelihood, with the top RBM's log Z by AIS
    and by reverse AIS."""
    from .. import evaluate

    top = dbn.rbms[-1]
    top_inputs = dbn.up(data, len(dbn.rbms) - 1)
    betas = torch.linspace(0, 1, AIS_BETAS, dtype=torch.float64)
    fwd = evaluate.ais(top, AIS_RUNS, betas, data=top_inputs, generator=torch.Generator().manual_seed(seed + 2))
    rev = evaluate.reverse_ais(top, AIS_RUNS, betas, data=top_inputs, generator=torch.Generator().manual_seed(seed + 3))
    bound = {name: float(evaluate.dbn_lower_bound(dbn, data, result.log_z, samples=10,
                                                  generator=torch.Generator().manual_seed(seed + 4)).mean())
             for name, result in (("ais", fwd), ("reverse_ais", rev))}
    return {"bound_ais": bound["ais"], "bound_reverse_ais": bound["reverse_ais"], "log_z_ais": fwd.log_z,
            "log_z_reverse_ais": rev.log_z, "ess_ais": fwd.ess}
