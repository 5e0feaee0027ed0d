"""What ``dgm-fast train nade`` and ``train made`` share: the run around a model with an exact
likelihood (binary images split into train/validation/test, the validation log-likelihood after
every epoch, the exact test log-likelihood at the end, files and plots). Each command's file adds
its model and options."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from ..train.loop import LR_SCHEDULES
from ._common import fail, plots_unavailable, prepare_out, run_training

EVAL_BATCH = 1000  # rows per call when the validation and test sets are scored


def add_common_options(p, *, hidden: str, epochs: int, batch_size: int, lr: float, out: str) -> None:
    p.add_argument("--data", choices=["digits", "mnist"], default="digits", help="(default: %(default)s)")
    p.add_argument("--hidden", default=hidden, help="hidden layer width(s) (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=epochs, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=batch_size, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=lr, help="Adam's learning rate (default: %(default)s)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="constant",
                   help="the learning rate over the epochs: constant, or decayed to 0 at --epochs along a line or a "
                   "half cosine (default: %(default)s). Under a constant rate a finished or interrupted run can be "
                   "continued with a larger --epochs")
    p.add_argument("--order-agnostic", action="store_true",
                   help="train for every ordering of the pixels at once (Uria et al. 2014)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the initial weights, the training and the one fixed stochastic binarization of the "
                   "images (default: %(default)s)")
    p.add_argument("--out", default=out, help="output directory (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true", help="write no PNGs (no matplotlib needed)")
    p.add_argument("--restart", action="store_true", help="delete the checkpoint of an earlier run in --out")


def binary_splits(name: str, seed: int):
    """``--data`` binarized stochastically once, with ``seed``: ``(train, validation, test,
    side)``. MNIST: the classic 50,000 / 10,000 / 10,000 split (the papers' fixed binarization
    has no offline source); digits: the fixed 1,497 / 150 / 150 split of the implicit models."""
    if name == "mnist":
        from ..data import load_mnist

        splits = [load_mnist(split, binarize="stochastic", seed=seed + i)[0]
                  for i, split in enumerate(("train", "valid", "test"))]
        return (*splits, 28)
    from ._implicit import real_images

    *splits, side = real_images(name)
    g = torch.Generator().manual_seed(seed)
    return (*(torch.bernoulli(s, generator=g) for s in splits), side)


def mean_and_error(values: torch.Tensor) -> tuple[float, float]:
    values = values.double()
    return values.mean().item(), (values.std() / len(values) ** 0.5).item()


def run_autoregressive(args: argparse.Namespace, *, kind: str, options: tuple[str, ...], describe: str,
                       build: Callable[[int], torch.nn.Module], train: Callable,
                       validation_score: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor],
                       final_scores: Callable[[torch.nn.Module, torch.Tensor], dict[str, torch.Tensor]],
                       model_file: str) -> int:
    """Runs an autoregressive model's training command.

    ``build(n_visible)`` makes the model; ``train(model, rows, checkpoint, generator, progress,
    eval_fn)`` trains it (resuming from ``checkpoint``) and returns ``fit``'s history;
    ``validation_score(model, rows)`` is the exact log-likelihood per row scored on the validation
    images after every epoch (one ordering or mask set: a MADE's ensemble would cost n_masks passes);
    ``final_scores(model, rows)`` gives the named exact log-likelihoods per row reported at the end
    (the first is the headline: e.g. a MADE's ensemble, then its first mask set), of the model of
    the best validation log-likelihood (``best_<model_file>``) and of the last epoch's."""
    import json
    import math
    import time
    from pathlib import Path

    from .._io import atomic_write

    if args.epochs < 0 or args.batch_size < 1:
        return fail("--epochs must be >= 0 and --batch-size >= 1")
    if not args.lr > 0:
        return fail("--lr must be > 0")
    problem = plots_unavailable(args.no_plots)
    if problem:
        return fail(problem)
    out = Path(args.out)
    config = {name: getattr(args, name) for name in options}
    earlier = [out / "checkpoint.pt", out / "result.json", out / model_file, out / f"best_{model_file}"]
    # A schedule spans --epochs, so only a constant rate lets a run go on for more of them.
    problem = prepare_out(out, config, options, earlier, args.restart, kind,
                          may_raise=("epochs",) if args.lr_schedule == "constant" else (),
                          older_default={"lr_schedule": "constant"})
    if problem:
        return fail(problem)
    try:
        train_rows, valid_rows, test_rows, side = binary_splits(args.data, args.seed)
    except (OSError, ValueError) as exc:
        return fail(f"--data {args.data}: {exc}")
    model = build(train_rows.shape[1])

    def valid_log_prob(model) -> float:
        with torch.no_grad():
            return torch.cat([validation_score(model, rows) for rows in valid_rows.split(EVAL_BATCH)]).mean().item()

    # The model of the best validation log-likelihood so far, kept as the papers chose theirs (an
    # earlier run's file is scored again when the command resumes).
    best_path = out / f"best_{model_file}"
    best = [valid_log_prob(type(model).load(best_path)) if best_path.exists() else -math.inf]
    clock = [time.perf_counter()]

    def validation(model, epoch) -> dict:
        seconds = time.perf_counter() - clock[0]  # the epoch's training, without the validation
        valid = valid_log_prob(model)
        if valid > best[0]:
            best[0] = valid
            model.save(best_path)
        clock[0] = time.perf_counter()
        return {"valid_log_prob": valid, "seconds": seconds}

    clock[0] = time.perf_counter()
    print(f"{kind} on {len(train_rows)} {args.data} images (binarized stochastically with seed {args.seed}; "
          f"{describe}), {args.epochs} epochs, batches of {args.batch_size}, Adam at lr {args.lr:g}"
          + ("" if args.lr_schedule == "constant" else f" ({args.lr_schedule} decay)"), flush=True)
    outcome = run_training(lambda: train(model, train_rows, out / "checkpoint.pt",
                                         torch.Generator().manual_seed(args.seed + 1), not args.quiet, validation),
                           f"{out / 'checkpoint.pt'} holds the last completed epoch")
    if isinstance(outcome, int):
        return outcome
    history, seconds = outcome
    start = time.perf_counter()
    scored = {}
    if history and best_path.exists():
        best_epoch = max(history, key=lambda h: h["valid_log_prob"])["epoch"]
        scored[f"best validation, epoch {best_epoch}"] = type(model).load(best_path)
    scored[f"last epoch, {len(history)}"] = model
    with torch.no_grad():
        scores = {}
        for when, scored_model in scored.items():
            for rows in test_rows.split(EVAL_BATCH):
                for name, values in final_scores(scored_model, rows).items():
                    scores.setdefault(f"{name}; {when}", []).append(values)
    results = {name: mean_and_error(torch.cat(parts)) for name, parts in scores.items()}
    eval_seconds = time.perf_counter() - start
    for name, (mean, error) in results.items():
        print(f"test log-likelihood ({name}) of the {len(test_rows)} test images: {mean:.3f} +- {error:.3f} nats")
    print(f"{seconds:.1f} s of training this run, {eval_seconds:.1f} s to evaluate")
    model.save(out / model_file)
    with atomic_write(out / "result.json", "w") as f:
        json.dump({"test_log_likelihood": {name: {"mean": m, "std_error": e} for name, (m, e) in results.items()},
                   "test_rows": len(test_rows), "binarization": f"stochastic, seed {args.seed}",
                   "train_seconds_this_run": seconds, "eval_seconds": eval_seconds, "history": history}, f, indent=2)
    if not args.no_plots:
        from ..viz import save_curves, save_image_grid

        shown = model.sample(100, generator=torch.Generator().manual_seed(args.seed + 5), means=True)
        save_image_grid(out / "samples.png", shown.reshape(-1, side, side), nrow=10,
                        title=f"{kind} ({describe}): 100 samples (each pixel's probability given those drawn before)")
        if history:
            save_curves(out / "curve.png", history,
                        [{"ylabel": "log-likelihood\n(nats per image)",
                          "series": {"training (batches, during the epoch)": "log_prob",
                                     "validation": "valid_log_prob"}}],
                        title=f"{kind} on {args.data}: the exact log-likelihood per epoch")
        print(f"wrote {out / 'samples.png'}" + (f" and {out / 'curve.png'}" if history else ""))
    print(f"wrote {out / model_file} and {out / 'result.json'}")
    return 0

