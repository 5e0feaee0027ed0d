"""The ``dgm-fast`` command line: ``dgm-fast info``, ``dgm-fast bench``, ``dgm-fast train <model>``,
``dgm-fast repro <paper>`` and ``dgm-fast demo <name>``, one module per subcommand (``info.py``, ``bench.py``, per model
``<model>.py`` and per paper ``repro_<paper>.py``, each with ``add_parser`` and ``run``).

``torchrun --nproc-per-node N -m dgm_fast train <model> ...`` runs a training command
data-parallel: each process joins the group torchrun describes before the command runs."""

from __future__ import annotations

import argparse
import os
import sys

from . import bench, data, dbm, demo, dbn, gan, gmmn, helmholtz, info, made, nade, rbm, repro, sbn, vae
from ._common import fail

_TRAIN_COMMANDS = (rbm, dbn, dbm, sbn, helmholtz, vae, gan, gmmn, nade, made)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dgm-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info.add_parser(sub)
    bench.add_parser(sub)
    repro.add_parser(sub)
    data.add_parser(sub)
    demo.add_parser(sub)
    p_train = sub.add_parser("train", help="train a model")
    train_sub = p_train.add_subparsers(dest="model", required=True)
    for command in _TRAIN_COMMANDS:
        command.add_parser(train_sub)
    args = parser.parse_args(argv)
    if hasattr(args, "dist_timeout"):  # a command that trains data-parallel under torchrun
        from ..train import distributed

        try:
            distributed.init_from_env(getattr(args, "device", "cpu"), timeout_s=args.dist_timeout)
        except (RuntimeError, ValueError) as exc:
            return fail(str(exc))
    try:
        code = args.func(args)
        if hasattr(args, "dist_timeout"):
            distributed.shutdown()  # after every rank is done (not on an error: the others may wait elsewhere)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`dgm-fast info | head`): exit quietly, as command-line tools do.
        # Point stdout at /dev/null so that the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the broken pipe
    return code


if __name__ == "__main__":
    sys.exit(main())
