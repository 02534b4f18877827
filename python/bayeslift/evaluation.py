"""The evaluation's pipeline steps (rules/evaluation.smk): ``baselines`` and ``evaluate``.

File I/O and config around the learners (``baselines``) and the metrics (``metrics``, where the definitions
of the Qini curve, AUUC and the rest are written down; ``holdout_metrics``, every model at once); nothing
below imports this module. A feature spec of several campaign arms (issue 25) takes the multi-arm learners
(``baselines_arms``) and ``evaluation_arms``' evaluate step, into the same files.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from .baselines import BASELINE_NAMES, Design, make_baseline, predict_baselines
from .baselines_arms import make_arm_baseline, predict_arm_baselines
from .data import DataValidationError, FeatureSpec, read_csv
from .evaluation_arms import run_arm_evaluation
from .io import atomic_path, write_csv_atomic, write_text_atomic
from .holdout_metrics import holdout_ate, model_tables, policy_tables
from .holdout_metrics_arms import check_every_arm
from .metrics import TOP_K, check_arms
from .policy import PolicyConfig
from .prepare import read_prepared

log = logging.getLogger("bayeslift")
#: the evaluate step's tables, one CSV each, and its outputs (the rule's named outputs): those and the summary
TABLES = ("ate", "metrics", "curves", "calibration", "policy", "policy_curve", "segments", "predictions")
OUTPUTS = ("summary", *TABLES)


# ------------------------------------------------------------------------------------- the evaluate step
def check_evaluation_inputs(frame: pd.DataFrame, spec, segments, source: str) -> None:
    """Fail early (before any model runs) on a split that lacks an arm or unknown segment features."""
    if segments:
        unknown = [c for c in segments if c not in spec.features]
        if unknown:
            raise DataValidationError(
                f"config evaluation.segments names {unknown}, which are not features of the model; "
                f"features: {spec.features}")
    if len(spec.arms) > 1:
        check_every_arm(frame[spec.treatment].to_numpy(), len(spec.arms), source)
    else:
        check_arms(frame[spec.treatment].to_numpy(), source)


def run_baselines(train_csv, holdout_csv, spec_json, out_predictions, out_bundle, names=BASELINE_NAMES,
                  n_jobs: int = 2, seed: int = 0, segments=None) -> pd.DataFrame:
    """The ``baselines`` step: fit every baseline on the train split and predict the holdout users.

    Writes one column of predicted uplift per model (plus ``random``) and saves the LightGBM T-learner
    bundle (both models + feature order) with joblib. Inputs are checked before any model is fitted.
    Several campaign arms: the multi-arm learners of ``baselines_arms``, the file one row per user and arm
    (``baselines_arms.arm_predictions_frame``: id, ``arm``, a column per model) and the bundle of the K + 1 models.
    """
    import joblib

    spec = FeatureSpec.from_json(spec_json)
    several = len(spec.arms) > 1
    predict, make = (predict_arm_baselines, make_arm_baseline) if several else (predict_baselines, make_baseline)
    train = read_prepared(train_csv, spec)
    holdout = read_prepared(holdout_csv, spec)
    check_evaluation_inputs(train, spec, segments, str(train_csv))
    check_evaluation_inputs(holdout, spec, segments, str(holdout_csv))
    out, models = predict(train, holdout, spec, names, n_jobs, seed)
    bundle_model = models.get("t_lightgbm")
    if bundle_model is None:
        bundle_model = make("t_lightgbm", random_state=seed, n_jobs=n_jobs, categorical=spec.categorical,
                            log1p=spec.log1p).fit(train[spec.features], train[spec.treatment], train[spec.outcome])
    with atomic_path(out_bundle) as tmp:
        joblib.dump(bundle_model.bundle(), tmp)
    write_csv_atomic(out, out_predictions)
    return out


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


def _policy_config(policy: dict) -> PolicyConfig:
    try:
        return PolicyConfig.from_config(policy)
    except ValueError as exc:
        raise DataValidationError(f"config policy: {exc}") from None


def _output_paths(outputs) -> dict[str, Path]:
    """The evaluate step's file per name in ``OUTPUTS`` (the rule's named outputs); a clear error otherwise."""
    outputs = dict(outputs)
    if set(outputs) != set(OUTPUTS):
        raise ValueError(f"run_evaluation: outputs must name exactly {list(OUTPUTS)}; missing "
                         f"{sorted(set(OUTPUTS) - set(outputs))}, unknown {sorted(set(outputs) - set(OUTPUTS))}")
    return {name: Path(path) for name, path in outputs.items()}


def evaluation_summary(frame: pd.DataFrame, models, metrics: pd.DataFrame, pol: PolicyConfig,
                       randomized: bool) -> dict:
    """evaluation.json: the holdout's size, the models, the policy settings and the best-ranking model."""
    t = frame["treatment"].to_numpy(float)
    best = metrics.sort_values("qini_gain", ascending=False).iloc[0]
    return {"n_holdout": int(len(frame)), "n_treated": int(t.sum()), "n_control": int((1 - t).sum()),
            "models": list(models), "truth_known": "true_uplift" in frame, "randomized": bool(randomized),
            "policy": {"cost_per_contact": pol.cost_per_contact, "margin": pol.margin, "rule": pol.rule,
                       "top_k": pol.top_k, "prob_threshold": pol.prob_threshold,
                       "prob_profit_method": "exact: share of posterior draws with margin * uplift - cost > 0"},
            "best_ranking_model": str(best["model"])}


