"""``dgm-fast bench``: the installed benchmark suite (``dgm_fast/bench``), run by pytest-benchmark."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ._common import fail

FAMILIES = ("samplers", "bernoulli", "rbm", "dbn", "dbm", "helmholtz", "vae", "gan", "gmmn", "nade", "losses",
            "evaluate", "data_parallel")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="run the benchmark suite (pytest-benchmark)",
        description="Times dgm_fast against eager PyTorch, torch.compile, CUDA graphs (GPU) and the "
        "peers (scikit-learn, learnergy if installed), grouped by case, and prints each "
        "implementation's time over dgm_fast's. Saved runs go to .benchmarks/ in the current "
        "directory, where pytest-benchmark's own tools find them too.",
    )
    p.add_argument("--quick", action="store_true", help="the small sizes only (about 2 minutes on 2 cores)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--only", choices=FAMILIES, action="append", metavar="FAMILY",
                   help=f"run one family ({', '.join(FAMILIES)}); repeat for several")
    p.add_argument("--save", metavar="NAME", help="save the run as .benchmarks/<machine>/NNNN_NAME.json")
    p.add_argument("--compare", metavar="NAME",
                   help="compare with the newest saved run called NAME (or numbered NAME, e.g. 0003) and fail "
                   "on a regression beyond --threshold")
    p.add_argument("--threshold", type=float, default=10.0, metavar="PERCENT",
                   help="--compare fails when a case's median is this much slower, --vs when dgm_fast's lead over "
                   "a baseline shrank this much (default: 10)")
    p.add_argument("--smoke", action="store_true",
                   help="run every case once, untimed (pytest-benchmark's --benchmark-disable): checks that "
                   "the suite runs")
    p.add_argument("--report", metavar="RUN",
                   help="run nothing: print Markdown tables of a saved run (a name given to --save, a run "
                   "number or a JSON path), with the machine, date and command it recorded")
    p.add_argument("--vs", metavar="OTHER",
                   help="with --report: compare RUN with the saved run OTHER by what travels between machines, each "
                   "baseline's time over dgm_fast's in the same run; exits 1 where dgm_fast's lead shrank by more "
                   "than --threshold")
    p.add_argument("--into", metavar="FILE",
                   help="with --report: replace the block <!-- bench:RUN --> ... <!-- /bench:RUN --> in FILE "
                   "(e.g. bench/RESULTS.md) instead of printing; for a JSON path RUN is its name without .json")
    p.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --), e.g. -k compile")
    p.set_defaults(func=run)


def pytest_arguments(args: argparse.Namespace) -> list[str]:
    """The pytest command line for ``args`` (the suite's own pytest.ini, whatever the current
    directory holds)."""
    from .. import bench

    here = os.path.dirname(bench.__file__)
    files = [os.path.join(here, f"bench_{family}.py") for family in (args.only or FAMILIES)]
    argv = ["-c", os.path.join(here, "pytest.ini"), "--rootdir", here, *files,
            f"--dgm-device={args.device}", f"--dgm-command={command_line(args)}",
            "--benchmark-group-by=group", "--benchmark-sort=name",
            "--benchmark-columns=median,iqr,min,rounds", "-q"]
    if args.quick:
        argv += ["--dgm-quick", "--benchmark-max-time=0.2", "--benchmark-min-rounds=3"]
    if args.smoke:
        argv.append("--benchmark-disable")
    if args.save:
        argv.append(f"--benchmark-save={args.save}")
    if args.compare:
        wanted = args.compare if args.compare.isdigit() else f"*_{args.compare}"
        argv += [f"--benchmark-compare={wanted}", f"--benchmark-compare-fail=median:{args.threshold:g}%"]
    return argv + list(args.pytest_args)


def command_line(args: argparse.Namespace) -> str:
    """The dgm-fast bench command that reproduces this run (what a saved run records)."""
    parts = ["dgm-fast bench"]
    parts += ["--quick"] * args.quick + [f"--device {args.device}"] * (args.device != "cpu")
    parts += [f"--only {family}" for family in args.only or []]
    parts += [f"--save {args.save}"] * bool(args.save)
    parts += ["--", *args.pytest_args] * bool(args.pytest_args)
    return " ".join(parts)


def report(args: argparse.Namespace) -> int:
    from ..bench import report as reports

    try:
        path = reports.find_run(args.report)
        if args.vs:
            base_path = reports.find_run(args.vs)
            text, shrunk = reports.compare(reports.load(path), reports.load(base_path), args.threshold)
            print(f"{path} against {base_path}\n\n{text}")
            return 1 if shrunk else 0
        text = reports.markdown(reports.load(path))
        if args.into:
            block = Path(args.report).stem if args.report.endswith(".json") else args.report
            reports.write_into(args.into, block, text)
            print(f"dgm-fast bench: wrote the tables of {path} into {args.into}")
        else:
            print(text)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError) as exc:
        return fail(f"--report {args.report}: {type(exc).__name__}: {exc}")
    return 0


def warn_if_another_machine(name: str) -> None:
    """--compare compares absolute times, which do not travel between machines: say so when the
    saved run was taken on another one (pytest-benchmark files runs by OS and Python only)."""
    import torch

    from .._machine import cpu_model
    from ..bench import report as reports

    try:
        saved = reports.load(reports.find_run(name))
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError):
        return  # pytest-benchmark reports a missing run itself
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    here = f"{cpu_model()}, {torch.get_num_threads()} threads{gpu}"
    if reports.machine(saved) != here:
        print(f"dgm-fast bench: warning: {name!r} was taken on {reports.machine(saved)}, this is {here}. Absolute "
              "times do not travel between machines; to compare the ratios to eager PyTorch and the peers instead, "
              f"save this run and use dgm-fast bench --report NEW --vs {name}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if (args.into or args.vs) and not args.report:
        return fail(f"{'--into' if args.into else '--vs'} needs --report RUN")
    if args.into and args.vs:
        return fail("--into writes one run's tables; --vs compares two: pass one of them")
    if args.report:
        return report(args)
    if args.smoke and (args.save or args.compare):
        return fail("--smoke times nothing: it cannot --save or --compare")
    try:
        import pytest
        import pytest_benchmark  # noqa: F401
    except ImportError as exc:
        return fail(f"dgm-fast bench needs pytest and pytest-benchmark ({exc}): pip install 'dgm_fast[bench]'")
    from pytest_benchmark.session import PerformanceRegression

    if args.compare:
        warn_if_another_machine(args.compare)

    try:
        return int(pytest.main(pytest_arguments(args)))
    except PerformanceRegression:  # raised after its report ("Performance has regressed: ...")
        print(f"dgm-fast bench: slower than {args.compare!r} by more than {args.threshold:g}% in the cases "
              "listed above", file=sys.stderr)
        return 1


