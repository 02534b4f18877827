"""Accuracy benchmark over the simulator's scenarios (make bench-accuracy).

For every scenario in ``bayeslift.simulate.SCENARIOS``, side by side in one run: fit on ``--n-train``
simulated users, score ``--n-test`` fresh held-out users of the same scenario, and report sqrt-PEHE, ATE
error (mean predicted uplift - true mean uplift), coverage of the 90% per-user uplift intervals and whether
the 90% ATE interval covers the true ATE (Bayesian models only: the baselines give no intervals), and fit
times. Models: the Bayesian hurdle model (rstanarm), each variant a config ``model`` section fitted by the pipeline's
own code (bench/bench_fit.R, ``bayeslift::fit_configured_model()``; ``VARIANT_MODELS``), as chosen by
``--bayes-models``: the default options,
splines (``flexible``), ``shrinkage = "horseshoe"``, both (``flexible_horseshoe``), ``shrinkage = "normal"`` at
its default scale (``normal``, ``flexible_normal``) and at other ``shrinkage_scale`` values (``normal_05``: 0.5,
``normal_025``, ``normal_005``), and what ``model: auto`` keeps by PSIS-LOO between a model and the same with
splines (``auto``: default prior, plus propensity on the confounded scenario; ``auto_horseshoe``: the horseshoe
prior; ``auto_normal``: the normal prior; ``auto_normal_df5``: config/accurate.yaml's model section, ``flexible_normal_df5``), the
LOO stack of the no-effect model, horseshoe and flexible horseshoe
(``stack_horseshoe_null``, what ``auto_combine: stack`` fits with ``shrinkage: horseshoe``), and the
latter mixed by pseudo-BMA+ weights instead (``bma_horseshoe_null``, ``auto_combine: pseudo_bma``); the surrogate of each (trained on the
posterior of the training users with config/config.yaml's surrogate settings); T-/S-learner LightGBM and the
linear interaction model of ``bayeslift.baselines``; causalml's X-learner and DR-learner when causalml
imports (it is not a dependency: ``--causalml-path`` points at a throwaway install, e.g.
``pip install --target /tmp/causalml_target causalml``). ``--replications`` repeats every scenario on
fresh samples and averages: the coverage of per-user intervals from one training sample moves with that
sample's ATE error, so it is judged over repeated samples; the summary also gives the share of samples in
which each model had the lowest sqrt-PEHE (``best_share``) and in which its coverage fell within 85-97%
(``coverage_in_band``).

Writes bench/results/bench_accuracy.json and prints a table.
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
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from bayeslift.baselines import make_baseline  # noqa: E402
from bayeslift.data import FeatureSpec  # noqa: E402
from bayeslift.scoring import UpliftScorer  # noqa: E402
from bayeslift.simulate import CHANNELS, COLUMNS, SCENARIOS, simulate_history  # noqa: E402
from bayeslift.surrogate import SurrogateConfig, SurrogateFidelityError, train_surrogate_model  # noqa: E402

PIPELINE_CONFIG = REPO / "config" / "config.yaml"
#: variants that are a config preset's model: their surrogates train with that preset's surrogate section too
PRESETS = {"auto_normal_df5": REPO / "config" / "accurate.yaml", "flexible_normal_df5": REPO / "config" / "accurate.yaml"}

#: the R side: each variant's model section fitted by the pipeline's own code (bayeslift::fit_configured_model())
BENCH_FIT_R = REPO / "bench" / "bench_fit.R"

#: Bayesian variants the bench can fit (``--bayes-models``), each as the config's ``model`` section sets it (keys
#: left out take the package's defaults, which are config/config.yaml's); presets are read from their file.
VARIANT_MODELS = {
    "default": {}, "flexible": {"flexible": True}, "horseshoe": {"shrinkage": "horseshoe"},
    "flexible_horseshoe": {"flexible": True, "shrinkage": "horseshoe"}, "normal": {"shrinkage": "normal"},
    "flexible_normal": {"flexible": True, "shrinkage": "normal"},
    "normal_05": {"shrinkage": "normal", "shrinkage_scale": 0.5},
    "normal_025": {"shrinkage": "normal", "shrinkage_scale": 0.25},
    "normal_005": {"shrinkage": "normal", "shrinkage_scale": 0.05},
    "flexible_normal_df5": {"flexible": True, "shrinkage": "normal", "spline_df": 5},
    "auto": {"auto": True}, "auto_horseshoe": {"auto": True, "shrinkage": "horseshoe"},
    "auto_normal": {"auto": True, "shrinkage": "normal"},
    "auto_normal_df5": "accurate.yaml",
    "stack_horseshoe_null": {"auto": True, "auto_combine": "stack", "shrinkage": "horseshoe"},
    "bma_horseshoe_null": {"auto": True, "auto_combine": "pseudo_bma", "shrinkage": "horseshoe"},
}
BAYES_MODELS = tuple(VARIANT_MODELS)


def variant_model_section(variant, iter_, with_propensity):
    """The ``model`` section of ``variant``: the bench's sampler settings, then the variant's keys (a preset's
    ``model`` section for ``auto_normal_df5``); ``auto`` adds the propensity covariate on confounded data."""
    keys = VARIANT_MODELS[variant]
    if isinstance(keys, str):
        keys = yaml.safe_load((REPO / "config" / keys).read_text())["model"]
    section = {"backend": "rstanarm", "chains": 2, "iter": iter_, "seed": 1, **keys}
    if variant == "auto" and with_propensity:
        section["propensity"] = True
    return section


def bayes_models(spec, train, users, iter_, with_propensity, surrogate_config, models, with_surrogate=True,
                 calibrate=0):
    """Fit the Bayesian ``models`` in R; train the surrogate of each on the posterior of the training users
    (as rule surrogate_model does, with the settings ``surrogate_config(variant)`` returns) and score the
    held-out users with it, unless ``with_surrogate`` is false. ``calibrate`` (a number of bootstrap replicates, 0 for none) adds each model with calibrated per-user
    intervals (``<name>+cal``)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec.to_json(tmp / "spec.json")
        train.to_csv(tmp / "train.csv", index=False)
        users.to_csv(tmp / "users.csv", index=False)
        sections = {m: variant_model_section(m, iter_, with_propensity) for m in models}
        (tmp / "variants.json").write_text(json.dumps(sections))
        proc = subprocess.run(["Rscript", str(BENCH_FIT_R), str(REPO), str(tmp / "spec.json"), str(tmp / "train.csv"),
                               str(tmp / "users.csv"), str(tmp / "variants.json"), str(tmp / "out.json"),
                               str(tmp / "export") if with_surrogate else "", str(calibrate)],
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        out = json.loads((tmp / "out.json").read_text())
        trained = {}  # (fitted model, settings) -> its surrogate's scores (an auto pick is also a model of its own)
        for name, res in out["models"].items():
            res["surrogate"] = None
            if not with_surrogate:
                continue
            config = surrogate_config(name)
            key = (res["export"], repr(config))
            if key in trained:
                res["surrogate"] = trained[key]
                continue
            export = tmp / "export" / res["export"]
            t0 = time.perf_counter()
            try:
                train_surrogate_model(export / "train_data.csv", export / "labels.csv", export / "uplift.csv",
                                      tmp / "spec.json", export / "surrogate", config)
            except SurrogateFidelityError as exc:  # the pipeline would stop here; the table says so
                print(f"  surrogate of {name}: {exc}", flush=True)
                trained[key] = None
                continue
            scored = UpliftScorer.load(export / "surrogate").score_frame(users, "held-out users")
            res["surrogate"] = trained[key] = {
                "uplift": scored["uplift"].to_numpy(), "lower": scored["uplift_lower"].to_numpy(),
                "upper": scored["uplift_upper"].to_numpy(), "seconds": time.perf_counter() - t0}
        return out


def variant_surrogate_config(variant):
    """The surrogate settings the pipeline would use for ``variant``: config/config.yaml's, updated by its
    preset's (``PRESETS``) where it has one."""
    settings = yaml.safe_load(PIPELINE_CONFIG.read_text())["surrogate"]
    if variant in PRESETS:
        settings.update(yaml.safe_load(PRESETS[variant].read_text()).get("surrogate") or {})
    return SurrogateConfig(**settings)


def causalml_learners(path):
    if path:
        sys.path.insert(0, path)
    try:
        from causalml.inference.meta import BaseDRRegressor, BaseXRegressor
        from lightgbm import LGBMRegressor
    except Exception as exc:  # noqa: BLE001 - optional
        print(f"causalml unavailable ({type(exc).__name__}: {exc}); X-/DR-learner skipped")
        return {}

    def lgbm():
        return LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=20, verbose=-1,
                             n_jobs=1, random_state=0)
    return {"x_learner_causalml": lambda: BaseXRegressor(learner=lgbm()),
            "dr_learner_causalml": lambda: BaseDRRegressor(learner=lgbm())}


