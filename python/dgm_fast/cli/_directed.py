"""What ``dgm-fast train sbn``, ``train helmholtz`` and ``train vae`` share: the run around a
directed model with an inference model (options, resume, the importance-sampled log-likelihood,
files and plots). Each command's file adds its model and algorithms."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from ._common import (add_distributed_options, binary_images, fail, plots_unavailable, prepare_out, processes_phrase,
                      run_training)

EVAL_ROWS = 1000  # rows whose log-likelihood is estimated at the end


def add_common_options(p, *, layers: str, epochs: int, batch_size: int, lr: float, out: str) -> None:
    p.add_argument("--data", choices=["digits", "mnist"], default="digits", help="(default: %(default)s)")
    p.add_argument("--layers", default=layers, help="latent layer sizes, bottom first (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=epochs, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=batch_size, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=lr, help="Adam's learning rate (default: %(default)s)")
    p.add_argument("--eval-samples", type=int, default=5000, metavar="N",
                   help=f"importance samples per image for the final log-likelihood of the first {EVAL_ROWS} "
                   "images (default: %(default)s, as Burda et al.)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--out", default=out, help="output directory (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true", help="write no PNGs (no matplotlib needed)")
    p.add_argument("--restart", action="store_true", help="delete the checkpoint of an earlier run in --out")
    add_distributed_options(p)


def run_directed(args: argparse.Namespace, *, kind: str, options: tuple[str, ...], describe: str,
                 build: Callable[[int, list[int]], torch.nn.Module], train: Callable, model_files: dict) -> int:
    """Runs a directed model's training command.

    ``build(n_visible, latent_sizes)`` makes the model; ``train(model, data, checkpoint, generator,
    progress)`` trains it (resuming from ``checkpoint``) and returns ``fit``'s history;
    ``model_files`` maps a file name to a function of the model giving what to ``save`` there. The
    pictures are ``model.sample(n, means=True)``."""
    import json
    import time
    from pathlib import Path

    from .._io import atomic_write
    from ..evaluate import importance_log_prob
    from ..train import distributed
    from ._common import hidden_layers

    writer = distributed.rank() == 0

    def say(line: str) -> None:
        if writer:
            print(line, flush=True)

    latent = hidden_layers(args.layers, minimum=1)
    if isinstance(latent, str):
        return fail(latent)
    if args.epochs < 0 or min(args.batch_size, args.eval_samples, getattr(args, "k", 1)) < 1:
        return fail("--epochs must be >= 0; --batch-size, --k and --eval-samples >= 1")
    if not args.lr > 0:
        return fail("--lr must be > 0")
    problem = plots_unavailable(args.no_plots)
    if problem:
        return fail(problem)
    out = Path(args.out)
    config = {name: getattr(args, name) for name in options}
    earlier = [out / "checkpoint.pt", out / "result.json", *(out / name for name in model_files)]
    problem = distributed.broadcast_object(
        prepare_out(out, config, options, earlier, args.restart, kind) if writer else None)
    if problem:
        return fail(problem)
    try:
        data, rows, side = binary_images(args.data, args.seed)
    except (OSError, ValueError) as exc:
        return fail(f"--data {args.data}: {exc}")
    if not isinstance(data, torch.Tensor):
        return fail(f"--data {args.data}: this command trains on a tensor of images (digits or mnist)")
    model = build(data.shape[1], latent)
    name = "-".join(map(str, [data.shape[1], *latent]))
    say(f"{kind} {name} on {len(data)} {args.data} images: {describe}, {args.epochs} epochs, batches of "
        f"{args.batch_size}" + processes_phrase(args.batch_size))
    outcome = run_training(lambda: train(model, data, out / "checkpoint.pt", torch.Generator().manual_seed(args.seed + 1),
                                         not args.quiet and writer),
                           f"{out / 'checkpoint.pt'} holds the last completed epoch")
    if isinstance(outcome, int):
        return outcome
    history, seconds = outcome
    if not writer:
        return 0
    evaluated = rows[:EVAL_ROWS]
    start = time.perf_counter()
    estimate = importance_log_prob(model, evaluated, args.eval_samples, min(args.eval_samples, 500),
                                   generator=torch.Generator().manual_seed(args.seed + 3))
    eval_seconds = time.perf_counter() - start
    say(f"log-likelihood of the first {len(evaluated)} training images: {estimate.mean():.3f} +- "
        f"{estimate.mean_std_error():.4f} nats ({args.eval_samples} importance samples each; median ESS "
        f"{estimate.ess.median().item():.0f}); {seconds:.1f} s of training this run, {eval_seconds:.1f} s to evaluate")
    for file, part in model_files.items():
        part(model).save(out / file)
    bound_key = next((k for k in ("bound", "elbo") if history and k in history[-1]), None)
    with atomic_write(out / "result.json", "w") as f:
        json.dump({"log_likelihood": estimate.mean(), "std_error": estimate.mean_std_error(),
                   "median_ess": estimate.ess.median().item(), "eval_samples": args.eval_samples,
                   "eval_rows": len(evaluated), "train_seconds_this_run": seconds, "history": history}, f, indent=2)
    if not args.no_plots:
        from ..viz import save_curves, save_image_grid

        shown = model.sample(100, generator=torch.Generator().manual_seed(args.seed + 5), means=True)
        save_image_grid(out / "samples.png", shown.reshape(-1, side, side), nrow=10,
                        title=f"{kind} {name} ({describe}): 100 samples (pixel probabilities)")
        if bound_key:
            label = "IWAE bound" if bound_key == "bound" and "k" in config else "bound"
            save_curves(out / "curve.png", history,
                        [{"ylabel": f"training {label}\n(nats per image)", "series": {describe: bound_key}}],
                        title=f"{kind} {name}: the training objective per epoch")
        print(f"wrote {out / 'samples.png'} and {out / 'curve.png'}")
    print(f"wrote {', '.join(str(out / f) for f in model_files)} and {out / 'result.json'}")
    return 0
