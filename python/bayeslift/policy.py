"""Targeting decisions from predicted uplift, and their value on a randomized holdout.

Economics: contacting a user costs ``cost_per_contact``; each unit of extra spend earns ``margin``.
The incremental profit of contacting user i is ``margin * uplift_i - cost_per_contact``.

Rules (``PolicyConfig.rule``):
* ``nobody``          treat no one (value 0 by definition: values are incremental to this rule);
* ``everybody``       treat everyone;
* ``top_k``           treat where the predicted uplift reaches the threshold above which the ``top_k`` share of
                      the holdout users' predicted uplift lies (learned on the holdout, stored with the model);
* ``expected_profit`` treat where margin * uplift - cost > 0 (the default; ``treat_decision``);
* ``bayes_prob``      treat where P(margin * uplift - cost > 0 | data) >= ``prob_threshold``.

``decide(predictions, policy)`` is the one decision: batch scoring, the HTTP service, Lambda and the evaluation
all call it. It decides each user alone (no ranking of the users at hand), so one user scored over HTTP gets
the ``treat`` the same user gets in a scored file.

The value of a rule on a randomized holdout is estimated off-policy: for each user the doubly-robust
(AIPW) or inverse-propensity (IPW) score of the uplift, Gamma_i, is unbiased for the user's uplift;
the incremental profit per 1,000 users of a rule pi is 1000 * mean(pi_i * (margin * Gamma_i - cost)),
with a normal 95% interval from the standard error of those per-user terms.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

RULES = ("nobody", "everybody", "top_k", "expected_profit", "bayes_prob")
#: how many quantiles of the holdout's predicted uplift a model stores: shares 0, 0.001, ..., 1
QUANTILE_POINTS = 1001
#: the standard normal's 95% quantile, scipy.stats.norm.ppf(0.95) to the last bit (a test checks): scoring
#: imports no scipy.stats (1.2 CPU-s), and scipy.special only for the bayes_prob rule
Z_95 = 1.6448536269514722


def norm_sf(x):
    """P(Z > x) of a standard normal: what ``scipy.stats.norm.sf`` computes (``scipy.special.ndtr(-x)``)."""
    from scipy.special import ndtr

    return ndtr(-np.asarray(x, dtype=float))


def norm_ppf(q):
    """The standard normal's ``q`` quantile: what ``scipy.stats.norm.ppf`` computes (``scipy.special.ndtri``)."""
    from scipy.special import ndtri

    return ndtri(q)


@dataclass
class PolicyConfig:
    cost_per_contact: float = 0.0
    margin: float = 1.0  # profit per unit of spend
    rule: str = "expected_profit"
    top_k: float = 0.2
    prob_threshold: float = 0.8
    # Learned, never configured: the predicted uplift from which top_k treats (``for_model``), None until then.
    top_k_threshold: float | None = None
    #: several campaign arms: per arm level, {"cost_per_contact": ..., "margin": ...} overriding the two above
    #: (decide_arms.arm_economics); arms not named take them
    arms: dict = field(default_factory=dict)

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
        if self.top_k_threshold is not None and not np.isfinite(self.top_k_threshold):
            raise ValueError(f"policy top_k_threshold must be finite, got {self.top_k_threshold}")
        if not isinstance(self.arms, dict) or any(
                not isinstance(v, dict) or set(v) - {"cost_per_contact", "margin"} for v in self.arms.values()):
            raise ValueError("policy arms must map each arm level to {cost_per_contact, margin}, got "
                             f"{self.arms!r}"[:300])

    @classmethod
    def from_config(cls, section: dict) -> "PolicyConfig":
        keys = ("cost_per_contact", "margin", "rule", "top_k", "prob_threshold", "arms")
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
    return np.maximum((np.asarray(q95, dtype=float) - np.asarray(q05, dtype=float)) / (2 * Z_95), 1e-12)


def prob_profit_from_quantiles(median, q05, q95, margin: float, cost: float) -> np.ndarray:
    """Approximate P(margin * uplift - cost > 0) from a posterior's 5/50/95% quantiles.

    Normal fit: centre = median, sd = (q95 - q05) / (2 * 1.645). For surrogate scores, which carry no
    draws; the Bayesian model's uplift summary has the exact value (see ``prob_profit``).
    """
    sd = sd_from_90_interval(q05, q95)
    return norm_sf((cost / margin - np.asarray(median, dtype=float)) / sd)


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


def uplift_quantiles(uplift, points: int = QUANTILE_POINTS) -> list[float]:
    """Quantiles of predicted uplift at shares 0, 1/(points-1), ..., 1 (numpy's linear method), as stored
    with a model (manifest ``targeting``) so that ``top_k`` can decide a user alone."""
    uplift = np.asarray(uplift, dtype=float)
    if len(uplift) == 0 or not np.isfinite(uplift).all():
        raise ValueError("uplift quantiles need at least one user and finite predictions")
    return [float(q) for q in np.quantile(uplift, np.linspace(0.0, 1.0, points))]


def top_k_threshold(quantiles, k: float) -> float:
    """The predicted uplift at and above which the top ``k`` share of the users behind ``quantiles`` lies: their
    (1 - k) quantile, linear between stored points (exact at multiples of 1/(points-1), 0.1% by default)."""
    q = np.asarray(quantiles, dtype=float)
    return float(np.interp(1.0 - k, np.linspace(0.0, 1.0, len(q)), q))


