"""Load test of `bayeslift serve` on loopback: latency percentiles, requests/s and users/s.

Starts the real server as a subprocess, then drives it from a second process (keep-alive connections on
one event loop). Bounded: a fixed number of requests per scenario and a time cap on each.
Uses results/surrogate when present, else trains the small truth surrogate the tests use.

    python bench/bench_serve.py [--model DIR] [--requests 2000] [--big-requests 200] [--time-cap 20] [--out FILE]

Writes bench/results/bench_serve.json (``--out``): the rows, the model served and the run (bench/runinfo.py).
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import runinfo

REPO = Path(__file__).resolve().parents[1]


def build_truth_surrogate(out: Path) -> Path:
    """The tests' truth surrogate (tests/conftest.py truth_surrogate_dir): trained on simulator truth, no R."""
    from bayeslift.surrogate.truth import train_truth_surrogate

    return train_truth_surrogate(out, source="simulator truth (bench)")


def model_facts(model: Path, asked: str) -> dict:
    """What was served: the folder asked for, whether the truth surrogate stood in, width and training source."""
    from bayeslift.scoring import UpliftScorer

    scorer = UpliftScorer.load(model)
    training = scorer.manifest.get("training_config") or {}
    return {"asked": asked, "truth_surrogate": not (Path(asked) / "manifest.json").exists(),
            "hidden": scorer.surrogate.spend_net.net[0].out_features, "epochs": training.get("epochs"),
            "source": training.get("source", "a Bayesian model's posterior"), "created": scorer.manifest.get("created")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(port: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not become healthy")


async def _client(port, request: bytes, n_requests, deadline, latencies, errors):
    """One keep-alive connection sending the same pre-encoded request ``n_requests`` times."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(n_requests):
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _load(port, request, clients, requests, time_cap):
    await _client(port, request, 20, time.perf_counter() + 5, [], [])  # warm-up
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]
    latencies: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + time_cap
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(port, request, n, deadline, latencies, errors) for n in per_client))
    return latencies, errors, time.perf_counter() - t0


def run_load(port: int, body: bytes, clients: int, requests: int, time_cap: float, queue) -> None:
    """In the load-generator process: ``requests`` in all, split over ``clients`` keep-alive connections
    on one uvloop event loop (raw HTTP/1.1: a thread per client and http.client cost more CPU than the
    server's own work, on the same 2 cores)."""
    import uvloop

    request = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
    queue.put(uvloop.run(_load(port, request, clients, requests, time_cap)))


def scenario(port, body, n_users, clients, requests, time_cap):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=run_load, args=(port, body, clients, requests, time_cap, queue))
    proc.start()
    latencies, errors, elapsed = queue.get()
    proc.join()
    lat = np.array(latencies) * 1e3
    return {
        "users_per_request": n_users, "clients": clients, "requests": len(lat), "errors": len(errors),
        "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
        "requests_per_s": len(lat) / elapsed, "users_per_s": len(lat) * n_users / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "results" / "surrogate"))
    parser.add_argument("--requests", type=int, default=3000, help="1-user requests per scenario")
    parser.add_argument("--big-requests", type=int, default=300, help="1,000-user requests per scenario")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server worker counts to compare")
    parser.add_argument("--time-cap", type=float, default=20.0, help="seconds per scenario at most")
    parser.add_argument("--out", default=runinfo.default_out("bench_serve"), help="the output file (JSON)")
    args = parser.parse_args()
    run = runinfo.start("bench_serve", args)

    from bayeslift.simulate import simulate_new_users

    tmp = tempfile.TemporaryDirectory(prefix="bench_serve_")
    model = Path(args.model)
    if not (model / "manifest.json").exists():
        print(f"{model} not found; training the small truth surrogate ...", flush=True)
        model = build_truth_surrogate(Path(tmp.name) / "surrogate")
    served = model_facts(model, args.model)

    users, _ = simulate_new_users(1000, seed=7)
    records = json.loads(users.to_json(orient="records", double_precision=15))
    one = json.dumps({"instances": records[:1]}).encode()
    thousand = json.dumps({"instances": records}).encode()

    env = {**os.environ}
    env.pop("BAYESLIFT_API_TOKEN", None)
    rows = []
    try:
        for workers in args.workers:
            port = free_port()
            server = subprocess.Popen([sys.executable, "-m", "bayeslift.cli", "serve", "--model", str(model),
                                       "--port", str(port), "--workers", str(workers)], env=env)
            try:
                wait_health(port, server)
                for n_users, body, requests in ((1, one, args.requests), (1000, thousand, args.big_requests)):
                    for clients in (1, 8, 64):
                        row = {"workers": workers, **scenario(port, body, n_users, clients, requests, args.time_cap)}
                        rows.append(row)
                        print(f"{workers} worker(s)  {n_users:>5} users/request  {clients:>3} clients  "
                              f"{row['requests']:>5} requests  p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  "
                              f"{row['requests_per_s']:8.0f} req/s  {row['users_per_s']:9.0f} users/s"
                              + (f"  ERRORS {row['errors']}" if row["errors"] else ""), flush=True)
            finally:
                server.terminate()
                server.wait(timeout=20)
        runinfo.write_output(args.out, {"model": served, "rows": rows}, run)
    finally:
        tmp.cleanup()


if __name__ == "__main__":
    main()
