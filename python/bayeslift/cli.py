"""The ``bayeslift`` command: simulate demo data, score users, print a pipeline summary."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _simulate(args) -> None:
    from .simulate import write_simulated_data

    out, truth = Path(args.out), Path(args.truth)
    write_simulated_data(out / "history.csv", out / "new_users.csv", truth / "history_truth.csv",
                         truth / "new_users_truth.csv", args.n_history, args.n_new_users, args.seed)


def _score(args) -> None:
    from .scoring import score_file

    rows = score_file(args.model, args.input, args.output, chunk_size=args.chunk_size, progress=not args.quiet)
    print(f"scored {rows} users into {args.output}")


def _serve(args) -> None:
    from .policy import PolicyConfig
    from .serving.app import serve
    from .serving.core import ServingConfig

    config = ServingConfig.from_env(max_body_bytes=args.max_body_bytes, max_instances=args.max_instances,
                                    policy=PolicyConfig(cost_per_contact=args.cost_per_contact, margin=args.margin))
    serve(args.model, host=args.host, port=args.port, config=config, workers=args.workers)


def _summary(args) -> None:
    from .summary import format_summary

    print(format_summary(json.loads(Path(args.summary).read_text())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bayeslift", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write simulated campaign data (truth in a separate folder)")
    p.add_argument("--out", default="data/simulated")
    p.add_argument("--truth", default="data/simulated_truth")
    p.add_argument("--n-history", type=int, default=20000)
    p.add_argument("--n-new-users", type=int, default=50000)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_simulate)

    p = sub.add_parser("score", help="score users (CSV or Parquet) with a trained surrogate")
    p.add_argument("--model", default="results/surrogate")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--chunk-size", type=int, default=100_000)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_score)

    p = sub.add_parser("serve", help="HTTP service: POST /predict, GET /health, /metadata, /openapi.json")
    p.add_argument("--model", default="results/surrogate")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--max-body-bytes", type=int, default=None, help="default 1 MiB (env BAYESLIFT_MAX_BODY_BYTES)")
    p.add_argument("--max-instances", type=int, default=None, help="default 10000 (env BAYESLIFT_MAX_INSTANCES)")
    p.add_argument("--cost-per-contact", type=float, default=0.0)
    p.add_argument("--margin", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=1, help="server processes sharing the port (default 1)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("summary", help="print the headline of a pipeline run")
    p.add_argument("summary", nargs="?", default="results/summary.json")
    p.set_defaults(func=_summary)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from .entry import USER_ERRORS

    try:
        args.func(args)
    except USER_ERRORS as exc:
        print(f"bayeslift error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
