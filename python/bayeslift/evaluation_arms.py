"""The ``evaluate`` step with several campaign arms (issue 25): file I/O and config around
``holdout_metrics_arms``. ``evaluation.run_evaluation`` reads and checks the holdout, the policy and the truth,
then hands a spec of K > 1 arms here; the rule's outputs are the one-arm step's files, with per-arm content:

* ``predictions``: the long frame (``holdout_metrics_arms``): one row per holdout user and campaign arm;
* ``ate``, ``metrics``, ``curves``, ``calibration``, ``segments``: the one-arm tables per arm (control vs arm k on
  those two arms' users), stacked with an ``arm`` column first;
* ``policy``: the value per 1,000 users of each arm-choosing rule (``arm_rule_choices``), by AIPW and IPW;
* ``policy_curve``: the multi-arm budget curve of the Bayesian posterior means (``policy_arms.budget_curve``);
* ``summary``: evaluation.json, with the arms, their economics and the best model and rule.

Nothing below imports this module but ``evaluation``.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from .baselines import Design
from .baselines_arms import ARM_COLUMN
from .boundary import read_table
from .data import DataValidationError, read_csv
from .decide_arms import arm_economics, check_arm_rule
from .holdout_metrics import ORACLE
from .holdout_metrics_arms import (ARM, arm_model_tables, arm_policy_table, arm_rule_choices, bayesian_budget_curve,
                                   check_every_arm, holdout_arm_scores, rule_label)
from .io import write_csv_atomic, write_text_atomic
from .metrics import TOP_K
from .policy import PolicyConfig

log = logging.getLogger("bayeslift")
#: R's per-arm posterior summaries (boundary.yaml uplift_summary) -> the long frame's column of the same meaning
POSTERIOR_COLUMNS = {"uplift_{arm}_mean": "bayesian", "uplift_{arm}_median": "bayesian_median",
                     "uplift_{arm}_q05": "bayesian_q05", "uplift_{arm}_q95": "bayesian_q95",
                     "prob_positive_{arm}": "bayesian_prob_positive", "prob_profit_{arm}": "bayesian_prob_profit"}
#: the surrogate's per-arm predictions (surrogate.predict.prediction_names) -> the long frame's columns
SURROGATE_COLUMNS = {"uplift_{arm}": "surrogate", "uplift_{arm}_lower": "surrogate_lower",
                     "uplift_{arm}_upper": "surrogate_upper"}
TRUTH_COLUMN = "true_uplift_{arm}"  # the simulator's truth per arm (simulate.py scenario multi_arm)


def per_arm(table: pd.DataFrame, pattern: str, slugs) -> np.ndarray:
    """(n, K): the columns ``pattern.format(arm=slug)`` of ``table``, one per arm in arm order."""
    return table[[pattern.format(arm=a) for a in slugs]].to_numpy(dtype=float)


def aligned(table: pd.DataFrame, id_column: str, ids: pd.Series, what: str) -> pd.DataFrame:
    """``table``'s rows of the holdout users ``ids`` (as text), in their order; a clear error when some lack."""
    keyed = table.assign(_id=table[id_column].astype(str)).set_index("_id")
    absent = ~ids.isin(keyed.index)
    if absent.any():
        raise DataValidationError(f"{what} lacks {int(absent.sum())} holdout users (e.g. id {ids[absent].iloc[0]})")
    return keyed.loc[ids.to_numpy()].reset_index(drop=True)


def baseline_uplift(baselines: pd.DataFrame, spec, ids: pd.Series) -> dict[str, np.ndarray]:
    """{model: (n, K)} from the multi-arm baselines file (``baselines_arms.arm_predictions_frame``)."""
    if ARM_COLUMN not in baselines:
        raise DataValidationError(f"the baselines file has no '{ARM_COLUMN}' column: it is a one-campaign file; "
                                  "rerun the baselines rule for this model's campaign arms")
    blocks = [aligned(baselines[baselines[ARM_COLUMN] == a], spec.id, ids, f"the baselines file (arm {a})")
              for a in spec.arm_slugs]
    models = [c for c in baselines.columns if c not in (spec.id, ARM_COLUMN)]
    return {m: np.column_stack([b[m].to_numpy(dtype=float) for b in blocks]) for m in models}


def surrogate_predictions(surrogate_dir, holdout: pd.DataFrame, spec) -> pd.DataFrame:
    """The evaluation surrogate's per-arm predictions of the holdout users (``surrogate.predict.prediction_names``),
    in their order, scored as batch scoring scores (``scoring.UpliftScorer``, as the one-arm evaluation does)."""
    from .scoring import UpliftScorer

    scorer = UpliftScorer.load(surrogate_dir)
    if list(scorer.surrogate.arm_names) != list(spec.arm_slugs):
        raise DataValidationError(f"the surrogate in {surrogate_dir} has arms {list(scorer.surrogate.arm_names)}, "
                                  f"the feature spec {spec.arm_slugs}; retrain it on this model's counterfactuals")
    return scorer.score_frame(holdout, "holdout").drop(columns=spec.id).reset_index(drop=True)


