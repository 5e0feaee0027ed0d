"""``dgm-fast repro autoregressive-mnist``: the exact MNIST test log-likelihoods of NADE
(Larochelle & Murray 2011: 500 hidden units, -88.86) and of MADE (Germain et al. 2015: 2 hidden
layers, 32 mask sets, -86.64).

Each row is the training command of its model (``dgm-fast train nade | made --data mnist``) in its
own folder under --out, so each resumes from its checkpoint. Data: MNIST's 50,000 / 10,000 /
10,000 split binarized stochastically once with --seed (the papers used a fixed binarization that
has no offline source). Training: Adam with --lr, batches of 100, --epochs per row; the papers
trained longer and chose their models on the validation set.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from ..train.loop import LR_SCHEDULES
from ._common import fail

PUBLISHED = {"nade": "−88.86 (Larochelle & Murray 2011)", "made": "−86.64 (Germain et al. 2015, 8000-8000)"}
_ROWS = ("nade", "made")


def add_parser(papers) -> None:
    p = papers.add_parser(
        "autoregressive-mnist", help="NADE and MADE on MNIST: exact test log-likelihoods",
        description=__doc__.split(": ", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes into --out: nade/ and made/ (each: checkpoint.pt after every epoch, the model, result.json, "
        "samples.png, curve.png), then table.md (the table bench/RESULTS.md quotes). Running the same command "
        "again resumes.")
    p.add_argument("--epochs", type=int, default=100, help="epochs per row (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: %(default)s)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="constant",
                   help="the learning rate over the epochs (default: %(default)s; see dgm-fast train made --help)")
    p.add_argument("--nade-hidden", default="500", help="NADE's hidden units (default: %(default)s, the paper's)")
    p.add_argument("--made-hidden", default="2000,2000",
                   help="MADE's hidden widths (default: %(default)s; the paper's 8000,8000 take about 16 times "
                   "longer per epoch)")
    p.add_argument("--masks", type=int, default=32, help="MADE's mask sets (default: %(default)s, the paper's)")
    p.add_argument("--only", choices=_ROWS, action="append", help="train this row only; repeat for both")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--out", default="runs/repro-autoregressive-mnist", help="output directory (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true", help="write no PNGs (no matplotlib needed)")
    p.add_argument("--restart", action="store_true", help="start the rows over")
    p.set_defaults(func=run)


def _row_args(args: argparse.Namespace, row: str) -> argparse.Namespace:
    common = {"data": "mnist", "epochs": args.epochs, "batch_size": 100, "lr": args.lr,
              "lr_schedule": args.lr_schedule, "order_agnostic": False, "seed": args.seed,
              "out": str(Path(args.out) / row), "quiet": args.quiet, "no_plots": args.no_plots,
              "restart": args.restart}
    if row == "nade":
        return argparse.Namespace(**common, hidden=args.nade_hidden, orderings=1)
    return argparse.Namespace(**common, hidden=args.made_hidden, masks=args.masks, direct=True)


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write
    from .._machine import describe
    from . import made, nade

    if args.epochs < 0 or args.masks < 1:
        return fail("--epochs must be >= 0 and --masks >= 1")
    out = Path(args.out)
    for row, command in (("nade", nade), ("made", made)):
        if args.only and row not in args.only:
            continue
        print(f"== {row} ==", flush=True)
        code = command.run(_row_args(args, row))
        if code != 0:
            return code
    # Each row's own settings come from its config.json: the rows may have been run by different
    # invocations (e.g. --only made with another --lr).
    lines = [f"date: {datetime.date.today()}; machine: {describe()}; last command: `dgm-fast repro "
             f"autoregressive-mnist --epochs {args.epochs} --lr {args.lr:g} --lr-schedule {args.lr_schedule} "
             f"--nade-hidden {args.nade_hidden} --made-hidden {args.made_hidden} --masks {args.masks} "
             f"--seed {args.seed}" + "".join(f" --only {row}" for row in args.only or ()) + "`", "",
             "| model | training | epochs | train time (s) | last validation log p(x) | test log p(x) (exact) "
             "| ± s.e. (images) | paper (test) |", "|---|---|---|---|---|---|---|---|"]
    for row in _ROWS:
        path = out / row / "result.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        config = json.loads((out / row / "config.json").read_text())
        history = result["history"]
        name = (f"NADE, {config['hidden']} hidden" if row == "nade"
                else f"MADE, hidden {config['hidden']}, {config['masks']} mask sets")
        training = f"Adam, lr {config['lr']:g}, {config.get('lr_schedule', 'constant')}"
        seconds = sum(h.get("seconds", 0.0) for h in history)
        valid = f"{history[-1]['valid_log_prob']:.2f}" if history else "—"
        for score, value in result["test_log_likelihood"].items():
            lines.append(f"| {name} ({score}) | {training} | {len(history)} | {seconds:.0f} | {valid} | "
                         f"{value['mean']:.2f} | {value['std_error']:.2f} | {PUBLISHED[row]} |")
    lines += ["", "MNIST binarized stochastically once (the papers: a fixed binarization); 10,000 test images; the "
              "exact log-likelihood, so ± s.e. is only the spread over the test images. Validation: MNIST's 10,000 "
              "validation images (MADE: its first mask set only)."]
    with atomic_write(out / "table.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines) + f"\n\nwrote {out / 'table.md'}")
    return 0
