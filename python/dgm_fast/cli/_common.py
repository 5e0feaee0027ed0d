"""What the subcommands share."""

from __future__ import annotations

import sys


def fail(message: str) -> int:
    print(f"dgm-fast: error: {message}", file=sys.stderr)
    return 2