def truth_uplift(truth: pd.DataFrame, spec, ids: pd.Series) -> np.ndarray:
    """(n, K) true uplift of the holdout users from ``evaluation.truth``."""
    wanted = [spec.id, *(TRUTH_COLUMN.format(arm=a) for a in spec.arm_slugs)]
    lacking = [c for c in wanted if c not in truth.columns]
    if lacking:
        raise DataValidationError(f"evaluation.truth lacks columns {lacking}: with several campaign arms it needs "
                                  f"'{spec.id}' and {TRUTH_COLUMN} per arm; set evaluation.truth: null for real data")
    rows = aligned(truth, spec.id, ids, "evaluation.truth (it must be the truth of this very data)")
    return per_arm(rows, TRUTH_COLUMN, spec.arm_slugs)


def arm_evaluation_frame(holdout, spec, posterior: pd.DataFrame, surrogate: pd.DataFrame | None, baselines: dict,
                         truth=None) -> pd.DataFrame:
    """The long frame (``holdout_metrics_arms``) from the holdout, R's posterior summaries and the surrogate's
    predictions (rows aligned with the holdout), the baselines ({model: (n, K)}) and the (n, K) truth."""
    slugs, n = spec.arm_slugs, len(holdout)
    frame = pd.DataFrame({"id": np.repeat(holdout[spec.id].to_numpy(), len(slugs)),
                          ARM: np.tile(np.asarray(slugs, dtype=object), n),
                          "treatment": np.repeat(holdout[spec.treatment].to_numpy(), len(slugs)),
                          "outcome": np.repeat(holdout[spec.outcome].to_numpy(), len(slugs))})
    flat = {name: per_arm(posterior, pattern, slugs) for pattern, name in POSTERIOR_COLUMNS.items()}
    if surrogate is not None:
        flat |= {name: per_arm(surrogate, pattern, slugs) for pattern, name in SURROGATE_COLUMNS.items()}
    flat |= baselines
    if truth is not None:
        flat["true_uplift"] = truth
    for name, values in flat.items():
        frame[name] = np.asarray(values, dtype=float).reshape(-1)  # row-major: user by user, arm after arm
    return frame


def posterior_predictions(posterior: pd.DataFrame, slugs) -> pd.DataFrame:
    """R's summaries in the names the arm rules take: ``uplift_<arm>`` (the mean), its 90% interval
    ``uplift_<arm>_lower`` / ``_upper`` (the 5% and 95% quantiles) and ``prob_profit_<arm>``."""
    out = {}
    for a in slugs:
        out[f"uplift_{a}"] = posterior[f"uplift_{a}_mean"].to_numpy(dtype=float)
        out[f"uplift_{a}_lower"] = posterior[f"uplift_{a}_q05"].to_numpy(dtype=float)
        out[f"uplift_{a}_upper"] = posterior[f"uplift_{a}_q95"].to_numpy(dtype=float)
        out[f"prob_profit_{a}"] = posterior[f"prob_profit_{a}"].to_numpy(dtype=float)
    return pd.DataFrame(out)


def arm_economics_of(policy: PolicyConfig, spec):
    """The per-arm economics of the config's policy, and its rule checked for several arms: a clear error."""
    try:
        check_arm_rule(policy)
        return arm_economics(policy, spec.arms, spec.arm_slugs)
    except ValueError as exc:
        raise DataValidationError(f"config policy: {exc}") from None


def arm_evaluation_summary(arm, spec, models, tables: dict, policy: PolicyConfig, econ, randomized: bool) -> dict:
    """evaluation.json with several arms: the holdout users per arm (``arm``: each one's arm index), the models,
    the economics per arm, the best-ranking model per arm and the rule of highest AIPW value (the oracle left out)."""
    counts = np.bincount(arm, minlength=len(spec.arms) + 1)
    metrics, rules = tables["metrics"], tables["policy"]
    best_rank = {a: str(g.sort_values("qini_gain", ascending=False)["model"].iloc[0]) for a, g in
                 metrics.groupby(ARM, sort=False)}
    best = rules[rules["model"] != ORACLE].sort_values("value_aipw", ascending=False).iloc[0]
    return {"n_holdout": int(counts.sum()), "n_treated": int(counts[1:].sum()), "n_control": int(counts[0]),
            "n_per_arm": {a: int(c) for a, c in zip(spec.arm_slugs, counts[1:])}, "control": spec.control,
            "arms": list(spec.arm_slugs), "arm_levels": list(spec.arms), "models": list(models),
            "truth_known": "true_uplift" in tables["predictions"], "randomized": bool(randomized),
            "policy": {"cost_per_contact": policy.cost_per_contact, "margin": policy.margin, "rule": policy.rule,
                       "rule_label": rule_label(policy), "prob_threshold": policy.prob_threshold,
                       "per_arm": {a: {"cost_per_contact": float(c), "margin": float(m)}
                                   for a, c, m in zip(econ.names(), econ.costs, econ.margins)},
                       "prob_profit_method": "exact: share of posterior draws with margin_k * uplift_k - cost_k > 0"},
            "best_ranking_model": best_rank,
            "best_rule": {"model": str(best["model"]), "rule": str(best["rule"]),
                          "value_aipw": float(best["value_aipw"]), "aipw_low": float(best["aipw_low"]),
                          "aipw_high": float(best["aipw_high"])},
            "policy_curve": "the multi-arm budget curve of the Bayesian posterior means (policy_arms.budget_curve)"}


