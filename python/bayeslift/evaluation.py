"""The evaluation's pipeline steps (rules/evaluation.smk): ``baselines`` and ``evaluate``.

File I/O and config around the learners (``baselines``) and the metrics (``metrics``, where the definitions
of the Qini curve, AUUC and the rest are written down); nothing below imports this module.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .baselines import BASELINE_NAMES, Design, make_baseline, predict_baselines
from .data import DataValidationError, FeatureSpec, read_csv
from .io import atomic_path, write_csv_atomic, write_text_atomic
from .metrics import (TOP_K, aipw_scores, ate_suite, calibration_table, check_arms, fit_propensity, ranking_metrics,
                      segment_table, truth_metrics, uplift_curves)
from .policy import PolicyConfig, policy_curve, rules_table, uplift_scores
from .prepare import read_prepared

log = logging.getLogger("bayeslift")


# ------------------------------------------------------------------------------------- the evaluate step
def check_evaluation_inputs(frame: pd.DataFrame, spec, segments, source: str) -> None:
    """Fail early (before any model runs) on a split with one arm only or unknown segment features."""
    if segments:
        unknown = [c for c in segments if c not in spec.features]
        if unknown:
            raise DataValidationError(
                f"config evaluation.segments names {unknown}, which are not features of the model; "
                f"features: {spec.features}")
    check_arms(frame[spec.treatment].to_numpy(), source)


def run_baselines(train_csv, holdout_csv, spec_json, out_predictions, out_bundle, names=BASELINE_NAMES,
                  n_jobs: int = 2, seed: int = 0, segments=None) -> pd.DataFrame:
    """The ``baselines`` step: fit every baseline on the train split and predict the holdout users.

    Writes one column of predicted uplift per model (plus ``random``) and saves the LightGBM T-learner
    bundle (both models + feature order) with joblib. Inputs are checked before any model is fitted.
    """
    import joblib

    spec = FeatureSpec.from_json(spec_json)
    train = read_prepared(train_csv, spec)
    holdout = read_prepared(holdout_csv, spec)
    check_evaluation_inputs(train, spec, segments, str(train_csv))
    check_evaluation_inputs(holdout, spec, segments, str(holdout_csv))
    out, models = predict_baselines(train, holdout, spec, names, n_jobs, seed)
    bundle_model = models.get("t_lightgbm")
    if bundle_model is None:
        bundle_model = make_baseline("t_lightgbm", random_state=seed, n_jobs=n_jobs, categorical=spec.categorical,
                                     log1p=spec.log1p).fit(train[spec.features], train[spec.treatment],
                                                            train[spec.outcome])
    with atomic_path(out_bundle) as tmp:
        joblib.dump(bundle_model.bundle(), tmp)
    write_csv_atomic(out, out_predictions)
    return out


def _stack(tables: dict) -> pd.DataFrame:
    return pd.concat([tab.assign(model=name) for name, tab in tables.items()], ignore_index=True)


def evaluation_frame(holdout, spec, uplift_summary, surrogate_dir, baselines, truth=None) -> pd.DataFrame:
    """One row per holdout user: id, arm, outcome, every model's predicted uplift (+ intervals), truth."""
    ids = holdout[spec.id].astype(str)
    frame = pd.DataFrame({"id": holdout[spec.id].to_numpy(), "treatment": holdout[spec.treatment].to_numpy(),
                          "outcome": holdout[spec.outcome].to_numpy()})
    summ = uplift_summary.assign(_id=uplift_summary[spec.id].astype(str)).set_index("_id")
    missing = ~ids.isin(summ.index)
    if missing.any():
        raise DataValidationError(f"uplift summary lacks {int(missing.sum())} holdout users (e.g. {ids[missing].iloc[0]})")
    summ = summ.loc[ids.to_numpy()]
    frame["bayesian"] = summ["uplift_mean"].to_numpy()
    for c in ("uplift_median", "uplift_q05", "uplift_q95", "prob_positive", "prob_profit"):
        frame[f"bayesian_{c.replace('uplift_', '')}"] = summ[c].to_numpy()
    if surrogate_dir is not None:
        from .scoring import UpliftScorer

        scored = UpliftScorer.load(surrogate_dir).score_frame(holdout, "holdout")
        frame["surrogate"] = scored["uplift"].to_numpy()
        frame["surrogate_lower"] = scored["uplift_lower"].to_numpy()
        frame["surrogate_upper"] = scored["uplift_upper"].to_numpy()
    base = baselines.assign(_id=baselines[spec.id].astype(str)).set_index("_id").loc[ids.to_numpy()]
    for c in baselines.columns:
        if c != spec.id:
            frame[c] = base[c].to_numpy()
    if truth is not None:
        if spec.id not in truth.columns or "true_uplift" not in truth.columns:
            raise DataValidationError(f"evaluation.truth must have columns '{spec.id}' and 'true_uplift'")
        tr = truth.assign(_id=truth[spec.id].astype(str)).set_index("_id")
        absent = ~ids.isin(tr.index)
        if absent.any():
            raise DataValidationError(
                f"evaluation.truth lacks {int(absent.sum())} holdout users (e.g. id {ids[absent].iloc[0]}); "
                "it must be the truth of this very data; set evaluation.truth: null for real data")
        frame["true_uplift"] = tr.loc[ids.to_numpy(), "true_uplift"].to_numpy()
    return frame


def model_columns(frame: pd.DataFrame) -> list[str]:
    skip = {"id", "treatment", "outcome", "true_uplift"}
    return [c for c in frame.columns if c not in skip and not c.startswith(("bayesian_", "surrogate_"))]


