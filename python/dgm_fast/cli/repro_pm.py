"""``dgm-fast repro pm``: Schmidhuber (1992), "Learning factorial codes by predictability
minimization": the off-line experiments with local (one-hot) input patterns, each over
--seeds runs:

* 4 patterns, 2 code units, 4 hidden units shared by the code units, 3 per predictor
  (the paper: a binary factorial code in 8 of 10 runs, 20,000 epochs);
* 16 patterns, 4 code units, 16 shared hidden units, 3 per predictor (the paper: an invertible
  factorial code in 1 of 10 runs; 4 runs gave 15 distinct codes, 3 gave 13, 2 gave 12).

Training here: plain gradient descent on the whole pattern set, the predictors (--predictor-lr)
and then the code units (--lr) each epoch, the code units maximising V_C - beta I with a
reconstructor (--beta; 0 drops it: the paper's experiments maximised V_C alone), initial weights
uniform in +-(--init-scale). The paper does not give its learning rates or initial weights.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ._common import fail, plots_unavailable, prepare_out

EXPERIMENTS = {  # name: (patterns, code units, shared hidden units, the paper's outcome)
    "4-patterns": (4, 2, 4, "8 of 10 factorial"),
    "16-patterns": (16, 4, 16, "1 of 10 factorial (others 15, 13 or 12 distinct codes)"),
}
_OPTIONS = ("seeds", "epochs", "lr", "predictor_lr", "beta", "init_scale")


def add_parser(papers) -> None:
    p = papers.add_parser(
        "pm", help="Schmidhuber (1992): factorial codes by predictability minimization, 10 seeds",
        description=__doc__.split(": ", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes into --out: <experiment>-seed<N>.json after each run (running the same command again skips "
        "the runs done), then table.md (the table bench/RESULTS.md quotes) and curves.png.")
    p.add_argument("--seeds", type=int, default=10, help="runs per experiment (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=20000, help="(default: %(default)s, as the paper)")
    p.add_argument("--lr", type=float, default=0.1, help="the code units' step size (default: %(default)s)")
    p.add_argument("--predictor-lr", type=float, default=1.0, help="the predictors' (default: %(default)s)")
    p.add_argument("--beta", type=float, default=3.0, help="the reconstruction term's weight (default: %(default)s)")
    p.add_argument("--init-scale", type=float, default=2.0, help="(default: %(default)s)")
    p.add_argument("--only", choices=sorted(EXPERIMENTS), help="run one experiment")
    p.add_argument("--out", default="runs/repro-pm", help="output directory (default: %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="write no PNGs (no matplotlib needed)")
    p.add_argument("--restart", action="store_true", help="delete the runs of an earlier invocation in --out first")
    p.set_defaults(func=run)


def _one_run(name: str, seed: int, args) -> dict:
    from ..models.pm import PredictabilityMinimization, code_report, fit_pm

    n_patterns, n_code, hidden, _ = EXPERIMENTS[name]
    x = torch.eye(n_patterns, dtype=torch.float64)
    pm = PredictabilityMinimization(n_patterns, n_code, (hidden,), 3, (hidden,) if args.beta > 0 else None,
                                    generator_rng=torch.Generator().manual_seed(seed), init_scale=args.init_scale,
                                    dtype=torch.float64)
    start = time.perf_counter()
    history = fit_pm(pm, x, epochs=args.epochs, lr=args.lr, predictor_lr=args.predictor_lr, beta=args.beta)
    with torch.no_grad():
        code = pm.code(x)
    report = code_report(code)
    every = max(1, args.epochs // 200)
    return {"seed": seed, "seconds": time.perf_counter() - start, "binary": report.binary,
            "invertible": report.invertible, "factorial": report.factorial, "distinct_codes": report.distinct_codes,
            "multi_information_bits": report.multi_information, "code": code.tolist(),
            "curve": [[h["epoch"], h["unpredictability"]] for h in history[every - 1::every]]}


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write

    if args.seeds < 1 or args.epochs < 1 or not (args.lr > 0 and args.predictor_lr > 0 and args.init_scale > 0):
        return fail("--seeds and --epochs must be >= 1; --lr, --predictor-lr and --init-scale > 0")
    if args.beta < 0:
        return fail("--beta must be >= 0")
    problem = plots_unavailable(args.no_plots)
    if problem:
        return fail(problem)
    out = Path(args.out)
    names = [args.only] if args.only else list(EXPERIMENTS)
    files = [out / f"{name}-seed{seed}.json" for name in EXPERIMENTS for seed in range(args.seeds)]
    problem = prepare_out(out, {k: getattr(args, k) for k in _OPTIONS}, _OPTIONS,
                          [*files, out / "table.md", out / "curves.png"], args.restart, "predictability minimization")
    if problem:
        return fail(problem)
    results: dict[str, list[dict]] = {}
    for name in names:
        results[name] = []
        for seed in range(args.seeds):
            path = out / f"{name}-seed{seed}.json"
            if path.exists():
                results[name].append(json.loads(path.read_text()))
                continue
            result = _one_run(name, seed, args)
            with atomic_write(path, "w") as f:
                json.dump(result, f)
            results[name].append(result)
            print(f"{name} seed {seed}: {result['distinct_codes']} distinct codes, "
                  f"{'factorial' if result['factorial'] else 'not factorial'} (multi-information "
                  f"{result['multi_information_bits']:.3f} bits, binary {result['binary']}), {result['seconds']:.0f} s",
                  flush=True)
    lines = [f"Predictability minimization, off-line, {args.epochs} epochs per run, code lr {args.lr:g}, predictor lr "
             f"{args.predictor_lr:g}, beta {args.beta:g}, initial weights uniform in +-{args.init_scale:g}", "",
             "| experiment | runs | factorial codes | distinct codes per run | mean multi-information (bits) | paper |",
             "|---|---|---|---|---|---|"]
    for name, runs in results.items():
        n_patterns, n_code, hidden, paper = EXPERIMENTS[name]
        found = sum(r["factorial"] for r in runs)
        distinct = ", ".join(str(r["distinct_codes"]) for r in runs)
        multi = sum(r["multi_information_bits"] for r in runs) / len(runs)
        lines.append(f"| {n_patterns} local patterns, {n_code} code units, {hidden} shared hidden | {len(runs)} | "
                     f"{found} of {len(runs)} | {distinct} | {multi:.3f} | {paper} |")
    command = (f"dgm-fast repro pm --seeds {args.seeds} --epochs {args.epochs} --lr {args.lr:g} --predictor-lr "
               f"{args.predictor_lr:g} --beta {args.beta:g} --init-scale {args.init_scale:g}")
    lines += ["", f"Command: `{command}`"]
    with atomic_write(out / "table.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not args.no_plots:
        _plot(out / "curves.png", results, args)
        print(f"wrote {out / 'curves.png'}")
    print(f"wrote {out / 'table.md'}")
    return 0


def _plot(path: Path, results: dict, args) -> None:
    from ..viz import figure, save_figure

    fig = figure(figsize=(6.4, 2.6 * len(results) + 0.6), dpi=120, layout="constrained")
    axes = fig.subplots(len(results), 1, squeeze=False)[:, 0]
    for ax, (name, runs) in zip(axes, results.items()):
        n_patterns, n_code = EXPERIMENTS[name][:2]
        for r in runs:
            epochs, values = zip(*r["curve"])
            ax.plot(epochs, values, color="tab:green" if r["factorial"] else "tab:red", alpha=0.7, linewidth=1.2)
        # V_C of a binary factorial code: every unit balanced and unpredictable, 1/2 * n_code * P / 4
        ax.axhline(n_code * n_patterns / 8, color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{n_patterns} local patterns, {n_code} code units: "
                     f"{sum(r['factorial'] for r in runs)} of {len(runs)} runs factorial (green)", fontsize=10)
        ax.set_ylabel("unpredictability V_C")
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("epoch")
    fig.suptitle("Predictability minimization: the code units' objective per run\n(dashed: a binary factorial code)",
                 fontsize=11)
    save_figure(fig, path)
