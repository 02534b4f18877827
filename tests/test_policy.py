"""Targeting rules, P(profit > 0), off-policy values per 1,000 users, and config checks on policy keys."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from bayeslift import policy as pol
from bayeslift.metrics import aipw_scores
from eval_constants import POLICY_MAX_SE

REPO = Path(__file__).resolve().parents[1]


def test_treat_decision_unchanged():
    p = pol.PolicyConfig(cost_per_contact=1.0, margin=0.5)
    np.testing.assert_array_equal(pol.treat_decision(np.array([1.0, 2.0, 3.0]), p), [False, False, True])
    assert pol.treat_decision(np.array([0.1, -0.1])).tolist() == [True, False]


@pytest.mark.parametrize("kwargs, match", [({"cost_per_contact": -1}, "cost_per_contact"),
                                           ({"prob_threshold": 1.5}, "prob_threshold"),
                                           ({"prob_threshold": -0.1}, "prob_threshold"),
                                           ({"margin": 0}, "margin"), ({"rule": "x"}, "rule"),
                                           ({"top_k": 0}, "top_k")])
def test_bad_policy_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pol.PolicyConfig(**kwargs)


@pytest.mark.parametrize("section", [{"cost_per_contact": -1}, {"prob_threshold": 1.2}, {"prob_threshold": -0.2}])
def test_schema_rejects_bad_policy(section):
    from snakemake.utils import validate

    schema = str(REPO / "config" / "config.schema.yaml")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, schema, set_default=True)  # the shipped config is valid
    config["policy"].update(section)
    with pytest.raises(Exception, match="policy|minimum|maximum"):
        validate(config, schema, set_default=True)


def test_rules():
    u = np.array([3.0, -1.0, 5.0, 0.5, 2.0])
    assert pol.treat_top_k(u, 0.4).tolist() == [True, False, True, False, False]
    assert not pol.treat_nobody(u).any() and pol.treat_everybody(u).all()
    cfg = pol.PolicyConfig(cost_per_contact=1.0, margin=0.5, rule="bayes_prob", prob_threshold=0.7)
    assert pol.apply_rule(cfg, u, prob=np.array([0.9, 0.1, 0.7, 0.69, 0.8])).tolist() == [True, False, True, False, True]
    with pytest.raises(ValueError, match="posterior probability"):
        pol.apply_rule(cfg, u)


def test_prob_profit_normal_posterior_is_exact():
    mu, sd, margin, cost = np.array([1.0, 2.0, -1.0]), np.array([1.0, 0.5, 2.0]), 0.5, 0.4
    z = stats.norm.ppf(0.95)
    p = pol.prob_profit_from_quantiles(mu, mu - z * sd, mu + z * sd, margin, cost)
    np.testing.assert_allclose(p, stats.norm.sf((cost / margin - mu) / sd))
    summary = {"uplift_median": mu, "uplift_q05": mu - z * sd, "uplift_q95": mu + z * sd, "prob_positive": [0.1, 0.2, 0.3]}
    assert pol.prob_profit(summary, margin, 0.0).tolist() == [0.1, 0.2, 0.3]  # exact from R when cost is 0
    exact = {**summary, "prob_profit": [0.4, 0.5, 0.6]}
    assert pol.prob_profit(exact, margin, cost).tolist() == [0.4, 0.5, 0.6]  # R's count over the draws wins


def test_policy_values_follow_the_truth():
    rng = np.random.default_rng(0)
    n, margin, cost = 20000, 1.0, 0.8
    x = rng.normal(size=(n, 2))
    tau = 1.0 + 1.5 * x[:, 0]
    t = rng.binomial(1, 0.5, n).astype(float)
    y = 3 + x[:, 1] + tau * t + rng.normal(size=n)
    scores = aipw_scores(x, t, y, propensity=0.5, n_folds=3, outcome_model="linear")
    rules = {"oracle": margin * tau - cost > 0, "everybody": np.ones(n, bool), "nobody": np.zeros(n, bool),
             "top_20": pol.treat_top_k(tau, 0.2)}
    true = {k: pol.policy_value(r, tau, margin, cost)["value"] for k, r in rules.items()}
    assert true["oracle"] >= true["everybody"] >= true["nobody"] == 0  # what this truth implies
    assert true["oracle"] >= true["top_20"]
    est = {k: pol.policy_value(r, scores, margin, cost) for k, r in rules.items()}
    for k in rules:
        assert abs(est[k]["value"] - true[k]) <= POLICY_MAX_SE * max(est[k]["se"], 1e-9), (k, est[k], true[k])
    assert est["oracle"]["value"] > est["everybody"]["value"]
    ipw = pol.policy_value(rules["oracle"], pol.uplift_scores(t, y, 0.5), margin, cost)
    assert abs(ipw["value"] - true["oracle"]) <= POLICY_MAX_SE * ipw["se"]
    assert ipw["se"] > est["oracle"]["se"]  # AIPW is the sharper estimator
    curve = pol.policy_curve(tau, scores, margin, cost, fractions=[0, 0.5, 1])
    assert curve["value"].iloc[0] == 0 and curve["share_treated"].tolist() == [0, 0.5, 1]
