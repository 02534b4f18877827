"""Every model's metrics on one holdout with several campaign arms (issue 25): the ``evaluate`` step's tables for
K > 1 (functions of ``holdout_metrics``, ``metrics``, ``policy_arms`` and ``decide_arms``; no file I/O).

The holdout frame (``evaluation_arms.arm_evaluation_frame``) is long over the arms: one row per holdout user and
campaign arm, users in holdout order and each user's arms in arm order, with ``arm`` (the arm's slug), the user's
``treatment`` (the arm index 0..K the user received) and ``outcome``, and then the one-arm frame's columns for that
arm: a predicted-uplift column per model (arm k minus control), the interval columns of
``holdout_metrics.INTERVALS``, ``bayesian_prob_profit`` and ``true_uplift`` when the truth is known.

Per arm k, the ranking, calibration, segment and ATE tables are the one-arm ones (``holdout_metrics``) on the users
of control and arm k only, with arm k as "treated" (``pair_frame``): a randomized comparison of the two arms. The
truth metrics (sqrt-PEHE, ATE error, 90% coverage) use every holdout user, since each has a predicted and a true
uplift for every arm. The policy values compare arm choices over all users and arms (``arm_policy_table``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data import DataValidationError
from .decide_arms import check_arm_rule, decide_arm
from .holdout_metrics import INTERVALS, ORACLE, holdout_ate, model_tables
from .metrics import truth_metrics
from .policy import PolicyConfig
from .policy_arms import (ArmEconomics, arm_scores, best_arm_by_expected_profit, best_arm_by_probability, budget_curve,
                          budget_path, policy_value_arms)

ARM = "arm"  # the long frame's and every per-arm table's column naming the campaign arm (its slug)
RULE_PREFIX = "policy rule: "  # the policy table's name of the configured rule, before its words
PROPENSITY_CLIP = 0.01  # a fitted arm propensity (randomized: false) is kept at or above this


def check_every_arm(arm, n_arms: int, source: str = "evaluation data") -> np.ndarray:
    """The arm index per user as int64; a DataValidationError naming ``source`` unless it holds only 0..K and
    every one of them (control and each campaign arm)."""
    a = np.asarray(arm, dtype=float)
    seen = set(np.unique(a).tolist())
    if not seen <= set(range(n_arms + 1)) or len(seen) < n_arms + 1:
        raise DataValidationError(f"{source}: treatment holds arms {sorted(int(v) for v in seen if v % 1 == 0)[:10]}"
                                  f"; control (0) and every campaign arm 1..{n_arms} are needed, and no other value")
    return a.astype(np.int64)


def arm_block(frame: pd.DataFrame, slug: str) -> pd.DataFrame:
    """Arm ``slug``'s rows of the long frame: one per holdout user, in holdout order."""
    return frame[frame[ARM] == slug].reset_index(drop=True)


