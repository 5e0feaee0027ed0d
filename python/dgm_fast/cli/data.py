"""``dgm-fast data mnist-large``: a data set larger than memory, made from MNIST."""

from __future__ import annotations

import argparse

from ._common import fail

_ROW_BYTES = 784


def add_parser(sub) -> None:
    p_data = sub.add_parser("data", help="make data sets")
    data_sub = p_data.add_subparsers(dest="dataset", required=True)
    p = data_sub.add_parser(
        "mnist-large", help="write a .npy of distorted MNIST images, as large as asked (streaming, scale tests)",
        description="Writes uint8 rows [N, 784], each a random MNIST training image moved by an elastic distortion "
        "(Simard et al. 2003) or with Gaussian noise added, chunk by chunk: memory stays flat whatever the size. "
        "The file appears under its name when complete; an interrupted run leaves FILE.partial and resumes from "
        "it when started again with the same options. Train on it with `dgm-fast train dbn --data FILE`, or "
        "MemmapDataset(FILE, scale=1/255) in your own code.",
    )
    p.add_argument("--out", required=True, help="the .npy file to write")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--rows", type=int, help="rows to write")
    size.add_argument("--gigabytes", type=float, help="rows to write, as a file size (784 bytes a row)")
    p.add_argument("--distortion", choices=["elastic", "noise"], default="elastic", help="(default: %(default)s)")
    p.add_argument("--alpha", type=float, default=34.0, help="elastic: displacement scale in pixels (default: %(default)s)")
    p.add_argument("--sigma", type=float, default=4.0, help="elastic: smoothing width in pixels (default: %(default)s)")
    p.add_argument("--noise-std", type=float, default=0.1, help="noise: standard deviation (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.synthetic import write_distorted_mnist

    rows = args.rows if args.rows is not None else int(args.gigabytes * 1e9 // _ROW_BYTES)
    try:  # write_distorted_mnist checks the arguments and says what is wrong
        path = write_distorted_mnist(args.out, rows, distortion=args.distortion, seed=args.seed, alpha=args.alpha,
                                     sigma=args.sigma, noise_std=args.noise_std, progress=not args.quiet)
    except (OSError, RuntimeError, ValueError) as exc:
        return fail(str(exc))
    print(f"wrote {path}: {rows:,} rows of 784 uint8 pixels ({rows * _ROW_BYTES / 1e9:.2f} GB), {args.distortion}")
    return 0
