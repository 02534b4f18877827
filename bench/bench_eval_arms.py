"""Benchmark of several campaign arms on the Hillstrom e-mail test (``make bench-eval-arms``; issue 25).

Hillstrom sent a men's e-mail, a women's e-mail or nothing. On ``--splits`` paired random 70/30 splits
(stratified by arm; ``--train-n`` users of the 70% fitted, stratified by arm and buying, every model the same
rows), the value of each targeting rule on the 30% is estimated by AIPW (``policy_arms.arm_scores``: outcome
models per arm cross-fitted on the 30%, known arm shares) as incremental profit per 1,000 customers, at
config/hillstrom.yaml's economics (margin, cost per e-mail). Rules:

* ``bayeslift``: each customer's arm of highest posterior-mean expected profit (``decide_arms``' expected_profit
  rule), from the default model fitted by the pipeline's own steps (bench/bayes_fit.R);
* ``best_average_arm``: everyone gets the arm of highest average profit on the 70% (difference in means), or
  no e-mail when none pays;
* ``t_learner_causalml`` / ``x_learner_causalml``: causalml's multi-treatment T- and X-learners (LightGBM) with
  the same best-arm rule (installed for the benchmark only: ``--causalml-path``);
* ``all_<arm>`` and ``nobody`` for reference.

Prints mean +- sd over splits and each rule's paired difference to ``best_average_arm`` (mean, sd, share of
splits it wins); writes bench/results/bench_eval_arms.json (``--out``, with bench/runinfo.py's run facts).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

import runinfo
from bench_eval import bayes_fit
from bench_peers import _optional_path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from bayeslift.arms import arm_levels  # noqa: E402
from bayeslift.data import FeatureSpec, validate_training_frame  # noqa: E402
from bayeslift.decide_arms import arm_economics  # noqa: E402
from bayeslift.features import FeatureEncoder  # noqa: E402
from bayeslift.hillstrom import COLUMNS, hillstrom_history  # noqa: E402
from bayeslift.policy import PolicyConfig  # noqa: E402
from bayeslift.policy_arms import arm_scores, best_arm_by_expected_profit, policy_value_arms  # noqa: E402
from bayeslift.prepare import stratified_split  # noqa: E402

REFERENCE = "best_average_arm"


def three_arm_history(path: str) -> tuple[pd.DataFrame, FeatureSpec]:
    """The 64,000 customers with the arm index (0 none, 1 mens, 2 womens) and the learned spec."""
    history = hillstrom_history(pd.read_csv(path), "arms")
    spec = FeatureSpec.from_columns({**COLUMNS, "control": "none"})
    return validate_training_frame(history, spec, path), spec


def fitted_rows(train: pd.DataFrame, spec: FeatureSpec, n: int | None, seed: int) -> pd.DataFrame:
    """A stratified (arm x buyer) sample of ``n`` training users, or all of them."""
    if n is None or n >= len(train):
        return train
    strata = [train[spec.treatment], train[spec.outcome].gt(0)]
    parts = [g.sample(n=max(1, int(round(n * len(g) / len(train)))), random_state=seed)
             for _, g in train.groupby(strata, sort=True)]
    return pd.concat(parts).sort_index()


def bayes_uplift(spec, train, test, iter_: int, seed: int, work: Path) -> tuple[np.ndarray, dict]:
    """The default model's posterior-mean uplift per arm (test users x arms), fitted by bench/bayes_fit.R."""
    run = bayes_fit(spec, train, test, iter_, seed, work)
    summary = run["uplift"]
    held = summary[summary["split"] == "holdout"]
    uplift = held[[f"uplift_{a}_mean" for a in spec.arm_slugs]].to_numpy()
    facts = run["diagnostics"]
    return uplift, {"seconds": run["r_seconds"], "passed": facts["passed"], "problems": facts["problems"]}


def causalml_uplift(learners, Xtr, arm_tr, ytr, Xte, n_arms: int) -> dict[str, np.ndarray]:
    """Each causalml learner's uplift per arm (test users x arms), arms in index order."""
    out = {}
    for name, make in learners.items():
        model = make()
        model.fit(X=Xtr, treatment=arm_tr.astype(str), y=ytr)
        pred = np.asarray(model.predict(Xte))  # columns: the treatment groups in sorted order, here "1".."K"
        out[name] = pred.reshape(len(Xte), n_arms)
    return out


def causalml_multiarm(path):
    """causalml's multi-treatment T- and X-learners with LightGBM, or {} when causalml does not import."""
    _optional_path(path)
    try:
        from causalml.inference.meta import BaseTRegressor, BaseXRegressor
        from lightgbm import LGBMRegressor
    except Exception as exc:  # noqa: BLE001 - optional peer
        print(f"causalml unavailable ({type(exc).__name__}: {exc}); its learners skipped")
        return {}

    def lgbm():
        return LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=20, verbose=-1,
                             n_jobs=1, random_state=0)
    return {"t_learner_causalml": lambda: BaseTRegressor(learner=lgbm(), control_name="0"),
            "x_learner_causalml": lambda: BaseXRegressor(learner=lgbm(), control_name="0")}


def best_average_arm(train: pd.DataFrame, spec: FeatureSpec, econ) -> int:
    """The arm of highest average profit on the training users (difference in means), 0 when none pays."""
    means = train.groupby(spec.treatment)[spec.outcome].mean()
    profit = [econ.margins[k - 1] * (means[k] - means[0]) - econ.costs[k - 1] for k in range(1, econ.n_arms + 1)]
    return 0 if max(profit) <= 0 else int(np.argmax(profit)) + 1


