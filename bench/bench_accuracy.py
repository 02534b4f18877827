"""Accuracy benchmark over two suites of scenarios with a known truth (make bench-accuracy).

Suites (``--suite``): ``simulator``, the scenarios of ``bayeslift.simulate.SCENARIOS`` (simulated features);
``hillstrom``, the semi-synthetic scenarios of bench/semisynthetic.py (real Hillstrom covariates, simulated
hurdle outcomes: linear, thresholds, interaction, no_effect, confounded, probability_only; the generator is
apart from the model code and its scenarios are fixed); ``all``, both. For every scenario and training size
(``--sizes``, several in one run), side by side: fit on that many users, score ``--n-test`` held-out users of
the same scenario (fresh simulated users; for hillstrom, rows of the file's held-out pool), and report
sqrt-PEHE, ATE error (mean predicted uplift - true mean uplift), coverage of the 90% per-user uplift intervals
and whether the 90% ATE interval covers the true ATE (models with a posterior only: the other baselines give
no intervals), and fit times.

Models: the Bayesian hurdle model, each variant a config ``model`` section fitted by the pipeline's own code
(bench/bench_fit.R, ``bayeslift::fit_configured_model()``; ``VARIANT_MODELS``, all routed through
``variant_model_section``), as chosen by ``--bayes-models``: ``default`` (config/config.yaml's back-end and
effect group), ``stan`` and ``stan_flexible`` (backend stan, linear or with penalized smooths), and rstanarm
with its default options (``rstanarm``), splines
(``flexible``), ``shrinkage = "horseshoe"``, both (``flexible_horseshoe``), ``shrinkage = "normal"`` at its
default scale (``normal``, ``flexible_normal``) and at other ``shrinkage_scale`` values (``normal_05``: 0.5,
``normal_025``, ``normal_005``), and what ``shape: auto`` keeps by PSIS-LOO between a model and the same with
splines (``auto``: default prior, plus propensity on the confounded scenarios; ``auto_horseshoe``;
``auto_normal``; ``auto_normal_df5``: the accurate preset's model section, ``flexible_normal_df5``), the LOO
stack of the no-effect model, horseshoe and flexible horseshoe (``stack_horseshoe_null``, ``combine: stack``
with horseshoe), the latter mixed by pseudo-BMA+ weights (``bma_horseshoe_null``), backend bcf (``bcf``, with the
propensity on the confounded scenarios); the surrogate of each
(trained on the posterior of the training users with config/config.yaml's surrogate settings). Peers
(bench/bench_peers.py): T-/S-learner LightGBM and the linear interaction model of ``bayeslift.baselines``;
causalml's X- and DR-learner; stochtree's BCF on spend (``bcf_stochtree``) and as a two-part model
(``bcf_hurdle_stochtree``), with its posterior intervals. causalml and stochtree are not dependencies:
``--causalml-path`` and ``--stochtree-path`` point at throwaway installs (``pip install --target
/tmp/causalml_target causalml``, ``... /tmp/stochtree_target stochtree``). ``--replications`` repeats every
scenario on fresh samples and averages: the coverage of per-user intervals from one training sample moves
with that sample's ATE error, so it is judged over repeated samples; the summary also gives the share of
samples in which each model had the lowest sqrt-PEHE (``best_share``) and in which its coverage fell within
85-97% (``coverage_in_band``).

Writes bench/results/bench_accuracy.json (``--out``; with the run: command, date, machine, load,
bench/runinfo.py) and prints a table.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

import runinfo  # noqa: E402
import semisynthetic  # noqa: E402
from bayeslift import simulate  # noqa: E402
from bayeslift.config_check import merge_config  # noqa: E402
from bayeslift.data import FeatureSpec, validate_training_frame  # noqa: E402
from bayeslift.scoring import UpliftScorer  # noqa: E402
from bayeslift.surrogate import SurrogateConfig, SurrogateFidelityError, train_surrogate_model  # noqa: E402
from bench_peers import BCF_VARIANTS, causalml_learners, metrics, peer_rows, stochtree_bcf  # noqa: E402

PIPELINE_CONFIG = REPO / "config" / "config.yaml"
#: variants that are a config preset's model: their surrogates train with that preset's surrogate section too
PRESETS = {"auto_normal_df5": REPO / "config" / "presets" / "accurate.yaml",
           "flexible_normal_df5": REPO / "config" / "presets" / "accurate.yaml"}

#: the R side: each variant's model section fitted by the pipeline's own code (bayeslift::fit_configured_model())
BENCH_FIT_R = REPO / "bench" / "bench_fit.R"

#: ids of held-out users start here (training users' at 1)
HELD_OUT_ID = 10**6


@dataclass(frozen=True)
class Suite:
    """A family of scenarios with a known truth: its column layout and ``draw(n, seed, scenario, held_out) ->
    (history, truth)``."""

    scenarios: tuple
    columns: dict
    draw: Callable


SUITES = {
    "simulator": Suite(tuple(simulate.SCENARIOS), simulate.COLUMNS,
                       lambda n, seed, name, held_out: simulate.simulate_history(
                           n, seed=seed, scenario=name, id_start=HELD_OUT_ID if held_out else 1)),
    "hillstrom": Suite(tuple(semisynthetic.SCENARIOS), semisynthetic.COLUMNS,
                       lambda n, seed, name, held_out: semisynthetic.simulate_history(
                           n, seed=seed, scenario=name, id_start=HELD_OUT_ID if held_out else 1,
                           pool="holdout" if held_out else "train")),
}

#: Bayesian variants the bench can fit (``--bayes-models``): each the ``effect`` group (and ``combine``) of the
#: config's ``model`` section (keys left out keep the package's defaults, which are config/config.yaml's); a
#: preset's model is read from its file (``PRESETS``).
def _effect(combine=None, **effect):
    return {"effect": effect, **({"combine": combine} if combine else {})}


VARIANT_MODELS = {
    "default": {}, "flexible": _effect(shape="flexible"), "horseshoe": _effect(shrinkage="horseshoe"),
    "flexible_horseshoe": _effect(shape="flexible", shrinkage="horseshoe"), "normal": _effect(shrinkage="normal"),
    "flexible_normal": _effect(shape="flexible", shrinkage="normal"),
    "normal_05": _effect(shrinkage="normal", shrinkage_scale=0.5),
    "normal_025": _effect(shrinkage="normal", shrinkage_scale=0.25),
    "normal_005": _effect(shrinkage="normal", shrinkage_scale=0.05),
    "flexible_normal_df5": _effect(shape="flexible", shrinkage="normal", spline_df=5),
    "auto": _effect(shape="auto"), "auto_horseshoe": _effect(shape="auto", shrinkage="horseshoe"),
    "auto_normal": _effect(shape="auto", shrinkage="normal"),
    "auto_normal_df5": "preset",
    "stack_horseshoe_null": _effect("stack", shape="auto", shrinkage="horseshoe"),
    "bma_horseshoe_null": _effect("pseudo_bma", shape="auto", shrinkage="horseshoe"),
    # backend stan: the effect terms' shrinkage scale is learned; flexible adds penalized smooths
    "rstanarm": {}, "stan": {"backend": "stan"}, "stan_flexible": {"backend": "stan", **_effect(shape="flexible")},
    "stan_auto": {"backend": "stan", **_effect(shape="auto")},
    "stan_flexible_df6": {"backend": "stan", **_effect(shape="flexible", spline_df=6)},
    "stan_stack": {"backend": "stan", **_effect("stack", shape="auto")},
    # backend bcf: stochtree's Bayesian causal forests as the pipeline fits them (two-part hurdle for spend)
    "bcf": {"backend": "bcf"},
}
#: variants given the estimated propensity on confounded data (BCF prescribes one for observational data)
WITH_PROPENSITY = ("auto", "bcf")
BAYES_MODELS = tuple(VARIANT_MODELS)


def variant_model_section(variant, iter_, with_propensity):
    """The ``model`` section of ``variant`` as the R side reads it: the bench's sampler settings, then the
    variant's keys (a preset's ``model`` section, ``PRESETS``, for ``auto_normal_df5``); ``auto`` adds the
    propensity covariate on confounded data."""
    keys = VARIANT_MODELS[variant]
    if keys == "preset":
        keys = yaml.safe_load(PRESETS[variant].read_text())["model"] or {}
    # "default" is config/config.yaml's model (its back-end and effect group); the named variants are rstanarm's
    # options unless they name a back-end, shape linear unless they name a shape (the R default is auto)
    pipeline = yaml.safe_load(PIPELINE_CONFIG.read_text())["model"]
    base = ({"backend": pipeline["backend"], "effect": pipeline["effect"]} if variant == "default"
            else {"backend": "rstanarm", "effect": {"shape": "linear"}})
    section = merge_config({**base, "inference": {"chains": 2, "iter": iter_, "seed": 1}}, copy.deepcopy(keys))
    if variant in WITH_PROPENSITY and with_propensity:
        section["effect"]["propensity"] = True
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
                              capture_output=True, text=True, env={**os.environ, "BAYESLIFT_PYTHON": sys.executable})
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


def bench_scenario(suite, name, n_train, n_test, iter_, seed, surrogate_config, bayes=BAYES_MODELS,
                   with_surrogate=True, calibrate=0, peers=None):
    """Every model on one sample of scenario ``name`` of ``suite`` (a ``SUITES`` key): one row per model.
    ``peers``: keyword arguments of ``bench_peers.peer_rows`` (learners, bcf, bcf_variants, bcf_draws)."""
    s = SUITES[suite]
    hist, _ = s.draw(n_train, seed, name, False)
    users, truth = s.draw(n_test, seed + 1000, name, True)
    spec = FeatureSpec.from_columns(s.columns)
    validate_training_frame(hist, spec, f"{suite} {name} training sample")  # levels and ranges, as prepare does
    true = truth["true_uplift"].to_numpy()
    rows = peer_rows(spec, hist, users, true, seed=seed, **{"learners": {}, **(peers or {})})
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
                         "interval_scale": calibration.get(res["export"], {}).get("scale"),
                         "divergences": sum(p["divergences"] for p in (res.get("diagnostics") or {}).values())})
            sur = res["surrogate"]
            if sur is not None:
                rows.append({"model": label.replace("bayes_", "surrogate_", 1),
                             **metrics(sur["uplift"], true, sur["lower"], sur["upper"]), "fit_s": sur["seconds"]})
    return pd.DataFrame(rows).assign(suite=suite, size=n_train, scenario=name, true_ate=float(true.mean()))


#: the issue's goal for the coverage of 90% per-user intervals
COVERAGE_BAND = (0.85, 0.97)
#: what one benchmark cell is (the summary's groups), as far as a table has these columns
CELL = ("suite", "size", "scenario")


def summarize(table):
    """Mean over replications per cell (suite, training size, scenario) and model (the model's name without the
    LOO pick), with the standard error of sqrt-PEHE and of coverage across replications (NaN with one
    replication), the share of replications in which the model had the lowest sqrt-PEHE of all models but
    surrogates (``best_share``) and the median and in-band share of its per-sample coverage: one sample's
    coverage is bimodal (a training sample's ATE error moves every interval together), so a mean in the band
    can hide samples far outside it."""
    cell = [c for c in CELL if c in table.columns]
    t = table.assign(model=table["model"].str.replace(r" \(.*\)$", "", regex=True))
    fitted = ~t["model"].str.startswith("surrogate_")
    lowest = t[fitted].groupby([*cell, "replication"])["sqrt_pehe"].transform("min")
    t["best"] = (t["sqrt_pehe"] <= lowest.reindex(t.index)).astype(float).where(fitted)
    lo, hi = COVERAGE_BAND
    t["in_band"] = t["coverage_90"].between(lo, hi).astype(float).where(t["coverage_90"].notna())
    g = t.groupby([*cell, "model"], sort=False)
    out = g.agg(sqrt_pehe=("sqrt_pehe", "mean"), ate_error_rmse=("ate_error", lambda e: float(np.sqrt(np.mean(e ** 2)))),
                best_share=("best", "mean"), coverage_90=("coverage_90", "mean"),
                coverage_median=("coverage_90", "median"), coverage_in_band=("in_band", "mean"),
                ate_covered=("ate_covered", lambda c: c.astype(float).mean()),
                fit_s=("fit_s", "mean"), replications=("sqrt_pehe", "size"))
    out["sqrt_pehe_se"] = g["sqrt_pehe"].std() / np.sqrt(out["replications"])
    out["coverage_se"] = g["coverage_90"].std() / np.sqrt(out["replications"])
    return out.reset_index()


def suite_scenarios(suites, wanted):
    """(suite, scenario) pairs to run: every scenario of each suite, or those of ``wanted`` it has."""
    pairs = [(s, name) for s in suites for name in SUITES[s].scenarios if wanted is None or name in wanted]
    unknown = sorted(set(wanted or ()) - {name for _, name in pairs})
    if unknown:
        raise SystemExit(f"--scenarios {unknown} are in none of the suites {suites}; they have "
                         + "; ".join(f"{s}: {', '.join(SUITES[s].scenarios)}" for s in suites))
    return pairs


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=[*SUITES, "all"], default="all", help="scenario suite(s) to run")
    ap.add_argument("--sizes", "--n-train", dest="sizes", nargs="+", type=int, default=[3000],
                    help="training users per sample; several sizes run side by side")
    ap.add_argument("--n-test", type=int, default=2000, help="held-out users scored per sample")
    ap.add_argument("--iter", type=int, default=None,
                    help="MCMC iterations per chain, 2 chains (default: config/config.yaml's model.inference.iter)")
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--replications", type=int, nargs="+", default=[1],
                    help="independent training samples per scenario (seeds seed + k + 1000 r), one count for "
                         "every size or one per --sizes entry; coverage is a property of repeated samples, one "
                         "sample's ATE error moves every user's coverage")
    ap.add_argument("--scenarios", nargs="*", default=None, help="scenario names (default: every one of the suites)")
    ap.add_argument("--bayes-models", nargs="*", default=list(BAYES_MODELS), choices=BAYES_MODELS,
                    help="Bayesian variants to fit (none: --no-bayes)")
    ap.add_argument("--causalml-path", default="/tmp/causalml_target",
                    help="extra sys.path entry holding a throwaway causalml install ('' for none)")
    ap.add_argument("--stochtree-path", default="/tmp/stochtree_target",
                    help="extra sys.path entry holding a throwaway stochtree install ('' for none)")
    ap.add_argument("--bcf", nargs="*", default=list(BCF_VARIANTS), choices=BCF_VARIANTS,
                    help="stochtree BCF peers: on spend (direct) and two-part (hurdle); none: --bcf")
    ap.add_argument("--bcf-draws", type=int, default=500, help="retained MCMC draws of each BCF fit")
    ap.add_argument("--no-bayes", action="store_true")
    ap.add_argument("--no-surrogate", action="store_true", help="skip training the surrogate of each Bayesian model")
    ap.add_argument("--calibrate", type=int, default=0, metavar="REPLICATES",
                    help="also report each Bayesian model with its per-user intervals calibrated by parametric "
                         "bootstrap (model.calibrate_intervals) on this many replicates (one more fit each)")
    ap.add_argument("--out", default=runinfo.default_out("bench_accuracy"), help="the output file (JSON)")
    args = ap.parse_args(argv)
    if args.iter is None:  # what a user's pipeline samples
        args.iter = int(yaml.safe_load(PIPELINE_CONFIG.read_text())["model"]["inference"]["iter"])
    if len(args.replications) not in (1, len(args.sizes)):
        ap.error(f"--replications takes one count or one per size ({len(args.sizes)}), got {args.replications}")
    return args


def main(argv=None):
    args = parse_args(argv)
    run = runinfo.start("bench_accuracy", args)
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    pairs = suite_scenarios(suites, args.scenarios)
    peers = {"learners": causalml_learners(args.causalml_path), "bcf_variants": args.bcf,
             "bcf": stochtree_bcf(args.stochtree_path) if args.bcf else None, "bcf_draws": args.bcf_draws}
    bayes = [] if args.no_bayes else args.bayes_models
    reps = dict(zip(args.sizes, args.replications * len(args.sizes) if len(args.replications) == 1
                    else args.replications))
    tables = []
    for rep in range(max(reps.values())):
        for size in [size for size in args.sizes if rep < reps[size]]:
            for suite in suites:
                names = [name for s, name in pairs if s == suite]
                for k, name in enumerate(SUITES[suite].scenarios):
                    if name not in names:
                        continue
                    t0 = time.perf_counter()
                    tables.append(bench_scenario(suite, name, size, args.n_test, args.iter, args.seed + k + 1000 * rep,
                                                 variant_surrogate_config, bayes, with_surrogate=not args.no_surrogate,
                                                 calibrate=args.calibrate, peers=peers).assign(replication=rep))
                    print(f"{suite} {name} at {size} users (replication {rep + 1}/{reps[size]}): "
                          f"{time.perf_counter() - t0:.0f} s", flush=True)
                    print(tables[-1].drop(columns=["suite", "size", "scenario", "replication"]).to_string(index=False),
                          flush=True)
    table = pd.concat(tables, ignore_index=True)
    cols = [*CELL, "replication", "true_ate", "model", "sqrt_pehe", "ate_error", "coverage_90", "ate_covered",
            "fit_s", "interval_scale", "divergences"]
    table = table.reindex(columns=cols)
    summary = summarize(table)
    with pd.option_context("display.width", 200, "display.max_rows", 1000, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
        print(f"\nmean over the replications ({', '.join(f'{n} at {size} users' for size, n in reps.items())}):")
        print(summary.to_string(index=False))
    # each variant's model section as fitted: what "default" was at this commit, for the tables' text
    models = {m: variant_model_section(m, args.iter, False) for m in bayes}
    runinfo.write_output(args.out, {"rows": table.to_dict(orient="records"), "models": models,
                                    "summary": summary.to_dict(orient="records")}, run)


if __name__ == "__main__":
    main()