def run_evaluation(holdout_csv, spec_json, uplift_summary_csv, surrogate_dir, baselines_csv, outputs,
                   evaluation: dict, policy: dict, truth_csv=None) -> dict:
    """The ``evaluate`` step: every model scored on the holdout (holdout_metrics.py).

    ``outputs``: {name: path} for each of ``OUTPUTS``: ``summary`` (evaluation.json) and one CSV per table of
    ``TABLES``. The report draws the figures from these tables. Returns the summary. Several campaign arms:
    ``evaluation_arms.run_arm_evaluation`` writes the same files with per-arm content.
    """
    paths = _output_paths(outputs)
    spec = FeatureSpec.from_json(spec_json)
    holdout = read_prepared(holdout_csv, spec)
    segments = evaluation.get("segments")
    check_evaluation_inputs(holdout, spec, segments, str(holdout_csv))
    pol = _policy_config(policy)
    truth = read_csv(truth_csv) if truth_csv else None
    if len(spec.arms) > 1:
        return run_arm_evaluation(holdout, spec, uplift_summary_csv, surrogate_dir, baselines_csv, paths, evaluation,
                                  pol, truth)
    frame = evaluation_frame(holdout, spec, read_csv(uplift_summary_csv), surrogate_dir, read_csv(baselines_csv), truth)
    models = model_columns(frame)
    Z = Design(spec.categorical, spec.log1p).fit(holdout[spec.features]).transform(holdout[spec.features])
    fits = {"randomized": evaluation.get("randomized", True), "n_folds": evaluation.get("n_folds", 5),
            "outcome_model": evaluation.get("outcome_model", "lightgbm"), "seed": evaluation.get("seed", 0)}
    per_model = model_tables(frame, models, holdout, [c for c in spec.numeric if not segments or c in segments],
                             [c for c in spec.categorical if not segments or c in segments],
                             top_k=evaluation.get("top_k", TOP_K), n_bootstrap=evaluation.get("n_bootstrap", 200),
                             seed=fits["seed"], calibration_bins=evaluation.get("calibration_bins", 10),
                             segment_bins=evaluation.get("segment_bins", 4))
    tables = {"ate": holdout_ate(Z, frame, **fits), **per_model, **policy_tables(frame, models, pol, Z, **fits),
              "predictions": frame}
    for name in TABLES:
        write_csv_atomic(tables[name], paths[name])
    summary = evaluation_summary(frame, models, tables["metrics"], pol, fits["randomized"])
    write_text_atomic(json.dumps(summary, indent=2), paths["summary"])
    log.info("evaluated %d models on %d holdout users; best Qini gain: %s", len(models), len(frame),
             summary["best_ranking_model"])
    return summary
