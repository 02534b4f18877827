"""Simulated e-mail campaign histories with known expected spend under both arms.

Shaped like real retail e-mail tests (Hillstrom-like): most customers spend nothing, buyers' spend is
log-normal with a heavy tail, and the campaign lifts both the chance to buy and the basket for some
customers more than others. The truth (expected spend under each arm) is returned apart from the data,
so a pipeline reading the history cannot peek at it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CHANNELS = ("web", "phone", "multichannel")
CHANNEL_PROBS = (0.44, 0.44, 0.12)
CHANNEL_BUY_EFFECT = {"web": 0.0, "phone": -0.2, "multichannel": 0.3}

# Column names of the simulated files; config/config.yaml uses the same ones.
COLUMNS = {
    "id": "customer_id",
    "treatment": "campaign",
    "outcome": "spend",
    "numeric": ["past_spend", "recency", "tenure", "is_new"],
    "categorical": ["channel"],
    "log1p": ["past_spend"],
}


@dataclass(frozen=True)
class Scenario:
    """Coefficients of the true two-part model (logit of buying; log of a buyer's spend)."""

    buy_intercept: float = -2.2
    buy_past_spend: float = 0.6
    buy_recency: float = -0.4
    buy_is_new: float = 0.2
    lift_intercept: float = 0.15
    lift_recency: float = -0.25
    lift_is_new: float = 0.3
    lift_web: float = 0.15
    amount_intercept: float = 4.0
    amount_past_spend: float = 0.35
    amount_tenure: float = 0.05
    amount_lift: float = 0.05
    amount_lift_past_spend: float = 0.08
    sigma: float = 0.7
    treated_share: float = 0.5


def _features(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "past_spend": np.round(np.exp(rng.normal(5.0, 0.9, n)) - 1.0, 2).clip(0.0),
            "recency": rng.integers(1, 13, n),
            "tenure": np.round(rng.uniform(0.0, 10.0, n), 2),
            "is_new": rng.binomial(1, 0.5, n),
            "channel": rng.choice(CHANNELS, size=n, p=CHANNEL_PROBS),
        }
    )


def _two_parts(features: pd.DataFrame, treated, scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """P(buy) and the log-scale mean of a buyer's spend, per user, under arm ``treated``."""
    s = scenario
    t = np.broadcast_to(np.asarray(treated, dtype=float), (len(features),))
    z_spend = (np.log1p(features["past_spend"].to_numpy()) - 5.0) / 0.9
    z_recency = (features["recency"].to_numpy() - 6.5) / 3.5
    z_tenure = (features["tenure"].to_numpy() - 5.0) / 2.9
    is_new = features["is_new"].to_numpy()
    channel = features["channel"].to_numpy()
    logit = (
        s.buy_intercept
        + s.buy_past_spend * z_spend
        + s.buy_recency * z_recency
        + s.buy_is_new * is_new
        + np.vectorize(CHANNEL_BUY_EFFECT.get)(channel)
        + t * (s.lift_intercept + s.lift_recency * z_recency + s.lift_is_new * is_new + s.lift_web * (channel == "web"))
    )
    mu = (
        s.amount_intercept
        + s.amount_past_spend * z_spend
        + s.amount_tenure * z_tenure
        + t * (s.amount_lift + s.amount_lift_past_spend * z_spend)
    )
    return 1.0 / (1.0 + np.exp(-logit)), mu


def expected_spend(features: pd.DataFrame, treated, scenario: Scenario = Scenario()) -> np.ndarray:
    """True E[spend | features, arm] = P(buy) * exp(mu + sigma^2 / 2)."""
    p_buy, mu = _two_parts(features, treated, scenario)
    return p_buy * np.exp(mu + scenario.sigma**2 / 2.0)


def simulate_history(n: int, seed: int = 1, scenario: Scenario = Scenario(), id_start: int = 1):
    """Simulate a randomized campaign.

    Returns ``(history, truth)``: history has customer_id, campaign, spend and the features; truth has
    customer_id, true_spend_if_treated, true_spend_if_control, true_uplift.
    """
    rng = np.random.default_rng(seed)
    features = _features(n, rng)
    campaign = rng.binomial(1, scenario.treated_share, n)
    ids = np.arange(id_start, id_start + n)
    p_buy, mu = _two_parts(features, campaign, scenario)
    buys = rng.uniform(size=n) < p_buy
    spend = np.where(buys, np.round(np.exp(mu + scenario.sigma * rng.normal(size=n)), 2), 0.0)
    mean_treated = expected_spend(features, 1, scenario)
    mean_control = expected_spend(features, 0, scenario)

    history = pd.DataFrame({"customer_id": ids, "campaign": campaign, "spend": spend})
    history = pd.concat([history, features], axis=1)
    truth = pd.DataFrame(
        {
            "customer_id": ids,
            "true_spend_if_treated": mean_treated,
            "true_spend_if_control": mean_control,
            "true_uplift": mean_treated - mean_control,
        }
    )
    return history, truth


def simulate_new_users(n: int, seed: int = 2, scenario: Scenario = Scenario(), id_start: int = 1_000_001):
    """Users to score (id + features, no treatment or outcome) and their true uplift."""
    history, truth = simulate_history(n, seed=seed, scenario=scenario, id_start=id_start)
    return history.drop(columns=["campaign", "spend"]), truth


def write_simulated_data(history, new_users, history_truth, new_users_truth, n_history: int = 20000,
                         n_new_users: int = 50000, seed: int = 1) -> None:
    """Write the demo campaign history and users to score, with their truths in separate files."""
    from .io import write_csv_atomic

    hist, hist_truth = simulate_history(n_history, seed=seed)
    users, users_truth = simulate_new_users(n_new_users, seed=seed + 1)
    write_csv_atomic(hist, history)
    write_csv_atomic(users, new_users)
    write_csv_atomic(hist_truth, history_truth)
    write_csv_atomic(users_truth, new_users_truth)