def metrics(pred, true, lower=None, upper=None, ate_lo=None, ate_hi=None):
    out = {"sqrt_pehe": float(np.sqrt(np.mean((pred - true) ** 2))), "ate_error": float(np.mean(pred) - np.mean(true))}
    out["coverage_90"] = float(np.mean((lower <= true) & (true <= upper))) if lower is not None else None
    out["ate_covered"] = bool(ate_lo <= true.mean() <= ate_hi) if ate_lo is not None else None
    return out


def bench_scenario(name, n_train, n_test, iter_, learners, seed, surrogate_config, bayes=BAYES_MODELS,
                   with_surrogate=True, calibrate=0):
    hist, _ = simulate_history(n_train, seed=seed, scenario=name)
    users, truth = simulate_history(n_test, seed=seed + 1000, scenario=name, id_start=10**6)
    spec = FeatureSpec.from_columns(COLUMNS)
    spec.levels = {"channel": sorted(CHANNELS)}
    true = truth["true_uplift"].to_numpy()
    X, t, y = hist[spec.features], hist["campaign"].to_numpy(), hist["spend"].to_numpy()
    rows = []
    for base in ("t_lightgbm", "s_lightgbm", "linear_interaction"):
        t0 = time.perf_counter()
        m = make_baseline(base, n_jobs=1, categorical=spec.categorical, log1p=spec.log1p).fit(X, t, y)
        sec = time.perf_counter() - t0
        rows.append({"model": base, **metrics(m.predict(users[spec.features]), true), "fit_s": sec})
    Xn = pd.get_dummies(X, columns=spec.categorical, dtype=float)
    Un = pd.get_dummies(users[spec.features], columns=spec.categorical, dtype=float).reindex(columns=Xn.columns, fill_value=0.0)
    for lname, make in learners.items():
        t0 = time.perf_counter()
        m = make()
        m.fit(X=Xn.to_numpy(), treatment=t, y=y)
        sec = time.perf_counter() - t0
        rows.append({"model": lname, **metrics(np.asarray(m.predict(Un.to_numpy())).ravel(), true), "fit_s": sec})
    if bayes:
        out = bayes_models(spec, hist, users, iter_, name == "confounded", surrogate_config, bayes, with_surrogate,
                           calibrate)
        for pick, weights in (out["weights"] or {}).items():  # an empty R list comes back as []
            print(f"  {pick} weights: " + ", ".join(f"{k} {v:.2f}" for k, v in weights.items()), flush=True)
        calibration = out["calibration"] or {}
        for cal_name, cal in calibration.items():
            covered = " ".join(f"{c:.3f}" for c in np.atleast_1d(cal["coverage_before"]))
            print(f"  {cal_name}: interval scale {cal['scale']:.3f} (the refits' intervals covered {covered}; "
                  f"{cal['seconds']:.0f} s)", flush=True)
        for mname, res in out["models"].items():
            label = f"bayes_{mname}" if res["fitted"] == mname else f"bayes_{mname} ({res['fitted']})"
            rows.append({"model": label,
                         **metrics(np.asarray(res["uplift"]), true, np.asarray(res["lower"]), np.asarray(res["upper"]),
                                   res["ate_q05"], res["ate_q95"]), "fit_s": res["seconds"],
                         "interval_scale": calibration.get(res["export"], {}).get("scale")})
            sur = res["surrogate"]
            if sur is not None:
                rows.append({"model": label.replace("bayes_", "surrogate_", 1),
                             **metrics(sur["uplift"], true, sur["lower"], sur["upper"]), "fit_s": sur["seconds"]})
    return pd.DataFrame(rows).assign(scenario=name, true_ate=float(true.mean()))


