"""What every benchmark's output file says about the run that produced it.

``start(name, args)`` at the top of a benchmark's ``main()``, ``write_output(path, payload, run)`` at its end:
the file gets ``payload`` plus ``run``: the command line, parsed arguments, UTC start and end, wall seconds, the
git commit (and whether tracked files differed from it), the machine (cores, memory, platform) and its 1-minute
load average, at the start and sampled during the run. The load during the run includes the benchmark itself;
the start figure is what other jobs were doing. docs/generate_tables.py renders the docs' tables from these files.
"""
from __future__ import annotations

import json
import math
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: scratch default of every benchmark's --out; docs/bench/ holds the committed reference outputs
RESULTS = REPO / "bench" / "results"
#: seconds between load-average samples
LOAD_SAMPLE_S = 10.0


def default_out(name: str) -> str:
    """bench/results/<name>.json: the scratch location (gitignored)."""
    return str(RESULTS / f"{name}.json")


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Run:
    """A benchmark run being recorded; ``record()`` returns the ``run`` dict so far (a benchmark may write its
    file more than once; the sampler thread ends with the process)."""

    def __init__(self, name: str, args) -> None:
        script = Path(sys.argv[0]).resolve()
        try:
            script_name = str(script.relative_to(REPO))
        except ValueError:
            script_name = str(script)
        self.name = name
        self.command = shlex.join(["python", script_name, *sys.argv[1:]])
        self.args = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()} if args else {}
        self.started = _utc_now()
        self.t0 = time.perf_counter()
        self.load_start = [round(x, 2) for x in os.getloadavg()]
        # at the start: the code that ran, before the benchmark writes its own (maybe tracked) output file
        self.commit = _git("rev-parse", "--short=10", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        self.modified = bool(dirty) if dirty is not None else None
        self.samples = [self.load_start[0]]
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            time.sleep(LOAD_SAMPLE_S)
            self.samples.append(round(os.getloadavg()[0], 2))

    def record(self) -> dict:
        end = [round(x, 2) for x in os.getloadavg()]
        samples = [*self.samples, end[0]]
        return {
            "benchmark": self.name,
            "command": self.command,
            "args": self.args,
            "started_utc": self.started,
            "finished_utc": _utc_now(),
            "seconds": round(time.perf_counter() - self.t0, 1),
            "commit": self.commit,
            "tracked_files_modified": self.modified,
            "machine": {"cpus": os.cpu_count(), "memory_gib": _memory_gib(), "platform": platform.platform(),
                        "python": platform.python_version()},
            "load_average": {"start_1_5_15m": self.load_start, "end_1_5_15m": end, "min_1m": min(samples),
                             "max_1m": max(samples), "mean_1m": round(sum(samples) / len(samples), 2),
                             "samples": len(samples), "sample_every_s": LOAD_SAMPLE_S},
        }


def start(name: str, args=None) -> Run:
    """Begin recording the run of benchmark ``name`` (its parsed ``args``)."""
    return Run(name, args)


def _plain(value):
    """NaN and infinities become null (strict JSON); numpy scalars and paths become plain types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    return str(value)


def write_output(path: str | os.PathLike, payload: dict, run: Run) -> Path:
    """Write ``payload`` with the run record under ``run`` to ``path`` (JSON); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _plain({"run": run.record(), **payload})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
    print(f"wrote {path}", flush=True)
    return path
