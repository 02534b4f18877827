"""Benchmark of the uplift models (make bench-eval).

1. Hillstrom spend (any e-mail vs no e-mail), ``--splits`` paired random 70/30 splits stratified by arm:
   Qini gain per 1,000 users on the 30% (mean +- sd over splits) and win rate vs random ranking (share of
   splits where the model's Qini gain beats the random ranking's on the same split) for every baseline,
   random, and the Bayesian hurdle model (rstanarm through ``Rscript`` on R/lib, short chains, trained on
   a stratified subsample of the 70%, on the first ``--bayes-splits`` splits only: MCMC is the slow part).
2. Simulator: sqrt-PEHE of every model (Bayesian included) on fresh simulated users with known uplift.

Writes bench/results/bench_eval.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from bayeslift.baselines import BASELINE_NAMES, make_baseline  # noqa: E402
from bayeslift.data import FeatureSpec  # noqa: E402
from bayeslift.evaluation import ranking_metrics, truth_metrics  # noqa: E402
from bayeslift.hillstrom import COLUMNS as H_COLUMNS, hillstrom_history  # noqa: E402
from bayeslift.simulate import COLUMNS as S_COLUMNS, simulate_history  # noqa: E402

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
for (f in Sys.glob(file.path(args[1], "R", "lib", "*.R"))) source(f)
spec <- read_feature_spec(args[2])
train <- read_prepared(args[3], spec)
users <- read_prepared(args[4], spec)
users$split <- "holdout"
model <- fit_causal_model(train, spec, backend = "rstanarm", chains = 2L, iter = as.integer(args[6]),
                          seed = 1L, cores = 2L, adapt_delta = 0.9)
out <- export_counterfactuals(model, users, chunk_size = 5000L)
data.table::fwrite(out$uplift, args[5])
"""


