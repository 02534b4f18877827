"""The contact decision with several campaign arms: which arm, if any, for each user (issue 25).

``decide_arm`` is to several arms what ``policy.decide`` is to one: batch scoring, the HTTP service and Lambda
all call it, and it decides each user alone. Its economics come from the config's policy section
(``arm_economics``): ``cost_per_contact`` and ``margin`` for every arm, ``policy.arms`` overriding them per arm
level. Rules: ``expected_profit`` (the arm of highest margin_k * uplift_k - cost_k when it is > 0, else control),
``bayes_prob`` (the same among the arms whose P(profit > 0) reaches ``prob_threshold``, from each arm's 90%
uplift interval as for one arm) and ``nobody``; ``everybody`` and ``top_k`` rank one campaign and are refused.
"""
from __future__ import annotations

import numpy as np

from .policy import PolicyConfig, prob_profit_from_quantiles
from .policy_arms import ArmEconomics, best_arm_by_expected_profit, best_arm_by_probability

ARM_RULES = ("nobody", "expected_profit", "bayes_prob")


def arm_economics(policy: PolicyConfig, levels: list[str], names: list[str] | None = None) -> ArmEconomics:
    """Per-arm cost and margin for the campaign arm ``levels`` (arm index order): ``policy.arms[level]`` where
    given, else the policy's own ``cost_per_contact`` and ``margin``; ``names`` label the arms (their column
    suffixes). An override naming no arm is an error that lists the arms."""
    unknown = sorted(set(policy.arms) - set(levels))
    if unknown:
        raise ValueError(f"policy arms names {unknown}, which are not campaign arms of this model; its arms are "
                         f"{list(levels)}")
    costs = [float(policy.arms.get(level, {}).get("cost_per_contact", policy.cost_per_contact)) for level in levels]
    margins = [float(policy.arms.get(level, {}).get("margin", policy.margin)) for level in levels]
    return ArmEconomics(np.array(costs), np.array(margins), tuple(names or levels))


def check_arm_rule(policy: PolicyConfig) -> None:
    """Refuse a rule that has no meaning over several arms, before any user is scored."""
    if policy.rule not in ARM_RULES:
        raise ValueError(f"policy rule {policy.rule!r} ranks users for one campaign; with several campaign arms "
                         f"choose one of {list(ARM_RULES)}")


def decide_arm(predictions, policy: PolicyConfig, econ: ArmEconomics) -> np.ndarray:
    """The arm index (0 = control, k = arm k) chosen for each user by ``policy.rule``.

    ``predictions``: a DataFrame or dict of arrays with ``uplift_<arm>`` and, for ``bayes_prob``,
    ``uplift_<arm>_lower`` / ``uplift_<arm>_upper`` per arm, ``<arm>`` each of ``econ.arms``.
    """
    check_arm_rule(policy)
    uplift = np.column_stack([np.asarray(predictions[f"uplift_{a}"], dtype=float) for a in econ.arms])
    if policy.rule == "nobody":
        return np.zeros(len(uplift), dtype=np.int64)
    if policy.rule == "expected_profit":
        return best_arm_by_expected_profit(uplift, econ)
    prob = np.column_stack([
        prob_profit_from_quantiles(uplift[:, k], predictions[f"uplift_{a}_lower"], predictions[f"uplift_{a}_upper"],
                                   econ.margins[k], econ.costs[k]) for k, a in enumerate(econ.arms)])
    return best_arm_by_probability(uplift, prob, econ, policy.prob_threshold)