def one_split(data, spec, econ, s: int, a, learners, work_root: Path) -> tuple[list[dict], dict]:
    hold = stratified_split(data[spec.treatment].to_numpy(), 0.3, seed=2000 + s, names=arm_levels(spec))
    train = fitted_rows(data[~hold], spec, a.train_n, seed=s)
    test = data[hold]
    k = spec.n_arms
    encoder = FeatureEncoder.fit(spec, train)
    Xtr, Xte = encoder.transform(train, dtype=np.float64), encoder.transform(test, dtype=np.float64)
    arm_te, y_te = test[spec.treatment].to_numpy(), test[spec.outcome].to_numpy(dtype=float)
    scores = arm_scores(Xte, arm_te, y_te, k, method="aipw", n_folds=5, outcome_model="lightgbm", seed=s)
    rules = {"nobody": np.zeros(len(test), dtype=int), REFERENCE: np.full(len(test), best_average_arm(train, spec, econ))}
    rules.update({f"all_{a_}": np.full(len(test), j + 1) for j, a_ in enumerate(spec.arm_slugs)})
    facts = {}
    if a.bayes:
        uplift, facts = bayes_uplift(spec, train, test, a.bayes_iter, s + 1, work_root / f"split_{s}")
        rules["bayeslift"] = best_arm_by_expected_profit(uplift, econ)
    for name, uplift in causalml_uplift(learners, Xtr, train[spec.treatment].to_numpy(),
                                        train[spec.outcome].to_numpy(dtype=float), Xte, k).items():
        rules[name] = best_arm_by_expected_profit(uplift, econ)
    rows = []
    for name, choice in rules.items():
        v = policy_value_arms(choice, scores, econ)
        shares = np.bincount(choice, minlength=k + 1) / len(choice)
        rows.append({"split": s, "rule": name, "value_per_1000": v["value"], "se": v["se"],
                     **{f"share_{lvl}": float(sh) for lvl, sh in zip(arm_levels(spec), shares)}})
    return rows, facts


def summarize(per_split: pd.DataFrame) -> pd.DataFrame:
    ref = per_split[per_split.rule == REFERENCE].set_index("split")["value_per_1000"]
    out = []
    for name, g in per_split.groupby("rule", sort=False):
        v = g.set_index("split")["value_per_1000"]
        diff = v - ref.loc[v.index]
        out.append({"rule": name, "n_splits": len(v), "value_mean": v.mean(), "value_sd": v.std(ddof=1),
                    "diff_vs_best_average_arm_mean": diff.mean(), "diff_sd": diff.std(ddof=1),
                    "wins_vs_best_average_arm": float((diff > 0).mean()) if name != REFERENCE else np.nan})
    return pd.DataFrame(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hillstrom", default=str(REPO.parent / "shared" / "data" / "hillstrom.csv"))
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--train-n", type=int, default=None, help="users of each 70%% fitted (default: all 44,800)")
    ap.add_argument("--bayes-iter", type=int, default=2000, help="MCMC iterations per chain (2 chains)")
    ap.add_argument("--no-bayes", dest="bayes", action="store_false", help="peers only (a quick look)")
    ap.add_argument("--causalml-path", default="/tmp/causalml_target")
    ap.add_argument("--work-dir", default=None, help="keep every split's fit outputs here (default: a temp dir)")
    ap.add_argument("--out", default=runinfo.default_out("bench_eval_arms"), help="the output file (JSON)")
    a = ap.parse_args(argv)
    run = runinfo.start("bench_eval_arms", a)
    policy = yaml.safe_load((REPO / "config" / "hillstrom.yaml").read_text())["policy"]
    data, spec = three_arm_history(a.hillstrom)
    econ = arm_economics(PolicyConfig.from_config(policy), spec.arms, spec.arm_slugs)
    learners = causalml_multiarm(a.causalml_path)
    rows, fits = [], []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work_root = Path(a.work_dir or tmp)
        for s in range(a.splits):
            t_split = time.time()
            split_rows, facts = one_split(data, spec, econ, s, a, learners, work_root)
            rows += split_rows
            if facts:
                fits.append({"split": s, **facts})
            values = ", ".join(f"{r['rule']} {r['value_per_1000']:.1f}" for r in split_rows)
            print(f"split {s} ({time.time() - t_split:.0f} s): {values}", flush=True)
    per_split = pd.DataFrame(rows)
    summary = summarize(per_split)
    pd.set_option("display.width", 200)
    n_fit = a.train_n or int(round(0.7 * len(data)))
    print(f"\nHillstrom three arms ({', '.join(arm_levels(spec))}), {a.splits} paired 70/30 splits, {n_fit} users "
          f"fitted; AIPW profit per 1,000 customers on the 30% (margin {policy['margin']}, cost "
          f"{policy['cost_per_contact']} per e-mail):\n{summary.round(2).to_string(index=False)}")
    out = {"settings": {**vars(a), "policy": policy, "n_users": len(data), "n_fitted": n_fit},
           "summary": summary.to_dict(orient="records"), "per_split": per_split.to_dict(orient="records"),
           "bayes_fits": fits, "seconds": time.time() - t0}
    runinfo.write_output(a.out, out, run)


if __name__ == "__main__":
    main()