def bayes_uplift(spec: FeatureSpec, train: pd.DataFrame, users: pd.DataFrame, iter_: int) -> np.ndarray:
    """Posterior-mean uplift of ``users`` from the rstanarm hurdle model fitted on ``train`` (via Rscript)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec.to_json(tmp / "spec.json")
        train.to_csv(tmp / "train.csv", index=False)
        users.to_csv(tmp / "users.csv", index=False)
        (tmp / "fit.R").write_text(R_SCRIPT)
        subprocess.run(["Rscript", str(tmp / "fit.R"), str(REPO), str(tmp / "spec.json"), str(tmp / "train.csv"),
                        str(tmp / "users.csv"), str(tmp / "uplift.csv"), str(iter_)], check=True,
                       capture_output=True, text=True)
        out = pd.read_csv(tmp / "uplift.csv")
    return out.set_index(spec.id).loc[users[spec.id], "uplift_mean"].to_numpy()


def _spec(columns, frame):
    spec = FeatureSpec.from_columns(columns)
    spec.levels = {c: sorted(frame[c].astype(str).unique()) for c in spec.categorical}
    return spec


def _stratified_subsample(frame, n, seed):
    if n is None or n >= len(frame):
        return frame
    strata = [frame["treatment"], frame["spend"].gt(0)]
    return pd.concat([g.sample(n=max(2, int(round(n * len(g) / len(frame)))), random_state=seed)
                      for _, g in frame.groupby(strata)])


def bench_hillstrom(path, n_splits, bayes_splits, bayes_n, bayes_iter, n_jobs, sample_n=None):
    data = hillstrom_history(pd.read_csv(path), "any", sample_n=sample_n, seed=0)
    spec = _spec(H_COLUMNS, data)
    rows = []
    for s in range(n_splits):
        rng = np.random.default_rng(1000 + s)
        hold = np.zeros(len(data), bool)
        for arm in (0, 1):
            idx = np.flatnonzero(data["treatment"].to_numpy() == arm)
            hold[rng.choice(idx, int(round(0.3 * len(idx))), replace=False)] = True
        train, test = data[~hold], data[hold]
        preds = {}
        t0 = time.time()
        for name in [*BASELINE_NAMES, "random"]:
            m = make_baseline(name, random_state=s, n_jobs=n_jobs, categorical=spec.categorical, log1p=spec.log1p)
            preds[name] = m.fit(train[spec.features], train["treatment"], train["spend"]).predict(test[spec.features])
        if s < bayes_splits:
            tb = time.time()
            preds["bayesian"] = bayes_uplift(spec, _stratified_subsample(train, bayes_n, s), test, bayes_iter)
            print(f"  split {s}: bayesian fit {time.time() - tb:.0f} s", flush=True)
        for name, p in preds.items():
            q = ranking_metrics(p, test["treatment"], test["spend"], n_bootstrap=0)["qini_gain"]
            rows.append({"split": s, "model": name, "qini_gain": q})
        print(f"split {s}: {time.time() - t0:.0f} s", flush=True)
    res = pd.DataFrame(rows)
    rand = res[res.model == "random"].set_index("split")["qini_gain"]
    summary = []
    for name, g in res.groupby("model", sort=False):
        g = g.set_index("split")["qini_gain"]
        summary.append({"model": name, "n_splits": len(g), "qini_gain_mean": g.mean(), "qini_gain_sd": g.std(ddof=1),
                        "win_rate_vs_random": float((g > rand.loc[g.index]).mean()) if name != "random" else np.nan})
    return pd.DataFrame(summary), res


def bench_simulator(n_train, n_test, bayes_iter, n_jobs, with_bayes=True):
    hist, _ = simulate_history(n_train, seed=21)
    users, truth = simulate_history(n_test, seed=22, id_start=10**6)
    spec = _spec(S_COLUMNS, hist)
    true = truth["true_uplift"].to_numpy()
    rows = []
    for name in [*BASELINE_NAMES, "random"]:
        m = make_baseline(name, n_jobs=n_jobs, categorical=spec.categorical, log1p=spec.log1p)
        p = m.fit(hist[spec.features], hist["campaign"], hist["spend"]).predict(users[spec.features])
        rows.append({"model": name, **truth_metrics(p, true)})
    if with_bayes:
        p = bayes_uplift(spec, hist, users, bayes_iter)
        rows.append({"model": "bayesian", **truth_metrics(p, true)})
    rows.append({"model": "zero (predict 0)", **truth_metrics(np.zeros_like(true), true)})
    rows.append({"model": "constant true ATE", **truth_metrics(np.full_like(true, true.mean()), true)})
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hillstrom", default=str(REPO.parent / "shared" / "data" / "hillstrom.csv"))
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--sample-n", type=int, default=None, help="stratified Hillstrom sample (default: all 64,000)")
    ap.add_argument("--bayes-splits", type=int, default=3, help="splits on which the Bayesian model is fitted")
    ap.add_argument("--bayes-n", type=int, default=12000, help="stratified subsample of the 70%% for MCMC")
    ap.add_argument("--bayes-iter", type=int, default=400)
    ap.add_argument("--sim-train", type=int, default=5000)
    ap.add_argument("--sim-test", type=int, default=5000)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "bench_eval.json"))
    a = ap.parse_args(argv)
    pd.set_option("display.width", 160)
    out = {"settings": vars(a)}
    t0 = time.time()
    sim = bench_simulator(a.sim_train, a.sim_test, a.bayes_iter, a.n_jobs, with_bayes=a.bayes_splits > 0)
    print(f"\nSimulator ({a.sim_train} train / {a.sim_test} fresh users), sqrt-PEHE:\n{sim.round(3).to_string(index=False)}")
    out["simulator"] = sim.to_dict(orient="records")
    if Path(a.hillstrom).exists():
        summ, per_split = bench_hillstrom(a.hillstrom, a.splits, a.bayes_splits, a.bayes_n, a.bayes_iter, a.n_jobs,
                                          a.sample_n)
        print(f"\nHillstrom spend, any e-mail vs none, {a.splits} paired 70/30 splits; Qini gain per 1,000 users "
              f"(Bayesian on {min(a.bayes_splits, a.splits)} splits, {a.bayes_n} train rows, {a.bayes_iter} iter):\n"
              f"{summ.round(3).to_string(index=False)}")
        out["hillstrom"] = summ.to_dict(orient="records")
        out["hillstrom_per_split"] = per_split.to_dict(orient="records")
    else:
        print(f"{a.hillstrom} not found: Hillstrom part skipped")
    out["seconds"] = time.time() - t0
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2, default=float))
    print(f"\n{out['seconds']:.0f} s; wrote {a.out}")


if __name__ == "__main__":
    main()