def run_evaluation(holdout_csv, spec_json, uplift_summary_csv, surrogate_dir, baselines_csv, out_dir,
                   evaluation: dict, policy: dict, truth_csv=None) -> dict:
    """The ``evaluate`` step: every model on the holdout; tables (CSV), figures (PNG) and evaluation.json."""
    spec = FeatureSpec.from_json(spec_json)
    holdout = read_prepared(holdout_csv, spec)
    segments = evaluation.get("segments")
    check_evaluation_inputs(holdout, spec, segments, str(holdout_csv))
    try:
        pol = PolicyConfig.from_config(policy)
    except ValueError as exc:
        raise DataValidationError(f"config policy: {exc}") from None
    seed, n_boot, top_k = evaluation.get("seed", 0), evaluation.get("n_bootstrap", 200), evaluation.get("top_k", TOP_K)
    n_folds, outcome_model = evaluation.get("n_folds", 5), evaluation.get("outcome_model", "lightgbm")
    randomized = evaluation.get("randomized", True)

    truth = read_csv(truth_csv) if truth_csv else None
    frame = evaluation_frame(holdout, spec, read_csv(uplift_summary_csv), surrogate_dir, read_csv(baselines_csv), truth)
    models = model_columns(frame)
    t, y = frame["treatment"].to_numpy(float), frame["outcome"].to_numpy(float)
    Z = Design(spec.categorical, spec.log1p).fit(holdout[spec.features]).transform(holdout[spec.features])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # ATE: four estimators on the holdout, the Bayesian posterior, and the truth when known.
    ate = ate_suite(Z, t, y, randomized, n_folds, outcome_model, seed)
    ate["source"] = "holdout outcomes"
    extra = [{"method": "bayesian_mean_of_user_uplift", "estimate": frame["bayesian"].mean(), "se": np.nan,
              "ci_low": np.nan, "ci_high": np.nan, "source": "posterior means, holdout users"}]
    if truth is not None:
        extra.append({"method": "true_sample_ate", "estimate": frame["true_uplift"].mean(), "se": np.nan,
                      "ci_low": np.nan, "ci_high": np.nan, "source": "simulator truth, holdout users"})
    ate = pd.concat([ate, pd.DataFrame(extra)], ignore_index=True)

    # Ranking, calibration, truth metrics.
    metrics, curves, calib, segs = [], {}, {}, {}
    for m in models:
        row = {"model": m, "mean_predicted_uplift": float(frame[m].mean()),
               **ranking_metrics(frame[m], t, y, top_k, n_boot, seed)}
        if truth is not None:
            lo = {"bayesian": "bayesian_q05", "surrogate": "surrogate_lower"}.get(m)
            hi = {"bayesian": "bayesian_q95", "surrogate": "surrogate_upper"}.get(m)
            row.update(truth_metrics(frame[m], frame["true_uplift"], frame[lo] if lo else None, frame[hi] if hi else None))
        metrics.append(row)
        curves[m] = uplift_curves(frame[m], t, y)
        calib[m] = calibration_table(frame[m], t, y, evaluation.get("calibration_bins", 10))
        segs[m] = segment_table(holdout, frame[m], t, y,
                                [c for c in spec.numeric if not segments or c in segments],
                                [c for c in spec.categorical if not segments or c in segments],
                                evaluation.get("segment_bins", 4))
    if truth is not None:
        curves["oracle (true uplift)"] = uplift_curves(frame["true_uplift"], t, y)
    metrics = pd.DataFrame(metrics)

    # Policy values per 1,000 users, off-policy on the holdout.
    e = float(t.mean()) if randomized else None
    aipw = aipw_scores(Z, t, y, e, n_folds, outcome_model, seed)
    ipw = uplift_scores(t, y, e if randomized else fit_propensity(Z, t))
    policy_table = rules_table(frame, models, pol, aipw, ipw)  # every rule through policy.decide
    pcurves = {m: policy_curve(frame[m], aipw, pol.margin, pol.cost_per_contact) for m in models}
    if truth is not None:
        pcurves["oracle (true uplift)"] = policy_curve(frame["true_uplift"], aipw, pol.margin, pol.cost_per_contact)

    tables = {"ate": ate, "metrics": metrics, "curves": _stack(curves), "calibration": _stack(calib),
              "policy": policy_table, "policy_curve": _stack(pcurves), "segments": _stack(segs), "predictions": frame}
    files = {}
    for name, tab in tables.items():
        files[name] = str(out / f"{name}.csv")
        write_csv_atomic(tab, files[name])
    from .report import make_figures

    figures = make_figures(tables, out / "figures", primary=evaluation.get("primary_models"))
    best = metrics.sort_values("qini_gain", ascending=False).iloc[0]
    summary = {"n_holdout": int(len(frame)), "n_treated": int(t.sum()), "n_control": int((1 - t).sum()),
               "models": models, "truth_known": truth is not None, "randomized": bool(randomized),
               "policy": {"cost_per_contact": pol.cost_per_contact, "margin": pol.margin, "rule": pol.rule,
                          "top_k": pol.top_k, "prob_threshold": pol.prob_threshold,
                          "prob_profit_method": "exact: share of posterior draws with margin * uplift - cost > 0"},
               "best_ranking_model": str(best["model"]), "tables": files, "figures": figures}
    write_text_atomic(json.dumps(summary, indent=2), out / "evaluation.json")
    log.info("evaluated %d models on %d holdout users; best Qini gain: %s", len(models), len(frame), best["model"])
    return summary