#: the issue's goal for the coverage of 90% per-user intervals
COVERAGE_BAND = (0.85, 0.97)


def summarize(table):
    """Mean over replications per scenario and model (the model's name without the LOO pick), with the
    standard error of sqrt-PEHE and of coverage across replications (NaN with one replication), the share
    of replications in which the model had the lowest sqrt-PEHE of all models but surrogates (``best_share``)
    and the median and in-band share of its per-sample coverage: one sample's coverage is bimodal (a
    training sample's ATE error moves every interval together), so a mean in the band can hide samples
    far outside it."""
    t = table.assign(model=table["model"].str.replace(r" \(.*\)$", "", regex=True))
    fitted = ~t["model"].str.startswith("surrogate_")
    lowest = t[fitted].groupby(["scenario", "replication"])["sqrt_pehe"].transform("min")
    t["best"] = (t["sqrt_pehe"] <= lowest.reindex(t.index)).astype(float).where(fitted)
    lo, hi = COVERAGE_BAND
    t["in_band"] = t["coverage_90"].between(lo, hi).astype(float).where(t["coverage_90"].notna())
    g = t.groupby(["scenario", "model"], sort=False)
    out = g.agg(sqrt_pehe=("sqrt_pehe", "mean"), ate_error_rmse=("ate_error", lambda e: float(np.sqrt(np.mean(e ** 2)))),
                best_share=("best", "mean"), coverage_90=("coverage_90", "mean"),
                coverage_median=("coverage_90", "median"), coverage_in_band=("in_band", "mean"),
                ate_covered=("ate_covered", lambda c: c.astype(float).mean()),
                fit_s=("fit_s", "mean"), replications=("sqrt_pehe", "size"))
    out["sqrt_pehe_se"] = g["sqrt_pehe"].std() / np.sqrt(out["replications"])
    out["coverage_se"] = g["coverage_90"].std() / np.sqrt(out["replications"])
    return out.reset_index()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--iter", type=int, default=400, help="MCMC iterations per chain (2 chains)")
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--replications", type=int, default=1,
                    help="independent training samples per scenario (seeds seed + k + 1000 r); coverage is a "
                         "property of repeated samples, one sample's ATE error moves every user's coverage")
    ap.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--bayes-models", nargs="*", default=list(BAYES_MODELS), choices=BAYES_MODELS,
                    help="Bayesian variants to fit (none: --no-bayes)")
    ap.add_argument("--causalml-path", default="/tmp/causalml_target",
                    help="extra sys.path entry holding a throwaway causalml install ('' for none)")
    ap.add_argument("--no-bayes", action="store_true")
    ap.add_argument("--no-surrogate", action="store_true", help="skip training the surrogate of each Bayesian model")
    ap.add_argument("--calibrate", type=int, default=0, metavar="REPLICATES",
                    help="also report each Bayesian model with its per-user intervals calibrated by parametric "
                         "bootstrap (model.calibrate_intervals) on this many replicates (one more fit each)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "bench_accuracy.json"))
    args = ap.parse_args(argv)
    learners = causalml_learners(args.causalml_path)
    bayes = [] if args.no_bayes else args.bayes_models
    tables = []
    for rep in range(args.replications):
        for k, name in enumerate(args.scenarios):
            t0 = time.perf_counter()
            tables.append(bench_scenario(name, args.n_train, args.n_test, args.iter, learners,
                                         args.seed + k + 1000 * rep, variant_surrogate_config, bayes,
                                         with_surrogate=not args.no_surrogate,
                                         calibrate=args.calibrate).assign(replication=rep))
            print(f"{name} (replication {rep + 1}/{args.replications}): {time.perf_counter() - t0:.0f} s", flush=True)
            print(tables[-1].drop(columns=["scenario", "replication"]).to_string(index=False), flush=True)
    table = pd.concat(tables, ignore_index=True)
    cols = ["scenario", "replication", "true_ate", "model", "sqrt_pehe", "ate_error", "coverage_90", "ate_covered", "fit_s",
            "interval_scale"]
    table = table.reindex(columns=cols)
    summary = summarize(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "rows": table.to_dict(orient="records"),
                                          "summary": summary.to_dict(orient="records")}, indent=1))
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
        print(f"\nmean over {args.replications} replication(s):")
        print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
