"""Targeting decisions from predicted uplift, and their value on a randomized holdout.

Economics: contacting a user costs ``cost_per_contact``; each unit of extra spend earns ``margin``.
The incremental profit of contacting user i is ``margin * uplift_i - cost_per_contact``.

Rules (``PolicyConfig.rule``):
* ``nobody``          treat no one (value 0 by definition: values are incremental to this rule);
* ``everybody``       treat everyone;
* ``top_k``           treat the ``top_k`` share with the highest predicted uplift;
* ``expected_profit`` treat where margin * uplift - cost > 0 (the default; ``treat_decision``);
* ``bayes_prob``      treat where P(margin * uplift - cost > 0 | data) >= ``prob_threshold``.

The value of a rule on a randomized holdout is estimated off-policy: for each user the doubly-robust
(AIPW) or inverse-propensity (IPW) score of the uplift, Gamma_i, is unbiased for the user's uplift;
the incremental profit per 1,000 users of a rule pi is 1000 * mean(pi_i * (margin * Gamma_i - cost)),
with a normal 95% interval from the standard error of those per-user terms.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

RULES = ("nobody", "everybody", "top_k", "expected_profit", "bayes_prob")


@dataclass
class PolicyConfig:
    cost_per_contact: float = 0.0
    margin: float = 1.0  # profit per unit of spend
    rule: str = "expected_profit"
    top_k: float = 0.2
    prob_threshold: float = 0.8

    def __post_init__(self):
        if not np.isfinite(self.cost_per_contact) or self.cost_per_contact < 0:
            raise ValueError(f"policy cost_per_contact must be a finite number >= 0, got {self.cost_per_contact}")
        if not np.isfinite(self.margin) or self.margin <= 0:
            raise ValueError(f"policy margin must be a finite number > 0, got {self.margin}")
        if self.rule not in RULES:
            raise ValueError(f"policy rule {self.rule!r} unknown; choose from {list(RULES)}")
        if not 0 < self.top_k <= 1:
            raise ValueError(f"policy top_k must be in (0, 1], got {self.top_k}")
        if not 0 <= self.prob_threshold <= 1:
            raise ValueError(f"policy prob_threshold must be in [0, 1], got {self.prob_threshold}")

    @classmethod
    def from_config(cls, section: dict) -> "PolicyConfig":
        keys = ("cost_per_contact", "margin", "rule", "top_k", "prob_threshold")
        return cls(**{k: section[k] for k in keys if k in section})


def treat_decision(uplift: np.ndarray, policy: PolicyConfig = PolicyConfig()) -> np.ndarray:
    """Boolean array: treat where the expected incremental profit is positive."""
    return policy.margin * np.asarray(uplift, dtype=float) - policy.cost_per_contact > 0


def treat_nobody(uplift) -> np.ndarray:
    return np.zeros(len(uplift), dtype=bool)


def treat_everybody(uplift) -> np.ndarray:
    return np.ones(len(uplift), dtype=bool)


def treat_top_k(uplift, k: float) -> np.ndarray:
    """Treat the round(k * n) users with the highest uplift (ties broken by position, stable)."""
    uplift = np.asarray(uplift, dtype=float)
    n_treat = int(round(k * len(uplift)))
    out = np.zeros(len(uplift), dtype=bool)
    out[np.argsort(-uplift, kind="stable")[:n_treat]] = True
    return out


def treat_bayes(prob_profit, threshold: float) -> np.ndarray:
    """Treat where the posterior probability of a positive incremental profit is >= threshold."""
    return np.asarray(prob_profit, dtype=float) >= threshold


def sd_from_90_interval(q05, q95) -> np.ndarray:
    """The sd of a normal whose 5% and 95% quantiles are q05 and q95 (floored at 1e-12)."""
    return np.maximum((np.asarray(q95, dtype=float) - np.asarray(q05, dtype=float)) / (2 * stats.norm.ppf(0.95)), 1e-12)


def prob_profit_from_quantiles(median, q05, q95, margin: float, cost: float) -> np.ndarray:
    """Approximate P(margin * uplift - cost > 0) from a posterior's 5/50/95% quantiles.

    Normal fit: centre = median, sd = (q95 - q05) / (2 * 1.645). For surrogate scores, which carry no
    draws; the Bayesian model's uplift summary has the exact value (see ``prob_profit``).
    """
    sd = sd_from_90_interval(q05, q95)
    return stats.norm.sf((cost / margin - np.asarray(median, dtype=float)) / sd)


def prob_profit(summary, margin: float, cost: float) -> np.ndarray:
    """P(incremental profit > 0) per user from an uplift summary (columns of uplift_summary.csv).

    Exact when the summary has R's ``prob_profit`` (counted over the posterior draws with the pipeline's
    policy margin and cost, which are the ones passed here) or when cost == 0 (``prob_positive``);
    otherwise the normal approximation above.
    """
    if "prob_profit" in summary:
        return np.asarray(summary["prob_profit"], dtype=float)
    if cost == 0 and "prob_positive" in summary:
        return np.asarray(summary["prob_positive"], dtype=float)
    return prob_profit_from_quantiles(summary["uplift_median"], summary["uplift_q05"], summary["uplift_q95"],
                                      margin, cost)


def apply_rule(policy: PolicyConfig, uplift, prob=None) -> np.ndarray:
    """Decisions of the configured rule; ``prob`` (P(profit > 0)) is needed for ``bayes_prob``."""
    if policy.rule == "nobody":
        return treat_nobody(uplift)
    if policy.rule == "everybody":
        return treat_everybody(uplift)
    if policy.rule == "top_k":
        return treat_top_k(uplift, policy.top_k)
    if policy.rule == "expected_profit":
        return treat_decision(uplift, policy)
    if prob is None:
        raise ValueError("rule 'bayes_prob' needs the posterior probability of a positive profit")
    return treat_bayes(prob, policy.prob_threshold)


def uplift_scores(t, y, propensity, mu1=None, mu0=None) -> np.ndarray:
    """Per-user unbiased scores of the uplift: AIPW when outcome models mu1/mu0 are given, else IPW."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    e = np.broadcast_to(np.asarray(propensity, dtype=float), t.shape)
    if mu1 is None or mu0 is None:
        return t * y / e - (1 - t) * y / (1 - e)
    mu1, mu0 = np.asarray(mu1, dtype=float), np.asarray(mu0, dtype=float)
    return mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)


