"""The ``bayeslift`` command: simulate demo data, score users, serve them over HTTP, check pipeline config files,
print a pipeline summary."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .config_layers import CONFIG_DIR
from .serving.settings import SETTINGS, Setting, SettingError

# `check-config` defaults: the package's config (installed, or the checkout's), else ./config as snakemake finds it
REPO_CONFIG = CONFIG_DIR if (CONFIG_DIR / "config.schema.yaml").exists() else Path("config")


USERS = Setting("users", int, 1)  # simulate's --n-history / --n-new-users


def _setting(name_or_setting):
    """argparse type of a numeric setting: out of range is argparse's usage error (exit 2) naming the flag."""
    setting = SETTINGS[name_or_setting] if isinstance(name_or_setting, str) else name_or_setting

    def parse(text: str):
        try:
            return setting.check(text, "")  # argparse puts the flag in front
        except SettingError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _policy_value(name: str):
    """argparse type checked by PolicyConfig's own rule, so the CLI accepts exactly what the pipeline does."""
    def parse(text: str):
        from .serving.settings import policy_value

        try:
            return policy_value(name, text, "")
        except SettingError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace("must be a number, got", "not a number:")) from None
    return parse


POLICY_FLAGS = ("rule", "cost_per_contact", "margin", "top_k", "prob_threshold", "policy_arms")


def _add_policy_flags(p, env: bool) -> None:
    """The targeting policy's flags (``policy.decide``): the same rules and checks as config ``policy``."""
    from_env = lambda var: f" (env {var})" if env else ""  # noqa: E731
    p.add_argument("--rule", type=_policy_value("rule"), default=None,
                   help="nobody, everybody, top_k, expected_profit, bayes_prob; default expected_profit"
                        + from_env("BAYESLIFT_POLICY_RULE"))
    p.add_argument("--cost-per-contact", type=_policy_value("cost_per_contact"), default=None,
                   help=">= 0, default 0" + from_env("BAYESLIFT_COST_PER_CONTACT"))
    p.add_argument("--margin", type=_policy_value("margin"), default=None, help="> 0, default 1" + from_env("BAYESLIFT_MARGIN"))
    p.add_argument("--top-k", type=_policy_value("top_k"), default=None,
                   help="top_k: share of the holdout above the model's stored uplift threshold, in (0, 1], default 0.2"
                        + from_env("BAYESLIFT_TOP_K"))
    p.add_argument("--prob-threshold", type=_policy_value("prob_threshold"), default=None,
                   help="bayes_prob: minimum P(margin * uplift - cost > 0), in [0, 1], default 0.8"
                        + from_env("BAYESLIFT_PROB_THRESHOLD"))
    p.add_argument("--policy-arms", type=_policy_value("arms"), default=None,
                   help='several campaign arms: JSON {level: {"cost_per_contact": x, "margin": y}} overriding the '
                        "two above per arm" + from_env("BAYESLIFT_POLICY_ARMS"))


def _policy_flags(args) -> dict:
    return {("arms" if name == "policy_arms" else name): getattr(args, name) for name in POLICY_FLAGS}


