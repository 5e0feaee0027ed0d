"""What the subcommands share."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def fail(message: str) -> int:
    print(f"dgm-fast: error: {message}", file=sys.stderr)
    return 2


def run_training(train: Callable[[], Any], holds: str) -> tuple[Any, float] | int:
    """``(train(), seconds)``, or the command's exit code: 130 when it is interrupted (saying that
    ``holds``, e.g. "runs/x/checkpoint.pt holds the last completed epoch", and that the same command
    resumes), 2 when it refuses its input (a ValueError)."""
    import time

    start = time.perf_counter()
    try:
        result = train()
    except KeyboardInterrupt:
        print(f"\ninterrupted; {holds}: run the same command to resume", file=sys.stderr)
        return 130
    except ValueError as exc:
        return fail(str(exc))
    return result, time.perf_counter() - start


def changed_options(config_path: Path, config: Mapping, names: Sequence[str], *, may_raise: Sequence[str] = (),
                    older_default: Mapping[str, Any] | None = None) -> tuple[str, str] | None:
    """The options among ``names`` with which the run saved in ``config_path`` (its config.json)
    differs from ``config``, as command-line text, ``("--lr 0.02", "--lr 0.01")``; None when they
    agree or nothing was saved. Resuming with other options would silently mix two runs, except
    that an option in ``may_raise`` (e.g. ``epochs`` under a constant learning rate) may grow: the
    run then goes on. ``older_default`` gives the value of an option that a config.json written
    before the option existed lacks."""
    if not config_path.exists():
        return None
    saved = {**(older_default or {}), **json.loads(config_path.read_text())}
    changed = [n for n in names if saved.get(n) != config[n]
               and not (n in may_raise and saved.get(n) is not None and config[n] > saved[n])]
    if not changed:
        return None
    flag = lambda n: "--" + n.replace("_", "-")  # noqa: E731
    return (" ".join(f"{flag(n)} {saved.get(n)}" for n in changed), " ".join(f"{flag(n)} {config[n]}" for n in changed))


def hidden_layers(text: str, minimum: int = 2) -> list[int] | str:
    """``--layers`` of a deep model (comma-separated hidden sizes, bottom first): the sizes, or
    what is wrong with them. A Boltzmann model needs two (one is an RBM); a directed one, one."""
    try:
        hidden = [int(part) for part in text.split(",")]
    except ValueError:
        return f"--layers must be comma-separated integers, got {text!r}"
    if len(hidden) < minimum or min(hidden) < 1:
        if minimum == 2:
            return (f"--layers must list at least two positive hidden sizes (one is an RBM: dgm-fast train rbm), "
                    f"got {text!r}")
        return f"--layers must list positive layer sizes, got {text!r}"
    return hidden


def prepare_out(out: Path, config: Mapping, names: Sequence[str], files: Sequence[Path], restart: bool,
                model: str, *, may_raise: Sequence[str] = (), older_default: Mapping[str, Any] | None = None) -> str | None:
    """Readies ``out`` for a run whose options are ``config``: with ``restart``, deletes ``files``
    (the earlier run's checkpoints and outputs) first; refuses a directory that holds a run with
    other options among ``names`` (``may_raise``, ``older_default``: see :func:`changed_options`);
    writes config.json. Returns what is wrong, or None."""
    from .._io import atomic_write

    if restart:
        for path in [*files, out / "config.json"]:
            path.unlink(missing_ok=True)
    changed = changed_options(out / "config.json", config, names, may_raise=may_raise, older_default=older_default)
    if changed:
        grow = "".join(f" (--{n.replace('_', '-')} may be raised to go on training)" for n in may_raise)
        return (f"{out} holds a {model} trained with {changed[0]}, not {changed[1]}. Pass the same options to "
                f"resume it{grow}, --restart to start over, or another --out.")
    with atomic_write(out / "config.json", "w") as f:
        json.dump(config, f, indent=2)
    return None


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


_EVALUATED_ROWS = 10_000  # of a file: the rows the bound and the visible biases are computed on


def binary_images(name: str, seed: int):
    """A training command's ``--data`` (digits, mnist or a .npy file), binarized stochastically
    with ``seed``: (the training data: a tensor, or a Dataset streamed from a file; rows to
    evaluate on, a tensor; the side of a square image, or None)."""
    import math

    import torch

    g = torch.Generator().manual_seed(seed)
    if name == "digits":
        from ..data import load_digits

        images, _ = load_digits()
        images = torch.bernoulli(images, generator=g)
        return images, images, 8
    if name == "mnist":
        from ..data import load_mnist

        images, _ = load_mnist("train", binarize="stochastic", seed=seed)
        return images, images, 28
    import numpy as np

    from ..data import DynamicBinarization, MemmapDataset, load_memmap

    array = load_memmap(name)
    # One fixed stochastic binarization (epoch 0 of DynamicBinarization), as for digits and MNIST.
    dataset = DynamicBinarization(
        MemmapDataset(name, flatten=True, scale=1 / 255 if array.dtype == np.uint8 else None), seed=seed)
    rows = torch.stack([dataset[i] for i in range(min(len(dataset), _EVALUATED_ROWS))])
    side = math.isqrt(rows.shape[1])
    return dataset, rows, side if side * side == rows.shape[1] else None
