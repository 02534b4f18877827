"""Pipeline benchmark: fit time per back-end, surrogate vs R posterior_epred rows/s, fidelity R^2.

Everything runs side by side in one process on the same simulated users (R through rpy2), so the
ratios are comparable even on a noisy shared machine. Prints figures and writes bench/results/bench_pipeline.json
(``--out``: one row per back-end, the settings and the run, bench/runinfo.py); asserts nothing.

    python bench/bench_pipeline.py --n 20000 --backends rstanarm brms
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bayeslift.data import FeatureSpec
from bayeslift.prepare import prepare_training_data
from bayeslift.scoring import UpliftScorer
from bayeslift.simulate import COLUMNS, simulate_history
from bayeslift.surrogate import SurrogateConfig, train_surrogate_model
from bayeslift.surrogate.train import r_squared

import runinfo

REPO = Path(__file__).resolve().parents[1]


def r_session():
    import rpy2.robjects as ro

    ro.r('options(browser = "false")')  # rpy2 looks interactive: rstan would try to open a progress page
    ro.r(f'.libPaths(c("{REPO / "R" / ".rlib"}", .libPaths())); library(bayeslift)')  # `make install`'s library
    return ro.r


def run_backend(r, backend: str, work: Path, args) -> dict:
    out = work / backend
    out.mkdir()
    cache = REPO / ".cache" / "brms"
    r(f"""
      spec <- read_feature_spec("{work / 'spec.json'}")
      train <- read_prepared("{work / 'train.csv'}", spec); train$split <- "train"
      holdout <- read_prepared("{work / 'holdout.csv'}", spec); holdout$split <- "holdout"
      t0 <- Sys.time()
      model <- fit_causal_model(train, spec, "{backend}", chains = 2, iter = {args.iter}, seed = 1, cores = 2
                                {", cache_dir = '" + str(cache) + "'" if backend == "brms" else ""})
      fit_seconds <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
      problems <- diagnostic_problems(model_diagnostics(model))
      users <- holdout[seq_len(min(nrow(holdout), {args.r_users})), ]
      t0 <- Sys.time()
      draws <- counterfactual_draws(model, users); n_draws <- nrow(draws$treated)
      post_mean <- colMeans(draws$treated) - colMeans(draws$control)
      epred_seconds <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
      cf <- export_counterfactuals(model, rbind(train, holdout))
      write_csv_atomic(cf$train_data, "{out / 'train_data.csv'}")
      write_csv_atomic(cf$labels, "{out / 'labels.csv'}")
      write_csv_atomic(cf$uplift, "{out / 'uplift.csv'}")
    """)
    fit_seconds = float(r["fit_seconds"][0])
    epred_seconds = float(r["epred_seconds"][0])
    n_r_users = int(r("nrow(users)")[0])
    n_draws = int(r["n_draws"][0])
    r_uplift = np.array(r["post_mean"])
    problems = list(r["problems"])

    t0 = time.perf_counter()
    manifest = train_surrogate_model(out / "train_data.csv", out / "labels.csv", out / "uplift.csv", work / "spec.json",
                                     out / "surrogate", SurrogateConfig(fidelity_floor=0.0), threads=1)
    train_seconds = time.perf_counter() - t0
    scorer = UpliftScorer.load(out / "surrogate")
    spec = FeatureSpec.from_json(work / "spec.json")
    holdout = pd.read_csv(work / "holdout.csv", dtype={c: str for c in spec.categorical})
    same_users = holdout.head(n_r_users)
    surrogate_uplift = scorer.predict(same_users)["uplift"].to_numpy()
    big = pd.concat([holdout] * max(1, args.surrogate_rows // len(holdout)), ignore_index=True)
    scorer.predict(big.head(1000))  # warm-up
    t0 = time.perf_counter()
    scorer.predict(big)
    surrogate_seconds = time.perf_counter() - t0
    # Both sides predict two rows (treated and control) per user.
    r_rows_per_s = 2 * n_r_users / epred_seconds
    nn_rows_per_s = 2 * len(big) / surrogate_seconds
    return {
        "backend": backend,
        "fit_s": fit_seconds,
        "diagnostics": "passed" if not problems else "; ".join(problems),
        "r_epred_rows_per_s": r_rows_per_s,
        "surrogate_rows_per_s": nn_rows_per_s,
        "speedup": nn_rows_per_s / r_rows_per_s,
        "draws": n_draws,
        "r_users": n_r_users,
        "surrogate_users": len(big),
        "surrogate_hidden": scorer.surrogate.spend_net.net[0].out_features,
        "surrogate_train_s": train_seconds,
        "fidelity_r2_holdout": manifest["fidelity"]["holdout"]["r2_uplift"],
        "r2_same_users_vs_r": r_squared(r_uplift, surrogate_uplift),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="simulated users in the history")
    parser.add_argument("--iter", type=int, default=1000, help="MCMC iterations per chain (2 chains)")
    parser.add_argument("--backends", nargs="+", default=["rstanarm", "brms"])
    parser.add_argument("--r-users", type=int, default=2000, help="users R predicts for the rows/s figure")
    parser.add_argument("--surrogate-rows", type=int, default=1_000_000, help="users the surrogate scores for rows/s")
    parser.add_argument("--out", default=runinfo.default_out("bench_pipeline"), help="the output file (JSON)")
    args = parser.parse_args()
    run = runinfo.start("bench_pipeline", args)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)  # as batch scoring does
    r = r_session()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        history, _ = simulate_history(args.n, seed=1)
        history.to_csv(work / "history.csv", index=False)
        prepare_training_data(work / "history.csv", COLUMNS, 0.3, 1, work / "train.csv", work / "holdout.csv", work / "spec.json")
        rows = [run_backend(r, backend, work, args) for backend in args.backends]
    table = pd.DataFrame(rows).set_index("backend")
    print(f"\nbayeslift pipeline benchmark: {args.n} simulated users (70% fit), 2 chains x {args.iter} iterations, 2 cores")
    with pd.option_context("display.float_format", "{:,.4g}".format, "display.width", 200):
        print(table.T.to_string())
    runinfo.write_output(args.out, {"settings": {"n": args.n, "fitted_share": 0.7, "chains": 2, "iter": args.iter,
                                                 "cores": 2}, "rows": rows}, run)


if __name__ == "__main__":
    main()
