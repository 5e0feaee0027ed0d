"""Markdown tables from saved benchmark runs (``dgm-fast bench --report RUN``), and the
comparison of two runs that travels between machines (``--report RUN --vs OTHER``).

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

_ORDER = [DGM_FAST, "dgm_fast bf16", "dgm_fast per update", EAGER, COMPILE, "sklearn", "learnergy", EAGER_GRAPH, DGM_FAST_GRAPH, "bare products"]
# dgm_fast's own variants: shown beside it, but not baselines whose distance to it is a "lead"
_OWN = (DGM_FAST, DGM_FAST_GRAPH, "bare products", "dgm_fast bf16", "dgm_fast per update")


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


def format_time(seconds: float) -> str:
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
            cells = [format_time(times[i]) if i in times else "–" for i in impls]
            cells += [f"{times[a] / times[b]:.2f}×" if a in times and b in times else "–" for a, b in ratios]
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def machine(run: dict) -> str:
    """The machine a run was taken on, in a few words: CPU model, threads, GPU."""
    info = run["machine_info"]
    gpu = f", {info['gpu']}" if info.get("gpu") else ""
    return f"{info.get('cpu_model', info.get('processor', '?'))}, {info.get('threads', '?')} threads{gpu}"


def _cases(run: dict) -> dict[tuple[str, str], dict[str, float]]:
    """(family, case) -> {impl: median}; the case's name without its device."""
    cases: dict[tuple[str, str], dict[str, float]] = {}
    for bench in run["benchmarks"]:
        family, _, case = bench["group"].partition(" ")
        cases.setdefault((family, case), {})[bench["extra_info"]["impl"]] = bench["stats"]["median"]
    return cases


def compare(run: dict, base: dict, threshold: float) -> tuple[str, int]:
    """Compares two runs by what travels between machines: each baseline's time over dgm_fast's,
    measured in the same run, rather than absolute times (a faster CPU makes every absolute time
    smaller, and a change of machine is not a regression). Returns the Markdown table and the
    number of cases where dgm_fast's lead shrank by more than ``threshold`` percent."""
    new, old = _cases(run), _cases(base)
    lines = [f"base: {machine(base)}, {base['datetime'][:10]}; run: {machine(run)}, {run['datetime'][:10]}. "
             "Each cell is a baseline's median over dgm_fast's in the same run (above 1: dgm_fast is faster).", "",
             "| case | baseline / dgm_fast | base | run | change |", "|---|---|---|---|---|"]
    shrunk = 0
    for key in [k for k in old if k in new]:
        a, b = old[key], new[key]
        if DGM_FAST not in a or DGM_FAST not in b:
            continue
        for impl in [i for i in _ORDER if i in a and i in b] + sorted(set(a) & set(b) - set(_ORDER)):
            if impl in _OWN:
                continue
            before, after = a[impl] / a[DGM_FAST], b[impl] / b[DGM_FAST]
            change = 100 * (after / before - 1)
            flag = change < -threshold
            shrunk += flag
            lines.append(f"| {' '.join(key)} | {impl} | {before:.2f}× | {after:.2f}× | {change:+.0f}%"
                         + (" **lead shrank**" if flag else "") + " |")
    only = sorted(set(old) ^ set(new))
    if only:
        lines += ["", "In one run only: " + ", ".join(" ".join(k) for k in only) + "."]
    lines += ["", f"{shrunk} case(s) where dgm_fast's lead shrank by more than {threshold:g}%."]
    return "\n".join(lines), shrunk


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
