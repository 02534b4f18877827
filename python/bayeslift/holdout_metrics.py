"""Every model's metrics on one holdout, as the tables of the ``evaluate`` step: the ATE estimators, ranking,
calibration and segments per model, and policy values (functions of ``metrics`` and ``policy``; no file I/O).

The holdout frame (``evaluation.evaluation_frame``): one row per user with ``treatment``, ``outcome``, a column
of predicted uplift per model, the interval columns of ``INTERVALS``, and ``true_uplift`` when the truth is known.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import (TOP_K, aipw_scores, ate_suite, calibration_table, check_arms, fit_propensity, ranking_metrics,
                      segment_table, truth_metrics, uplift_curves)
from .policy import PolicyConfig, policy_curve, rules_table, uplift_scores

#: each model's 90% interval columns in the frame, for coverage against the truth
INTERVALS = {"bayesian": ("bayesian_q05", "bayesian_q95"), "surrogate": ("surrogate_lower", "surrogate_upper")}
ORACLE = "oracle (true uplift)"  # the truth ranked as if it were a model, in the curves


def stack_models(tables: dict) -> pd.DataFrame:
    """Per-model tables ({model: table}) as one, with a ``model`` column."""
    return pd.concat([tab.assign(model=name) for name, tab in tables.items()], ignore_index=True)


def _arms(frame: pd.DataFrame):
    return check_arms(frame["treatment"]), frame["outcome"].to_numpy(float)


def holdout_ate(Z, frame: pd.DataFrame, randomized: bool = True, n_folds: int = 5, outcome_model: str = "lightgbm",
                seed: int = 0) -> pd.DataFrame:
    """``ate_suite`` on the holdout outcomes (``Z``: the encoded features), then the mean of the Bayesian
    posterior's user uplift and, when known, the true sample ATE: one row per method, with its source."""
    t, y = _arms(frame)
    ate = ate_suite(Z, t, y, randomized, n_folds, outcome_model, seed).assign(source="holdout outcomes")
    extra = [("bayesian_mean_of_user_uplift", "bayesian", "posterior means, holdout users")]
    if "true_uplift" in frame:
        extra.append(("true_sample_ate", "true_uplift", "simulator truth, holdout users"))
    rows = [{"method": method, "estimate": frame[col].mean(), "se": np.nan, "ci_low": np.nan, "ci_high": np.nan,
             "source": source} for method, col, source in extra]
    return pd.concat([ate, pd.DataFrame(rows)], ignore_index=True)


def model_tables(frame: pd.DataFrame, models, features: pd.DataFrame, numeric, categorical, top_k=TOP_K,
                 n_bootstrap: int = 200, seed: int = 0, calibration_bins: int = 10,
                 segment_bins: int = 4) -> dict[str, pd.DataFrame]:
    """Each model's ranking metrics (and truth metrics when known; one row per model: ``metrics``), uplift
    curves (the oracle's too when the truth is known), calibration by bin and uplift by segment of
    ``features`` (rows aligned with ``frame``); the last three stacked with a ``model`` column."""
    t, y = _arms(frame)
    truth = frame["true_uplift"] if "true_uplift" in frame else None
    rows, curves, calib, segs = [], {}, {}, {}
    for m in models:
        row = {"model": m, "mean_predicted_uplift": float(frame[m].mean()),
               **ranking_metrics(frame[m], t, y, top_k, n_bootstrap, seed)}
        if truth is not None:
            lo, hi = (frame[c] for c in INTERVALS[m]) if m in INTERVALS else (None, None)
            row.update(truth_metrics(frame[m], truth, lo, hi))
        rows.append(row)
        curves[m] = uplift_curves(frame[m], t, y)
        calib[m] = calibration_table(frame[m], t, y, calibration_bins)
        segs[m] = segment_table(features, frame[m], t, y, numeric, categorical, segment_bins)
    if truth is not None:
        curves[ORACLE] = uplift_curves(truth, t, y)
    return {"metrics": pd.DataFrame(rows), "curves": stack_models(curves), "calibration": stack_models(calib),
            "segments": stack_models(segs)}


def policy_tables(frame: pd.DataFrame, models, policy: PolicyConfig, Z, randomized: bool = True, n_folds: int = 5,
                  outcome_model: str = "lightgbm", seed: int = 0) -> dict[str, pd.DataFrame]:
    """Values per 1,000 users, off-policy on the holdout: every rule decided by ``policy.decide``
    (``rules_table``, by AIPW and IPW) and each model's value of targeting its top x% (``policy_curve``, AIPW;
    the oracle's too when the truth is known). The propensity is the treated share when ``randomized``, else a
    logistic fit on ``Z``."""
    t, y = _arms(frame)
    e = float(t.mean()) if randomized else None
    aipw = aipw_scores(Z, t, y, e, n_folds, outcome_model, seed)
    ipw = uplift_scores(t, y, e if randomized else fit_propensity(Z, t))
    ranked = {m: frame[m] for m in models}
    if "true_uplift" in frame:
        ranked[ORACLE] = frame["true_uplift"]
    curves = {m: policy_curve(u, aipw, policy.margin, policy.cost_per_contact) for m, u in ranked.items()}
    return {"policy": rules_table(frame, models, policy, aipw, ipw), "policy_curve": stack_models(curves)}
