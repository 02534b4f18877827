"""Formatting shared by the generated tables: numbers with a true minus sign, durations, Markdown tables, and
the provenance line saying which run a table's figures come from."""
from __future__ import annotations

import math

from table_registry import BENCH_DIR

MINUS = "\u2212"


def _num(x: float, digits: int) -> str:
    s = f"{x:,.{digits}f}"
    return MINUS + s[1:] if s.startswith("-") and s.strip("-0.,") else s.lstrip("-")


def num(x, digits: int = 2) -> str:
    """A number with thousands separators and a true minus sign; '–' for a missing value."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return _num(float(x), digits)


def count(x) -> str:
    return num(x, 0)


def seconds(x) -> str:
    if x is None:
        return "–"
    return f"{num(x, 1 if x < 100 else 0)} s"


def duration(x: float) -> str:
    if x < 120:
        return f"{x:.0f} s"
    minutes, secs = divmod(round(x), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def millis(x) -> str:
    if x is None:
        return "–"
    return f"{num(x, 2 if x < 10 else 1 if x < 100 else 0)} ms"


def times(x) -> str:
    return f"{num(x, 0)}×"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def first(x):
    """R's JSON writes scalars as one-element lists: the value either way."""
    return x[0] if isinstance(x, list) and len(x) == 1 else x


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def load_text(run: dict) -> str:
    load = run.get("load_average") or {}
    start = (load.get("start_1_5_15m") or [None])[0]
    if start is None:
        return "load not recorded"
    text = f"load average (1 min) {num(start, 1)} at the start"
    if load.get("samples", 0) > 2:
        text += f", {num(load['min_1m'], 1)}–{num(load['max_1m'], 1)} during the run (its own processes included)"
    return text


def provenance(benchmark: str, data: dict) -> str:
    """Where a table's figures come from: the file, and the command, commit, date, machine and load of its run."""
    path = (BENCH_DIR / f"{benchmark}.json").as_posix()
    run = data.get("run")
    if not run:
        args = data.get("args") or data.get("settings") or {}
        given = ", ".join(f"{k} {v}" for k, v in args.items() if v not in (None, False, [], ""))
        return f"_From `{path}` (arguments: {given or 'not recorded'}); the file records no date, machine or load._"
    machine = run.get("machine") or {}
    mem = f", {num(machine['memory_gib'], 0)} GiB" if machine.get("memory_gib") else ""
    commit = f" at commit `{run['commit']}`" if run.get("commit") else ""
    if run.get("tracked_files_modified"):
        commit += " (tracked files modified)"
    date = (run.get("started_utc") or "").replace("T", " ")[:16]
    return (f"_From `{path}`: `{run['command']}`{commit}, {date} UTC, {duration(run['seconds'])}; "
            f"{machine.get('cpus', '?')} cores{mem}, {load_text(run)}._")


def short_provenance(data: dict) -> str:
    """Date and load of a run, for one line of a summary table."""
    run = data.get("run") or {}
    if not run:
        return "date and load not recorded"
    load = run.get("load_average") or {}
    span = f"{num(load['min_1m'], 1)}–{num(load['max_1m'], 1)}" if load.get("samples", 0) > 2 else \
        num((load.get("start_1_5_15m") or [None])[0], 1)
    return f"{(run.get('started_utc') or '')[:10]}, load {span}"
