"""What the directed models' MNIST tables share (``repro sbn-mnist``, ``repro iwae-mnist``): the
same data and test protocol for every row (each row one model and learning algorithm), a
checkpoint per row that resumes, the importance-sampled test log-likelihood with its standard
error, and the table, samples and curves."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ._common import fail, prepare_out
from ._repro_mnist import EpochSeconds, add_run_options, load_data, run_problem


@dataclass
class Row:
    """One row of a table: ``stem`` names its files (``<stem>.pt`` checkpoint, ``<stem>.json``
    evaluation); ``build()`` makes the model; ``train(model, data, epochs, checkpoint, eval_fn,
    progress)`` trains it (resuming) and returns ``fit``'s history."""

    stem: str
    model: str
    algorithm: str
    k: int
    build: Callable[[], torch.nn.Module]
    train: Callable
    published: str = "—"


def add_options(p: argparse.ArgumentParser, *, epochs: int, lr: float, out: str) -> None:
    p.add_argument("--epochs", type=int, default=epochs, help="epochs per row (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=20, help="(default: %(default)s, as the papers)")
    p.add_argument("--lr", type=float, default=lr, help="Adam's learning rate (default: %(default)s)")
    p.add_argument("--only", action="append", metavar="ROW", help="train and evaluate only this row (its file "
                   "stem, e.g. rws-k5); repeat for several; the table lists every row evaluated so far")
    p.add_argument("--eval-samples", type=int, default=5000, metavar="N",
                   help="importance samples per test image (default: %(default)s, as Burda et al.)")
    p.add_argument("--eval-rows", type=int, default=10_000, metavar="N",
                   help="evaluate on the first N of the 10,000 test images (default: all)")
    add_run_options(p, out)


def options_problem(args: argparse.Namespace) -> str | None:
    if min(args.epochs, args.batch_size, args.eval_samples, args.eval_rows) < 1 or args.train_size < args.batch_size:
        return "--epochs, --batch-size, --eval-samples and --eval-rows must be >= 1, --train-size >= --batch-size"
    if not args.lr > 0:
        return "--lr must be > 0"
    return run_problem(args)


def run_table(args: argparse.Namespace, rows: list[Row], *, title: str, command: str, run_options: tuple[str, ...],
              notes: list[str]) -> int:
    """Trains and evaluates each row (resuming what an earlier run did), then writes table.md,
    samples.png and curves.png into ``args.out``."""
    from .._io import atomic_write
    from .._machine import describe
    from ..evaluate import importance_log_prob

    problem = options_problem(args)
    if problem:
        return fail(problem)
    stems = [r.stem for r in rows]
    unknown = [s for s in (args.only or []) if s not in stems]
    if unknown:
        return fail(f"--only {unknown[0]}: the rows are {', '.join(stems)}")
    out = Path(args.out)
    earlier = [*(out / f"{s}.pt" for s in stems), *(out / f"{s}.json" for s in stems)]
    problem = prepare_out(out, {name: getattr(args, name) for name in run_options}, run_options, earlier,
                          args.restart, "run")
    if problem:
        return fail(problem)
    train_x, test_x = load_data(args)
    test_x = test_x[: args.eval_rows]
    print(f"{title}: {train_x.shape[0]:,} MNIST training images, {test_x.shape[0]:,} test images, {args.epochs} epochs "
          f"per row, into {out}", flush=True)
    done, models, histories = [], {}, {}
    for row in rows:
        if args.only and row.stem not in args.only:
            if (out / f"{row.stem}.json").exists():
                done.append(json.loads((out / f"{row.stem}.json").read_text()))
            continue
        model = row.build().to(args.device)
        print(f"{row.model}, {row.algorithm}: training ...", flush=True)
        try:
            history = row.train(model, train_x, args.epochs, out / f"{row.stem}.pt", EpochSeconds(), not args.quiet)
        except KeyboardInterrupt:
            print(f"\ninterrupted; {out / (row.stem + '.pt')} holds the last completed epoch: run the same command "
                  "to resume", file=sys.stderr)
            return 130
        models[row.stem], histories[row.stem] = model, history
        path = out / f"{row.stem}.json"
        if path.exists():
            result = json.loads(path.read_text())
            print(f"{row.model}, {row.algorithm}: read back from {path}", flush=True)
        else:
            start = time.perf_counter()
            estimate = importance_log_prob(model, test_x, args.eval_samples, min(args.eval_samples, 1000),
                                           generator=torch.Generator(device=args.device).manual_seed(args.seed + 3))
            result = {"stem": row.stem, "model": row.model, "algorithm": row.algorithm, "k": row.k,
                      "epochs": len(history), "train_seconds": sum(r.get("seconds", 0.0) for r in history),
                      "train_bound": next((r.get("bound", r.get("elbo")) for r in reversed(history)), None),
                      "test_log_prob": estimate.mean(), "std_error": estimate.mean_std_error(),
                      "images_std_error": (estimate.log_prob.std() / test_x.shape[0] ** 0.5).item()
                      if test_x.shape[0] > 1 else None,
                      "median_ess": estimate.ess.median().item(), "eval_samples": args.eval_samples,
                      "eval_rows": test_x.shape[0], "eval_seconds": time.perf_counter() - start,
                      "published": row.published}
            with atomic_write(path, "w") as f:
                json.dump(result, f, indent=2)
        print(f"{row.model}, {row.algorithm}: test log-likelihood {result['test_log_prob']:.2f} +- "
              f"{result['std_error']:.2f} (paper: {row.published})", flush=True)
        done.append(result)
    header = f"date: {datetime.date.today()}; machine: {describe(args.device)}; command: `{command}`"
    text = table(done, header, notes)
    with atomic_write(out / "table.md", "w") as f:
        f.write(text + "\n")
    print("\n" + text + "\n")
    if not args.no_plots and models:
        from ..viz import save_curves, save_image_grid

        gen = torch.Generator(device=args.device).manual_seed(args.seed + 5)
        images = torch.cat([m.sample(10, generator=gen, means=True).cpu() for m in models.values()])
        save_image_grid(out / "samples.png", images.reshape(-1, 28, 28), nrow=10,
                        title=f"{title}: 10 samples per row ({', '.join(models)}; pixel probabilities)")
        merged = [{"epoch": r["epoch"], stem: r.get("bound", r.get("elbo"))} for stem, h in histories.items() for r in h]
        save_curves(out / "curves.png", merged, [{"ylabel": "training bound\n(nats per image)",
                                                  "series": {stem: stem for stem in histories}}],
                    title=f"{title}: the training objective per epoch")
        print(f"wrote {out / 'samples.png'} and {out / 'curves.png'}")
    print(f"wrote {out / 'table.md'}")
    return 0


def table(rows: list[dict], header: str, notes: list[str]) -> str:
    lines = [header, "",
             "| model | algorithm | K | epochs | train time (s) | training bound | test log p(x) (IS) | ± s.e. "
             "(sampling) | ± s.e. (images) | median ESS | paper (test) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bound = "—" if r["train_bound"] is None else f"{r['train_bound']:.2f}"
        images = "—" if r.get("images_std_error") is None else f"{r['images_std_error']:.2f}"
        lines.append(f"| {r['model']} | {r['algorithm']} | {r['k']} | {r['epochs']} | {r['train_seconds']:.0f} | "
                     f"{bound} | {r['test_log_prob']:.2f} | {r['std_error']:.2f} | {images} | "
                     f"{r['median_ess']:.0f} of {r['eval_samples']:,} | {r['published']} |")
    evaluated = rows[0]["eval_rows"] if rows else 0
    lines += ["", f"Test log p(x): importance sampling with the model's inference network as the proposal, "
              f"{rows[0]['eval_samples'] if rows else 0:,} samples per image, on {evaluated:,} test images. ± s.e. "
              "(sampling): the Monte Carlo error of that mean on these images (delta method, rows independent); "
              "± s.e. (images): the spread of the per-image values over the square root of their number, the error "
              "from evaluating on these images rather than others (rows evaluated on the same images share it, "
              "so differences between rows are known better). Training bound: the last epoch's mean over the "
              "training batches.", *notes]
    return "\n".join(lines)
