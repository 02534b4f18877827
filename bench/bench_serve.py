"""Load test of `bayeslift serve` on loopback: latency percentiles, requests/s and users/s.

Starts the real server as a subprocess, then drives it from a second process (threads with keep-alive
http.client connections). Bounded: a fixed number of requests per scenario and a time cap on each.
Uses results/surrogate when present, else trains the small truth surrogate the tests use.

    python bench/bench_serve.py [--model DIR] [--requests 2000] [--big-requests 200] [--time-cap 20]
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def build_truth_surrogate(out: Path) -> Path:
    """The tests' truth surrogate (tests/conftest.py truth_surrogate_dir): trained on simulator truth, no R."""
    from bayeslift.surrogate.truth import train_truth_surrogate

    return train_truth_surrogate(out, source="simulator truth (bench)")


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


def _client(port, body, n_requests, deadline, latencies, errors):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    for _ in range(n_requests):
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        conn.request("POST", "/predict", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        latencies.append(time.perf_counter() - t0)
        if resp.status != 200:
            errors.append(resp.status)
    conn.close()


def run_load(port: int, body: bytes, clients: int, requests: int, time_cap: float, queue) -> None:
    """In the load-generator process: ``requests`` in all, split over ``clients`` keep-alive threads."""
    _client(port, body, 5, time.perf_counter() + 5, [], [])  # warm-up
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]
    latencies: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + time_cap
    threads = [threading.Thread(target=_client, args=(port, body, n, deadline, latencies, errors))
               for n in per_client]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((latencies, errors, time.perf_counter() - t0))


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
    parser.add_argument("--time-cap", type=float, default=20.0, help="seconds per scenario at most")
    args = parser.parse_args()

    from bayeslift.simulate import simulate_new_users

    tmp = tempfile.TemporaryDirectory(prefix="bench_serve_")
    model = Path(args.model)
    if not (model / "manifest.json").exists():
        print(f"{model} not found; training the small truth surrogate ...", flush=True)
        model = build_truth_surrogate(Path(tmp.name) / "surrogate")

    users, _ = simulate_new_users(1000, seed=7)
    records = json.loads(users.to_json(orient="records", double_precision=15))
    one = json.dumps({"instances": records[:1]}).encode()
    thousand = json.dumps({"instances": records}).encode()

    port = free_port()
    env = {**os.environ}
    env.pop("BAYESLIFT_API_TOKEN", None)
    server = subprocess.Popen([sys.executable, "-m", "bayeslift.cli", "serve", "--model", str(model),
                               "--port", str(port)], env=env)
    try:
        wait_health(port, server)
        rows = []
        for n_users, body, requests in ((1, one, args.requests), (1000, thousand, args.big_requests)):
            for clients in (1, 8, 64):
                row = scenario(port, body, n_users, clients, requests, args.time_cap)
                rows.append(row)
                print(f"{n_users:>5} users/request  {clients:>3} clients  {row['requests']:>5} requests  "
                      f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  "
                      f"{row['requests_per_s']:8.0f} req/s  {row['users_per_s']:9.0f} users/s"
                      + (f"  ERRORS {row['errors']}" if row["errors"] else ""), flush=True)
        print(json.dumps({"cpu_count": os.cpu_count(), "results": rows}, indent=1))
    finally:
        server.terminate()
        server.wait(timeout=10)
        tmp.cleanup()


if __name__ == "__main__":
    main()
