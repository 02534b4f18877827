"""End-to-end benchmark (issue 23, item 6): the whole pipeline with the default settings on the Hillstrom e-mail
experiment (64,000 customers), `snakemake --cores 2 --configfile config/hillstrom.yaml` from an empty folder, as a
user runs it: prepare, shape choice, both fits (train split, then every row), counterfactuals, surrogates,
evaluation, report and scoring. Goal: within 10 minutes on 2 cores.

Prints the wall time overall and per job (from Snakemake's own log: each job's start and end, 1-s resolution),
and what the run delivered (the shape kept, the ATE, the surrogate's fidelity), and writes
bench/results/bench_end_to_end.json (``--out``; the figures and the run, bench/runinfo.py); asserts nothing.

    python bench/bench_end_to_end.py [--raw ../shared/data/hillstrom.csv] [--configfile EXTRA.yaml ...]
                                     [--cores 2] [--work DIR] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import runinfo

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def job_times(log: str) -> list[dict]:
    """Each job of a Snakemake log: rule, wildcards, start and end (seconds from the first job's start)."""
    jobs, stamp, current = {}, None, None
    for line in log.splitlines():
        if m := STAMP.match(line):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y").timestamp()
        elif m := START.match(line):
            current = {"rule": m.group(1), "wildcards": "", "start": stamp}
        elif current is not None and (m := JOBID.match(line)):
            jobs[int(m.group(1))] = current
        elif current is not None and (m := WILDCARDS.match(line)):
            current["wildcards"] = m.group(1)
        elif m := FINISHED.match(line):
            job = jobs.get(int(m.group(1)))
            if job is not None:
                job["end"] = stamp
    done = [j for j in jobs.values() if "end" in j and j["start"] is not None and j["rule"] != "all"]
    t0 = min((j["start"] for j in done), default=0.0)
    return sorted(({"rule": j["rule"], "wildcards": j["wildcards"], "start_s": j["start"] - t0,
                    "end_s": j["end"] - t0, "seconds": j["end"] - j["start"]} for j in done),
                  key=lambda j: (j["start_s"], j["rule"]))


def stage(job: dict) -> str:
    """The job's rule, and which fit it belongs to (the refit on every row has the wildcard delivered)."""
    return job["rule"] + (" (refit on every row)" if "delivered=delivered/" in job["wildcards"] else "")


def delivered_figures(res: Path) -> dict:
    """What the run delivered: the shape kept, the posterior ATE, sampling checks and the surrogate's fidelity."""
    read = lambda *p: json.loads(res.joinpath(*p).read_text())  # noqa: E731
    out = {"shape_choice": read("model", "shape_choice.json").get("selection", {}).get("chosen")
           if res.joinpath("model", "shape_choice.json").exists() else None}
    for fit, folder in (("train", ""), ("all", "delivered")):
        diag = res / folder / "model" / "diagnostics.json"
        if diag.exists():
            d = json.loads(diag.read_text())
            out[f"fit_{fit}"] = {"n_users": d["n_users"], "passed": d["passed"], "fit_seconds": d["fit_seconds"],
                                 "selection": d.get("selection")}
    ate = read("delivered" if (res / "delivered").exists() else "", "counterfactuals", "ate.json")
    out["ate"] = {k: ate.get(k) for k in ("ate_mean", "ate_q05", "ate_q95", "n_users")}
    fidelity = read("surrogate", "manifest.json")["fidelity"]["holdout"]
    out["surrogate_holdout"] = {k: fidelity.get(k) for k in ("r2_uplift", "n_users")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "hillstrom.csv",
                    help="the Hillstrom CSV (config hillstrom.raw)")
    ap.add_argument("--configfile", nargs="*", type=Path, default=[],
                    help="more config files over config/hillstrom.yaml (e.g. config/hillstrom_arms.yaml)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="run folder (default: a temporary one, removed)")
    ap.add_argument("--out", default=runinfo.default_out("bench_end_to_end"))
    args = ap.parse_args()
    if not args.raw.exists():
        raise SystemExit(f"bench_end_to_end: no Hillstrom file at {args.raw} (--raw)")
    run = runinfo.start("bench_end_to_end", args)
    work = args.work or Path(tempfile.mkdtemp(prefix="bayeslift_e2e_"))
    shutil.rmtree(work / "results", ignore_errors=True)
    shutil.rmtree(work / "logs", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    over = work / "raw.yaml"
    over.write_text(json.dumps({"hillstrom": {"raw": str(args.raw.resolve())}}))
    configs = [REPO / "config" / "hillstrom.yaml", *[p.resolve() for p in args.configfile], over]
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(work), "--cores",
           str(args.cores), "--configfile", *map(str, configs)]
    print(f"running {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"the pipeline failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    jobs = job_times(proc.stderr + proc.stdout)
    stages: dict[str, float] = {}
    for job in jobs:
        name = stage(job)
        stages[name] = stages.get(name, 0.0) + job["seconds"]
    payload = {"seconds": seconds, "goal_seconds": 600, "cores": args.cores,
               "configfiles": [str(p.relative_to(REPO)) if p.is_relative_to(REPO) else p.name for p in configs[:-1]],
               "jobs": jobs, "stage_seconds": stages, "delivered": delivered_figures(work / "results")}
    print(f"end to end: {seconds:.0f} s ({seconds / 60:.1f} min; goal 10 min on {args.cores} cores)")
    for name, s in stages.items():
        print(f"  {name:<44} {s:7.0f} s")
    print(f"delivered: {json.dumps(payload['delivered'])}")
    runinfo.write_output(args.out, payload, run)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
