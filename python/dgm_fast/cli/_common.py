"""What the subcommands share."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def fail(message: str) -> int:
    print(f"dgm-fast: error: {message}", file=sys.stderr)
    return 2


def changed_options(config_path: Path, config: Mapping, names: Sequence[str]) -> tuple[str, str] | None:
    """The options among ``names`` with which the run saved in ``config_path`` (its config.json)
    differs from ``config``, as command-line text, ``("--lr 0.02", "--lr 0.01")``; None when they
    agree or nothing was saved. Resuming with other options would silently mix two runs."""
    if not config_path.exists():
        return None
    saved = json.loads(config_path.read_text())
    changed = [n for n in names if saved.get(n) != config[n]]
    if not changed:
        return None
    flag = lambda n: "--" + n.replace("_", "-")  # noqa: E731
    return (" ".join(f"{flag(n)} {saved.get(n)}" for n in changed), " ".join(f"{flag(n)} {config[n]}" for n in changed))


def plots_unavailable(no_plots: bool) -> str | None:
    """Why the PNGs a command writes cannot be drawn (matplotlib is missing), or None. Checked
    before any training, so that a run does not end without its plots."""
    if no_plots:
        return None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        from ..viz import MISSING_MATPLOTLIB

        return MISSING_MATPLOTLIB + "; or pass --no-plots"
    return None


def processes_phrase(batch_size: int) -> str:
    """How a training command's batches add up under torchrun ("" in a single process)."""
    from ..train.distributed import world_size

    ranks = world_size()
    return f" in each of {ranks} processes (updates on {ranks * batch_size} rows)" if ranks > 1 else ""


def add_distributed_options(parser) -> None:
    """The options of a command that trains data-parallel when started by torchrun."""
    from ..train.distributed import DEFAULT_TIMEOUT_S

    parser.add_argument("--dist-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help="under torchrun: how long a process waits for the others to join (and for any "
                        "exchange) before it fails with an error (default: %(default)s)")
