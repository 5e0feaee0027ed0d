"""What ``dgm-fast train gan`` and ``train gmmn`` share: the run around a model that can only be
sampled (real-valued images split into train/validation/test, the Parzen-window evaluation with
its bandwidth chosen on the validation set, files and plots). Each command's file adds its model
and algorithm."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from ._common import fail, plots_unavailable, prepare_out, run_training

DIGITS_HELD_OUT = 150  # digits images each in the validation and the test set


def add_common_options(p, *, epochs: int, batch_size: int, lr: float, out: str) -> None:
    p.add_argument("--data", choices=["digits", "mnist"], default="digits", help="(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=epochs, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=batch_size, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=lr, help="Adam's learning rate (default: %(default)s)")
    p.add_argument("--parzen-samples", type=int, default=10000, metavar="N",
                   help="samples in the Parzen-window estimate (default: %(default)s, as Goodfellow et al.)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--out", default=out, help="output directory (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true", help="write no PNGs (no matplotlib needed)")
    p.add_argument("--restart", action="store_true", help="delete the checkpoint of an earlier run in --out")


def real_images(name: str):
    """``--data`` as real values in [0, 1]: ``(train, validation, test, side)``. MNIST: the classic
    50,000 / 10,000 / 10,000 split. Digits: 1,497 / 150 / 150 images of one fixed shuffle (the
    same whatever --seed)."""
    if name == "mnist":
        from ..data import load_mnist

        return load_mnist("train")[0], load_mnist("valid")[0], load_mnist("test")[0], 28
    from ..data import load_digits

    images, _ = load_digits()
    images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))]
    train, held = images[:-2 * DIGITS_HELD_OUT], images[-2 * DIGITS_HELD_OUT:]
    return train, held[:DIGITS_HELD_OUT], held[DIGITS_HELD_OUT:], 8


def run_implicit(args: argparse.Namespace, *, kind: str, options: tuple[str, ...], describe: str,
                 build: Callable[[int], torch.nn.Module], train: Callable, sample: Callable,
                 model_files: dict, curves: list[dict], extra_files: tuple[str, ...] = ()) -> int:
    """Runs an implicit model's training command.

    ``build(n_visible)`` makes the model; ``train(model, rows, out, generator, progress)`` trains it
    on the training images (resuming from the files in ``out``) and returns ``fit``'s history;
    ``sample(model, n, generator)`` gives ``n`` images ``[n, n_visible]`` in [0, 1];
    ``model_files`` maps a file name to a function of the model giving what to ``save`` there;
    ``curves`` are ``save_curves`` panels of the history."""
    import json
    import time
    from pathlib import Path

    from .._io import atomic_write
    from ..evaluate import parzen_log_likelihood, select_parzen_sigma

    if args.epochs < 0 or args.batch_size < 2 or args.parzen_samples < 1:
        return fail("--epochs must be >= 0, --batch-size >= 2 and --parzen-samples >= 1")
    if not args.lr > 0:
        return fail("--lr must be > 0")
    problem = plots_unavailable(args.no_plots)
    if problem:
        return fail(problem)
    out = Path(args.out)
    config = {name: getattr(args, name) for name in options}
    earlier = [out / "checkpoint.pt", out / "result.json", *(out / name for name in [*model_files, *extra_files])]
    problem = prepare_out(out, config, options, earlier, args.restart, kind)
    if problem:
        return fail(problem)
    try:
        train_rows, valid_rows, test_rows, side = real_images(args.data)
    except (OSError, ValueError) as exc:
        return fail(f"--data {args.data}: {exc}")
    model = build(train_rows.shape[1])
    print(f"{kind} on {len(train_rows)} {args.data} images ({describe}), {args.epochs} epochs, batches of "
          f"{args.batch_size}", flush=True)
    torch.manual_seed(args.seed + 2)  # torch's own generator (dropout) too: the same command, the same run
    outcome = run_training(lambda: train(model, train_rows, out, torch.Generator().manual_seed(args.seed + 1),
                                         not args.quiet),
                           f"the checkpoints in {out} hold the last completed epoch")
    if isinstance(outcome, int):
        return outcome
    history, seconds = outcome
    start = time.perf_counter()
    samples = sample(model, args.parzen_samples, torch.Generator().manual_seed(args.seed + 3))
    chosen = select_parzen_sigma(valid_rows, samples)
    test_ll = parzen_log_likelihood(test_rows, samples, chosen.sigma).double()
    mean, std_error = test_ll.mean().item(), (test_ll.std() / len(test_ll) ** 0.5).item()
    eval_seconds = time.perf_counter() - start
    print(f"Parzen-window log-likelihood of the {len(test_rows)} test images: {mean:.2f} +- {std_error:.2f} nats "
          f"({args.parzen_samples} samples, sigma {chosen.sigma:.4g} chosen on {len(valid_rows)} validation images); "
          f"{seconds:.1f} s of training this run, {eval_seconds:.1f} s to evaluate")
    for file, part in model_files.items():
        part(model).save(out / file)
    with atomic_write(out / "result.json", "w") as f:
        json.dump({"parzen_log_likelihood": mean, "std_error": std_error, "sigma": chosen.sigma,
                   "validation": dict(zip(map(str, chosen.sigmas), chosen.mean_log_likelihoods)),
                   "parzen_samples": args.parzen_samples, "test_rows": len(test_rows),
                   "train_seconds_this_run": seconds, "history": history}, f, indent=2)
    if not args.no_plots:
        from ..viz import save_curves, save_image_grid

        shown = samples[:100].reshape(-1, side, side)
        save_image_grid(out / "samples.png", shown, nrow=10, title=f"{kind} ({describe}): 100 samples")
        if history:  # (no epochs, no curve)
            save_curves(out / "curve.png", history, curves, title=f"{kind} on {args.data}: training per epoch")
        print(f"wrote {out / 'samples.png'}" + (f" and {out / 'curve.png'}" if history else ""))
    print(f"wrote {', '.join(str(out / f) for f in model_files)} and {out / 'result.json'}")
    return 0