def policy_value(treat, scores, margin: float, cost: float, level: float = 0.95, per: int = 1000) -> dict:
    """Incremental profit per ``per`` users of decisions ``treat`` vs treating nobody, with a CI.

    ``scores`` are per-user uplift scores (``uplift_scores``) or, for the oracle, the true uplift.
    """
    treat = np.asarray(treat, dtype=float)
    terms = per * treat * (margin * np.asarray(scores, dtype=float) - cost)
    est = float(terms.mean())
    se = float(terms.std(ddof=1) / np.sqrt(len(terms))) if len(terms) > 1 else float("nan")
    z = stats.norm.ppf(0.5 + level / 2)
    return {"value": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se,
            "share_treated": float(treat.mean())}


def policy_curve(uplift, scores, margin: float, cost: float, fractions=None, per: int = 1000) -> "pd.DataFrame":
    """Value per ``per`` users of treating the top fraction f by predicted uplift, for f in ``fractions``."""
    import pandas as pd

    fractions = np.linspace(0, 1, 21) if fractions is None else np.asarray(fractions)
    rows = []
    for f in fractions:
        v = policy_value(treat_top_k(uplift, f), scores, margin, cost, per=per)
        rows.append({"fraction": float(f), **v})
    return pd.DataFrame(rows)


def treat_scored(predictions, policy: PolicyConfig) -> np.ndarray:
    """The ``treat`` column of scored users (0/1), one user at a time so it works chunk by chunk.

    ``bayes_prob`` uses the surrogate's 90% uplift interval (normal approximation; the median is taken
    as the point uplift). ``top_k`` needs the whole file ranked, which chunked scoring cannot do: it falls
    back to the expected-profit rule there, and the evaluation step reports top-k values instead.
    """
    uplift = np.asarray(predictions["uplift"], dtype=float)
    if policy.rule == "bayes_prob":
        prob = prob_profit_from_quantiles(uplift, predictions["uplift_lower"], predictions["uplift_upper"],
                                          policy.margin, policy.cost_per_contact)
        return apply_rule(policy, uplift, prob).astype(int)
    if policy.rule == "top_k":
        return treat_decision(uplift, policy).astype(int)
    return apply_rule(policy, uplift).astype(int)