def run_arm_evaluation(holdout: pd.DataFrame, spec, uplift_summary_csv, surrogate_dir, baselines_csv, paths: dict,
                       evaluation: dict, policy: PolicyConfig, truth: pd.DataFrame | None = None) -> dict:
    """``evaluation.run_evaluation`` for a spec of several campaign arms: ``holdout`` read and checked, ``paths``
    {output name: path} of every output, ``truth`` the read ``evaluation.truth`` or None. Returns the summary."""
    econ = arm_economics_of(policy, spec)
    ids = holdout[spec.id].astype(str).reset_index(drop=True)
    arm = check_every_arm(holdout[spec.treatment].to_numpy(), len(spec.arms), "holdout")
    posterior = aligned(read_table(uplift_summary_csv, "uplift_summary", spec), spec.id, ids, "the uplift summary")
    surrogate = None if surrogate_dir is None else surrogate_predictions(surrogate_dir, holdout, spec)
    baselines = baseline_uplift(read_csv(baselines_csv, text_columns=[spec.id]), spec, ids)
    true = None if truth is None else truth_uplift(truth, spec, ids)
    frame = arm_evaluation_frame(holdout, spec, posterior, surrogate, baselines, true)
    uplift = {"bayesian": per_arm(posterior, "uplift_{arm}_mean", spec.arm_slugs),
              **({} if surrogate is None else {"surrogate": per_arm(surrogate, "uplift_{arm}", spec.arm_slugs)}),
              **baselines}
    models = list(uplift)
    segments = evaluation.get("segments")
    features = holdout[spec.features].reset_index(drop=True)
    Z = Design(spec.categorical, spec.log1p).fit(features).transform(features)
    fits = {"randomized": evaluation.get("randomized", True), "n_folds": evaluation.get("n_folds", 5),
            "outcome_model": evaluation.get("outcome_model", "lightgbm"), "seed": evaluation.get("seed", 0)}
    tables = arm_model_tables(frame, models, spec.arm_slugs, features, Z,
                              [c for c in spec.numeric if not segments or c in segments],
                              [c for c in spec.categorical if not segments or c in segments], fits,
                              top_k=evaluation.get("top_k", TOP_K), n_bootstrap=evaluation.get("n_bootstrap", 200),
                              seed=fits["seed"], calibration_bins=evaluation.get("calibration_bins", 10),
                              segment_bins=evaluation.get("segment_bins", 4))
    scores = holdout_arm_scores(Z, arm, holdout[spec.outcome].to_numpy(float), len(spec.arms), **fits)
    choices = arm_rule_choices(uplift, posterior_predictions(posterior, spec.arm_slugs), surrogate, policy, econ,
                               scores["aipw"], true)
    tables |= {"policy": arm_policy_table(choices, scores, econ, true),
               "policy_curve": bayesian_budget_curve(uplift["bayesian"], scores["aipw"], econ), "predictions": frame}
    for name, path in paths.items():
        if name != "summary":
            write_csv_atomic(tables[name], path)
    summary = arm_evaluation_summary(arm, spec, models, tables, policy, econ, fits["randomized"])
    write_text_atomic(json.dumps(summary, indent=2), paths["summary"])
    best = summary["best_rule"]
    log.info("evaluated %d models on %d holdout users over %d campaign arms (%s); best Qini gain per arm: %s; "
             "best rule by AIPW: %s '%s', %.1f per 1,000 users (95%% interval %.1f to %.1f)", len(models),
             summary["n_holdout"], len(spec.arms), ", ".join(spec.arm_slugs),
             ", ".join(f"{a} {m}" for a, m in summary["best_ranking_model"].items()), best["model"], best["rule"],
             best["value_aipw"], best["aipw_low"], best["aipw_high"])
    return summary
