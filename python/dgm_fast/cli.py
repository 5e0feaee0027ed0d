"""The ``dgm-fast`` command line."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_info(args: argparse.Namespace) -> int:
    from . import build_info

    info = build_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import time

    import torch

    from . import ops
    from .data import load_digits
    from .viz import image_grid, write_png

    images, _ = load_digits()
    originals = images[:16]
    logits = torch.logit(originals.clamp(1e-3, 1 - 1e-3))
    generator = torch.Generator().manual_seed(args.seed)
    samples = [ops.bernoulli_logits(logits, generator=generator) for _ in range(7)]
    rows = torch.stack([originals] + samples, dim=0).reshape(-1, 8, 8)
    out = f"{args.out}/digits_binarized.png"
    write_png(out, image_grid(rows, nrow=16, scale=4))
    # Whole data set, many draws: how long the fused sampler takes against eager PyTorch.
    all_logits = torch.logit(images.clamp(1e-3, 1 - 1e-3)).repeat(8, 1)
    timings = {}
    for name, fn in [
        ("dgm_fast.ops.bernoulli_logits", lambda: ops.bernoulli_logits(all_logits)),
        ("torch.bernoulli(torch.sigmoid(x))", lambda: torch.bernoulli(torch.sigmoid(all_logits))),
    ]:
        fn()
        start = time.perf_counter()
        for _ in range(20):
            fn()
        timings[name] = (time.perf_counter() - start) / 20
    print(f"wrote {out}: 16 digits (top row) and 7 stochastic binarizations below them")
    for name, seconds in timings.items():
        print(f"  {name:<36} {seconds * 1e3:8.3f} ms for {all_logits.numel():,} pixels")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dgm-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="show how dgm_fast was built and what it runs with")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_info.set_defaults(func=_cmd_info)
    p_demo = sub.add_parser("demo", help="binarize scikit-learn's digits with the fused sampler")
    p_demo.add_argument("--out", default="runs/demo", help="output directory")
    p_demo.add_argument("--seed", type=int, default=0)
    p_demo.set_defaults(func=_cmd_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