def for_model(policy: PolicyConfig, quantiles) -> PolicyConfig:
    """``policy`` with the top_k threshold learned from a model's holdout uplift ``quantiles`` (only the top_k
    rule needs one; None: the model stores none, which only top_k refuses)."""
    if policy.rule != "top_k" or policy.top_k_threshold is not None:
        return policy
    if quantiles is None:
        raise ValueError("policy rule top_k needs the uplift threshold learned on the holdout, and this model "
                         "stores none (no 'targeting' entry in its manifest); retrain it or choose another rule")
    return replace(policy, top_k_threshold=top_k_threshold(quantiles, policy.top_k))


def decide(predictions, policy: PolicyConfig) -> np.ndarray:
    """The ``treat`` decision (bool per user) of ``policy.rule``, each user decided alone.

    ``predictions``: a DataFrame or dict of arrays with ``uplift`` and, for ``bayes_prob``, either
    ``prob_profit`` (exact, counted over posterior draws) or the 90% interval ``uplift_lower`` /
    ``uplift_upper`` (normal approximation centred at ``uplift``; the surrogate's case). ``top_k`` needs
    ``policy.top_k_threshold`` (``for_model``).
    """
    uplift = np.asarray(predictions["uplift"], dtype=float)
    rule = policy.rule
    if rule == "nobody":
        return treat_nobody(uplift)
    if rule == "everybody":
        return treat_everybody(uplift)
    if rule == "expected_profit":
        return treat_decision(uplift, policy)
    if rule == "top_k":
        if policy.top_k_threshold is None:
            raise ValueError("rule 'top_k' needs the uplift threshold learned on the holdout (policy.for_model)")
        return uplift >= policy.top_k_threshold
    if "prob_profit" in predictions:
        prob = predictions["prob_profit"]
    elif "uplift_lower" in predictions and "uplift_upper" in predictions:
        prob = prob_profit_from_quantiles(uplift, predictions["uplift_lower"], predictions["uplift_upper"],
                                          policy.margin, policy.cost_per_contact)
    else:
        raise ValueError("rule 'bayes_prob' needs the posterior probability of a positive profit ('prob_profit') "
                         "or a 90% uplift interval ('uplift_lower', 'uplift_upper')")
    return treat_bayes(prob, policy.prob_threshold)


def apply_rule(policy: PolicyConfig, uplift, prob=None) -> np.ndarray:
    """``decide`` on bare arrays; ``prob`` (P(profit > 0)) is needed for ``bayes_prob``."""
    return decide({"uplift": uplift, **({} if prob is None else {"prob_profit": prob})}, policy)


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
    z = norm_ppf(0.5 + level / 2)
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


def rules_table(frame, models, policy: PolicyConfig, aipw, ipw) -> "pd.DataFrame":
    """Value per 1,000 holdout users (AIPW, IPW, and the truth when known) of every rule, each decided by
    ``decide`` as scoring and serving decide: nobody, everybody; per model top ``top_k`` (the threshold is the
    model's (1 - top_k) uplift quantile on this holdout) and expected profit > 0; the Bayesian P(profit > 0).

    ``frame``: one row per holdout user, a predicted-uplift column per model in ``models``, ``bayesian`` and
    ``bayesian_prob_profit`` (R's exact share of draws with margin * uplift - cost > 0), ``true_uplift`` if known.
    """
    import pandas as pd

    truth = frame["true_uplift"] if "true_uplift" in frame else None
    value = lambda treat, scores: policy_value(treat, scores, policy.margin, policy.cost_per_contact)  # noqa: E731
    rule = lambda name, **learned: replace(policy, rule=name, **learned)  # noqa: E731
    rows = []

    def add(model, label, treat):
        a, i = value(treat, aipw), value(treat, ipw)
        rows.append({"model": model, "rule": label, "share_treated": a["share_treated"], "value_aipw": a["value"],
                     "aipw_low": a["ci_low"], "aipw_high": a["ci_high"], "value_ipw": i["value"],
                     "ipw_low": i["ci_low"], "ipw_high": i["ci_high"],
                     **({} if truth is None else {"value_true": value(treat, truth)["value"]})})

    everyone = {"uplift": np.zeros(len(frame))}
    add("-", "nobody", decide(everyone, rule("nobody")))
    add("-", "everybody", decide(everyone, rule("everybody")))
    for m in models:
        cut = top_k_threshold(uplift_quantiles(frame[m]), policy.top_k)
        add(m, f"top {round(100 * policy.top_k)}%", decide({"uplift": frame[m]}, rule("top_k", top_k_threshold=cut)))
        if m != "random":  # random scores are not in spend units
            add(m, "expected profit > 0", decide({"uplift": frame[m]}, rule("expected_profit")))
    add("bayesian", f"P(profit > 0) >= {policy.prob_threshold}",
        decide({"uplift": frame["bayesian"], "prob_profit": frame["bayesian_prob_profit"]}, rule("bayes_prob")))
    if truth is not None:
        add("oracle (true uplift)", "expected profit > 0", decide({"uplift": truth}, rule("expected_profit")))
    return pd.DataFrame(rows)