def _check_listen(host: str, port: int) -> None:
    """Fail with one line, before the model loads, where the server could not listen (uvicorn would log it later)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise SettingError(f"--host {host}: not an address this machine can listen on ({exc})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise SettingError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None


def _writable_output(path: str) -> Path:
    """``--output`` whose folder exists or can be made: fail before the model loads, leaving nothing behind."""
    out = Path(path)
    if out.is_dir():
        raise SettingError(f"--output {path} is a folder; give a file path such as {out / 'scored.csv'}")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise SettingError(f"--output {path}: cannot create its folder, {folder} is a file")
    return out


def _simulate(args) -> None:
    from .simulate import write_simulated_data

    out, truth = Path(args.out), Path(args.truth)
    write_simulated_data(out / "history.csv", out / "new_users.csv", truth / "history_truth.csv",
                         truth / "new_users_truth.csv", args.n_history, args.n_new_users, args.seed)


def _score(args) -> None:
    from .scoring import score_file

    _writable_output(args.output)
    flags = {k: v for k, v in _policy_flags(args).items() if v is not None}
    policy = None
    if flags:
        from .policy import PolicyConfig

        policy = PolicyConfig(**flags)
    rows = score_file(args.model, args.input, args.output, chunk_size=args.chunk_size, progress=not args.quiet,
                      policy=policy)
    print(f"scored {rows} users into {args.output}")


def _allocate(args) -> None:
    from .allocate import allocate_file
    from .policy import PolicyConfig

    _writable_output(args.output)
    flags = {k: v for k, v in _policy_flags(args).items() if v is not None and k != "rule"}
    facts = allocate_file(args.model, args.input, args.output, PolicyConfig(**flags), max_contacts=args.max_contacts,
                          max_spend=args.max_spend)
    print(f"allocated {facts['n_users']} users into {args.output}: contacts {facts['contacts']}, spend "
          f"{facts['spend']:.2f}, expected incremental profit {facts['expected_profit']:.2f}")


def _serve(args) -> None:
    from .serving.app import serve
    from .serving.settings import ServingConfig

    config = ServingConfig.from_env(max_body_bytes=args.max_body_bytes, max_instances=args.max_instances,
                                    body_timeout_s=args.body_timeout_s, policy=_policy_flags(args))
    _check_listen(args.host, args.port)
    serve(args.model, host=args.host, port=args.port, config=config, workers=args.workers)


def _check_config(args) -> None:
    from .config_layers import checked_config

    config = checked_config(args.base, args.schema, args.files)
    for note in config.notes:
        print(note, file=sys.stderr)
    print(f"config OK: {', '.join(args.files)} (presets: {', '.join(config['presets']) or 'none'})")


def _summary(args) -> None:
    from .summary import format_summary

    print(format_summary(json.loads(Path(args.summary).read_text())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bayeslift", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write simulated campaign data (truth in a separate folder)")
    p.add_argument("--out", default="data/simulated")
    p.add_argument("--truth", default="data/simulated_truth")
    p.add_argument("--n-history", type=_setting(USERS), default=20000)
    p.add_argument("--n-new-users", type=_setting(USERS), default=50000)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_simulate)

    p = sub.add_parser("score", help="score users (CSV or Parquet) with a trained surrogate")
    p.add_argument("--model", default="results/surrogate")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--chunk-size", type=_setting("chunk_size"), default=100_000, help="users per chunk (>= 1)")
    p.add_argument("--quiet", action="store_true")
    _add_policy_flags(p, env=False)  # any of them given: a 0/1 treat column, as the pipeline writes
    p.set_defaults(func=_score)

    p = sub.add_parser("allocate", help="several campaign arms: the arm per user of a scored file within a budget "
                                        "(at most N contacts or a spend), solved over arms")
    p.add_argument("--model", default="results/surrogate", help="the model that scored the file (its arms)")
    p.add_argument("--input", required=True, help="a file bayeslift score wrote (CSV or Parquet)")
    p.add_argument("--output", required=True)
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--max-contacts", type=_setting(USERS), default=None, help="at most this many contacts")
    budget.add_argument("--max-spend", type=_policy_value("cost_per_contact"), default=None,
                        help="at most this much spent on contacts (each arm's cost_per_contact)")
    _add_policy_flags(p, env=False)
    p.set_defaults(func=_allocate)

    p = sub.add_parser("serve", help="HTTP service: POST /predict, GET /health, /metadata, /openapi.json")
    p.add_argument("--model", default="results/surrogate")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_setting("port"), default=8080, help="1 to 65535 (default 8080)")
    p.add_argument("--max-body-bytes", type=_setting("max_body_bytes"), default=None,
                   help="1024 to 2^30, default 1 MiB (env BAYESLIFT_MAX_BODY_BYTES)")
    p.add_argument("--max-instances", type=_setting("max_instances"), default=None,
                   help="1 to 10^7, default 10000 (env BAYESLIFT_MAX_INSTANCES)")
    p.add_argument("--body-timeout-s", type=_setting("body_timeout_s"), default=None,
                   help="seconds a client may take to send its headers, then its body, 0.01 to 3600, default 30 "
                        "(env BAYESLIFT_BODY_TIMEOUT_S)")
    _add_policy_flags(p, env=True)
    p.add_argument("--workers", type=_setting("workers"), default=1,
                   help="server processes sharing the port, 1 to 64 (default 1)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("check-config", help="check pipeline config files: YAML syntax (file, line, column) and schema")
    p.add_argument("files", nargs="+", help="config files in the order given to snakemake --configfile")
    p.add_argument("--schema", default=str(REPO_CONFIG / "config.schema.yaml"))
    p.add_argument("--base", default=str(REPO_CONFIG / "config.yaml"), help="the workflow's default config, read first")
    p.set_defaults(func=_check_config)

    p = sub.add_parser("summary", help="print the headline of a pipeline run")
    p.add_argument("summary", nargs="?", default="results/summary.json")
    p.set_defaults(func=_summary)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from .config_check import ConfigError
    from .entry import USER_ERRORS

    try:
        args.func(args)
    except (*USER_ERRORS, SettingError, ConfigError) as exc:
        print(f"bayeslift error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a path that cannot be read or written; the error names it
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"bayeslift error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