def pair_frame(block: pd.DataFrame, k: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The users of control and arm ``k`` in arm k's ``block``, with ``treatment`` 1 for arm k and 0 for control
    (the one-arm frame), and the mask of those users among all holdout users."""
    mask = block["treatment"].isin([0, k]).to_numpy()
    pair = block[mask].reset_index(drop=True)
    return pair.assign(treatment=(pair["treatment"] == k).astype(float)), mask


def _first(table: pd.DataFrame, slug: str) -> pd.DataFrame:
    return table.assign(**{ARM: slug})[[ARM, *table.columns]]


def arm_model_tables(frame: pd.DataFrame, models, slugs, features: pd.DataFrame, Z, numeric, categorical,
                     fits: dict, **options) -> dict[str, pd.DataFrame]:
    """Per campaign arm (``slugs`` in arm order, arm k at k - 1): ``holdout_ate`` and ``model_tables`` on the pair
    of control and arm k (``options``: model_tables' top_k, n_bootstrap, seed, calibration_bins, segment_bins;
    ``fits``: holdout_ate's randomized, n_folds, outcome_model, seed), the truth metrics over every holdout user;
    each table stacked over the arms with an ``arm`` column first. ``features`` and ``Z``: the holdout's raw and
    encoded features, rows in holdout order."""
    out: dict[str, list] = {"ate": [], "metrics": [], "curves": [], "calibration": [], "segments": []}
    for k, slug in enumerate(slugs, start=1):
        block = arm_block(frame, slug)
        pair, mask = pair_frame(block, k)
        tables = model_tables(pair, models, features[mask].reset_index(drop=True), numeric, categorical, **options)
        if "true_uplift" in block:
            tables["metrics"] = _truth_over_everyone(tables["metrics"], block, models)
        tables["ate"] = holdout_ate(np.asarray(Z)[mask], pair, **fits)
        for name, table in tables.items():
            out[name].append(_first(table, slug))
    return {name: pd.concat(parts, ignore_index=True) for name, parts in out.items()}


def _truth_over_everyone(metrics: pd.DataFrame, block: pd.DataFrame, models) -> pd.DataFrame:
    """``metrics`` with the truth metrics of each model recomputed on every user of the arm's ``block``."""
    rows = []
    for m in models:
        lo, hi = (block[c] for c in INTERVALS[m]) if m in INTERVALS else (None, None)
        rows.append(truth_metrics(block[m], block["true_uplift"], lo, hi))
    truth = pd.DataFrame(rows, index=metrics.index)
    return metrics.assign(**{c: truth[c] for c in truth.columns})


# ------------------------------------------------------------------------------------- policy values
def arm_propensity(Z, arm) -> np.ndarray:
    """(n, K + 1) in-sample multinomial logistic P(arm k | x), clipped below at ``PROPENSITY_CLIP`` (a holdout
    that was not randomized: ``evaluation.randomized: false``)."""
    from sklearn.linear_model import LogisticRegression

    from .metrics import _standardize

    Zs = _standardize(Z)
    model = LogisticRegression(C=1.0, max_iter=2000).fit(Zs, np.asarray(arm, dtype=int))
    return np.clip(model.predict_proba(Zs), PROPENSITY_CLIP, 1.0)  # columns: classes_, the arms 0..K in order


def holdout_arm_scores(Z, arm, y, n_arms: int, randomized: bool = True, n_folds: int = 5,
                       outcome_model: str = "lightgbm", seed: int = 0) -> dict[str, np.ndarray]:
    """{"aipw", "ipw"}: (n, K + 1) ``policy_arms.arm_scores`` on the holdout, the assignment shares the holdout's
    own (randomized) or a fitted propensity (``arm_propensity``)."""
    shares = None if randomized else arm_propensity(Z, arm)
    return {method: arm_scores(Z, arm, y, n_arms, shares, method, n_folds, outcome_model, seed)
            for method in ("aipw", "ipw")}


def rule_label(policy: PolicyConfig) -> str:
    """The configured rule over several arms, in words."""
    return {"nobody": "nobody", "expected_profit": "best arm by expected profit",
            "bayes_prob": f"best arm with P(profit > 0) >= {policy.prob_threshold}"}[policy.rule]


def posterior_arm_choice(post: pd.DataFrame, policy: PolicyConfig, econ: ArmEconomics) -> np.ndarray:
    """The arm per user that ``policy`` chooses from the Bayesian posterior (``post``: ``uplift_<arm>``, the 90%
    interval ``uplift_<arm>_lower`` / ``_upper`` and ``prob_profit_<arm>`` per arm of ``econ.arms``).

    ``decide_arm`` as scoring decides, except that ``bayes_prob`` takes R's exact P(profit > 0) per arm (counted
    over the posterior draws), as the one-arm evaluation does, instead of a normal fit to the interval."""
    check_arm_rule(policy)
    if policy.rule == "bayes_prob":
        uplift = post[[f"uplift_{a}" for a in econ.arms]].to_numpy(float)
        prob = post[[f"prob_profit_{a}" for a in econ.arms]].to_numpy(float)
        return best_arm_by_probability(uplift, prob, econ, policy.prob_threshold)
    return decide_arm(post, policy, econ)


def arm_rule_choices(uplift: dict, post: pd.DataFrame, surrogate: pd.DataFrame | None, policy: PolicyConfig,
                     econ: ArmEconomics, aipw: np.ndarray, truth=None) -> list[tuple[str, str, np.ndarray]]:
    """(model, rule, arm per user) of every rule the policy table values: nobody; each arm for everyone; everyone
    the arm of highest AIPW average profit on this holdout (the best single-arm plan, chosen on the very users it
    is valued on: an optimistic benchmark for the per-user rules); the configured rule on the Bayesian posterior
    and on the surrogate (what scoring decides); each model's best arm by expected profit (not random: its scores
    are not in spend units); the truth's best arm when known.

    ``uplift``: {model: (n, K)}; ``post``/``surrogate``: per-arm predictions as ``posterior_arm_choice`` and
    ``decide_arm`` take them; ``aipw``: (n, K + 1) scores; ``truth``: (n, K) true uplift or None."""
    n = len(post)
    choices = [("-", "nobody", np.zeros(n, dtype=np.int64))]
    everyone = [("-", f"everyone: {name}", np.full(n, k, dtype=np.int64)) for k, name in enumerate(econ.names(), 1)]
    values = [policy_value_arms(arm, aipw, econ)["value"] for _, _, arm in everyone]
    best = int(np.argmax(values))
    choices += everyone + [("-", f"everyone: best average arm ({econ.names()[best]})", everyone[best][2])]
    label = f"{RULE_PREFIX}{rule_label(policy)}"
    choices.append(("bayesian", label, posterior_arm_choice(post, policy, econ)))
    if surrogate is not None:
        choices.append(("surrogate", label, decide_arm(surrogate, policy, econ)))
    for m, u in uplift.items():
        configured = m in ("bayesian", "surrogate") and policy.rule == "expected_profit"  # the same row as above
        if m != "random" and not configured:
            choices.append((m, "best arm by expected profit", best_arm_by_expected_profit(u, econ)))
    if truth is not None:
        choices.append((ORACLE, "best arm by expected profit", best_arm_by_expected_profit(truth, econ)))
    return choices


def arm_policy_table(choices, scores: dict, econ: ArmEconomics, truth=None) -> pd.DataFrame:
    """Value per 1,000 holdout users of each (model, rule, arm per user) of ``choices`` vs contacting nobody
    (``policy_value_arms``, by AIPW and IPW ``scores``; ``value_true`` from the (n, K) true uplift when given), with
    the share contacted, the share given each arm and the contact spend per 1,000 users."""
    true_scores = None if truth is None else np.column_stack([np.zeros(len(truth)), truth])
    rows = []
    for model, rule, arm in choices:
        a, i = (policy_value_arms(arm, scores[m], econ) for m in ("aipw", "ipw"))
        row = {"model": model, "rule": rule, "share_treated": a["share_treated"],
               **{f"share_{name}": float(np.mean(arm == k)) for k, name in enumerate(econ.names(), 1)},
               "spend": a["spend"], "value_aipw": a["value"], "aipw_low": a["ci_low"], "aipw_high": a["ci_high"],
               "value_ipw": i["value"], "ipw_low": i["ci_low"], "ipw_high": i["ci_high"]}
        if true_scores is not None:
            row["value_true"] = policy_value_arms(arm, true_scores, econ)["value"]
        rows.append(row)
    return pd.DataFrame(rows)


def bayesian_budget_curve(uplift, aipw, econ: ArmEconomics) -> pd.DataFrame:
    """The multi-arm budget curve (``policy_arms.budget_curve``) of the Bayesian posterior means ``uplift`` (n, K),
    valued by the AIPW ``aipw`` scores, with a ``model`` column first: curves ``policy_arms.ALL_ARMS`` (the budget
    spent over every arm) and each arm alone."""
    curve = budget_curve(budget_path(uplift, econ), aipw, econ)
    return curve.assign(model="bayesian")[["model", *curve.columns]]

