"""``dgm-fast info``: how dgm_fast was built and what it runs with."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p_info = sub.add_parser("info", help="show how dgm_fast was built and what it runs with")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_info.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import build_info

    info = build_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0
