"""Markdown tables from saved benchmark runs (``dgm-fast bench --report RUN``).

bench/RESULTS.md keeps its prose by hand; its tables come from saved runs. A table block sits
between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` and ``--into bench/RESULTS.md``
replaces it. The machine, the date and the command are those the JSON recorded.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ._common import COMPILE, DGM_FAST, DGM_FAST_GRAPH, EAGER, EAGER_GRAPH

_ORDER = [DGM_FAST, EAGER, COMPILE, "sklearn", "learnergy", EAGER_GRAPH, DGM_FAST_GRAPH, "bare products"]


def find_run(name: str, storage: str | os.PathLike = ".benchmarks") -> Path:
    """The saved run ``name``: a JSON path, a run number (``0003``) or a name given to --save
    (the newest run of that name), under ``storage``."""
    path = Path(name)
    if path.is_file():
        return path
    pattern = f"{name}_*.json" if name.isdigit() else f"*_{name}.json"
    runs = sorted(Path(storage).glob(f"*/{pattern}"), key=lambda p: p.name)
    if not runs:
        raise FileNotFoundError(f"no saved benchmark run {name!r} in {os.path.abspath(storage)} "
                                "(save one with dgm-fast bench --save NAME)")
    return runs[-1]


def _time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:,.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds * 1e6:,.1f} µs"


def _ratio_columns(impls: list[str]) -> list[tuple[str, str]]:
    """(numerator, denominator) per ratio column: each baseline over dgm_fast (above 1: dgm_fast
    is faster), eager+graph over dgm_fast+graph, and dgm_fast over its floor (bare products)."""
    special = (DGM_FAST, EAGER_GRAPH, DGM_FAST_GRAPH, "bare products")
    ratios = [(impl, DGM_FAST) for impl in impls if impl not in special]
    if EAGER_GRAPH in impls and DGM_FAST_GRAPH in impls:
        ratios.append((EAGER_GRAPH, DGM_FAST_GRAPH))
    if "bare products" in impls:
        ratios.append((DGM_FAST, "bare products"))
    return ratios


def markdown(run: dict) -> str:
    """One table per family: a row per case, the median per implementation, then the ratios."""
    info = run["machine_info"]
    device = "GPU: " + info["gpu"] if info.get("gpu") else "CPU"
    build = info.get("dgm_fast", {})
    lines = [
        f"{info.get('cpu_model', info.get('processor', '?'))}, {info.get('threads', '?')} threads, {device}; "
        f"torch {info.get('torch', '?')}, dgm_fast {build.get('version', '?')} ({build.get('variant', '?')}, "
        f"cpu_isa={build.get('cpu_isa', '?')}); {run['datetime'][:10]}; "
        f"`{info.get('dgm_fast_bench_command', 'dgm-fast bench')}`. Medians per call.",
        "",
    ]
    families: dict[str, dict[str, dict[str, float]]] = {}
    for bench in run["benchmarks"]:
        family, _, case = bench["group"].partition(" ")
        case = case.rsplit(" ", 1)[0]  # the device is in the header
        families.setdefault(family, {}).setdefault(case, {})[bench["extra_info"]["impl"]] = bench["stats"]["median"]
    for family, cases in families.items():
        present = {impl for times in cases.values() for impl in times}
        impls = [impl for impl in _ORDER if impl in present] + sorted(present - set(_ORDER))
        ratios = _ratio_columns(impls)
        lines.append(f"| {family} | " + " | ".join(impls) + " | " + " | ".join(f"{a} / {b}" for a, b in ratios) + " |")
        lines.append("|" + "---|" * (1 + len(impls) + len(ratios)))
        for case, times in cases.items():
            cells = [_time(times[i]) if i in times else "–" for i in impls]
            cells += [f"{times[a] / times[b]:.2f}×" if a in times and b in times else "–" for a, b in ratios]
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_into(path: str | os.PathLike, name: str, text: str) -> None:
    """Replaces the block between the lines ``<!-- bench:name -->`` and ``<!-- /bench:name -->`` in
    ``path`` (atomically: a temporary file, then a rename)."""
    path = Path(path)
    content = path.read_text()
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    # The markers count only on lines of their own: prose may mention them.
    pattern = re.compile("^" + re.escape(begin) + r"$.*?^" + re.escape(end) + "$", re.S | re.M)
    if not pattern.search(content):
        raise ValueError(f"{path} has no block {begin} ... {end} to fill")
    content = pattern.sub(lambda _: f"{begin}\n{text.rstrip()}\n{end}", content, count=1)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> dict:
    with open(path) as f:
        return json.load(f)
