"""Simulated e-mail campaign histories with known expected spend under both arms (or, scenario ``multi_arm``,
under each of three).

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
    # Extensions (issue 7). Their defaults leave the original linear scenario exactly as it was.
    #: weight of the nonlinear terms (thresholds, saturation, feature interactions) in baseline and effect.
    nonlinear: float = 0.0
    #: confounding strength: logit P(treated) = logit(treated_share) + confounding * (z_spend - z_recency).
    confounding: float = 0.0
    #: share of buyers whose basket is multiplied by ``whale_multiplier`` (a heavy tail beyond log-normal).
    whale_share: float = 0.0
    whale_multiplier: float = 1.0
    #: what the history records: "spend" (0 or a log-normal basket), "binary" (bought: 0/1, truth is
    #: P(buy)) or "gaussian" (a log-scale basket value mu + sigma * noise for everyone, truth is mu).
    outcome: str = "spend"
    name: str = "linear"


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


def _z(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z_spend = (np.log1p(features["past_spend"].to_numpy()) - 5.0) / 0.9
    z_recency = (features["recency"].to_numpy() - 6.5) / 3.5
    z_tenure = (features["tenure"].to_numpy() - 5.0) / 2.9
    return z_spend, z_recency, z_tenure


def _two_parts(features: pd.DataFrame, treated, scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """P(buy) and the log-scale mean of a buyer's spend, per user, under arm ``treated``."""
    s = scenario
    t = np.broadcast_to(np.asarray(treated, dtype=float), (len(features),))
    z_spend, z_recency, z_tenure = _z(features)
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
    if s.nonlinear:
        recency = features["recency"].to_numpy()
        web = channel == "web"
        # Baseline: a step for recent customers, saturation in past spend, a hump in tenure.
        logit = logit + s.nonlinear * (1.5 * (recency <= 3) + 0.8 * np.tanh(2.0 * z_spend) - 0.5 * z_spend)
        mu = mu + s.nonlinear * (-0.6 * z_tenure**2 + 0.6)
        # Effect: only recent customers respond to the campaign (threshold), more so new web customers
        # (a feature interaction); the basket lift saturates in past spend.
        logit = logit + t * s.nonlinear * (0.9 * (recency <= 4) - 0.35 + 0.5 * is_new * web)
        mu = mu + t * s.nonlinear * 0.3 * np.tanh(2.0 * z_spend)
    return 1.0 / (1.0 + np.exp(-logit)), mu


def true_propensity(features: pd.DataFrame, scenario: Scenario = Scenario()) -> np.ndarray:
    """True P(treated | features): ``treated_share`` for randomized scenarios, confounded otherwise."""
    base = np.log(scenario.treated_share / (1.0 - scenario.treated_share))
    if not scenario.confounding:
        return np.full(len(features), scenario.treated_share)
    z_spend, z_recency, _ = _z(features)
    return 1.0 / (1.0 + np.exp(-(base + scenario.confounding * (z_spend - z_recency))))


def expected_spend(features: pd.DataFrame, treated, scenario: Scenario | str = Scenario()) -> np.ndarray:
    """True E[outcome | features, arm]: for spend P(buy) * exp(mu + sigma^2 / 2) (times the whales' factor);
    P(buy) for a binary outcome; mu for a Gaussian one."""
    scenario = get_scenario(scenario)
    p_buy, mu = _two_parts(features, treated, scenario)
    if scenario.outcome == "binary":
        return p_buy
    if scenario.outcome == "gaussian":
        return mu
    out = p_buy * np.exp(mu + scenario.sigma**2 / 2.0)
    if scenario.whale_share:
        out = out * (1.0 + scenario.whale_share * (scenario.whale_multiplier - 1.0))
    return out


def simulate_history(n: int, seed: int = 1, scenario: Scenario | str = Scenario(), id_start: int = 1):
    """Simulate a campaign (randomized unless the scenario is confounded).

    ``scenario`` is a ``Scenario`` or the name of one in ``SCENARIOS``. Returns ``(history, truth)``:
    history has customer_id, campaign, spend and the features; truth has customer_id,
    true_spend_if_treated, true_spend_if_control, true_uplift, plus true_propensity when the scenario
    is confounded. ``"multi_arm"``: ``simulate_multi_arm_history``.
    """
    if scenario == MULTI_ARM:
        return simulate_multi_arm_history(n, seed, id_start)
    scenario = get_scenario(scenario)
    rng = np.random.default_rng(seed)
    features = _features(n, rng)
    if scenario.confounding:
        campaign = (rng.uniform(size=n) < true_propensity(features, scenario)).astype(int)
    else:
        campaign = rng.binomial(1, scenario.treated_share, n)
    ids = np.arange(id_start, id_start + n)
    p_buy, mu = _two_parts(features, campaign, scenario)
    buys = rng.uniform(size=n) < p_buy
    noise = rng.normal(size=n)
    spend = np.where(buys, np.round(np.exp(mu + scenario.sigma * noise), 2), 0.0)
    if scenario.outcome == "binary":
        spend = buys.astype(int)
    elif scenario.outcome == "gaussian":
        spend = mu + scenario.sigma * noise
    if scenario.whale_share:
        # Drawn from a separate stream so that the other draws match the scenario without whales.
        whale = np.random.default_rng([seed, 7]).uniform(size=n) < scenario.whale_share
        spend = np.where(whale, np.round(spend * scenario.whale_multiplier, 2), spend)
    mean_treated = expected_spend(features, 1, scenario)
    mean_control = expected_spend(features, 0, scenario)

    history = pd.DataFrame({"customer_id": ids, "campaign": campaign, outcome_column(scenario): spend})
    history = pd.concat([history, features], axis=1)
    truth = pd.DataFrame(
        {
            "customer_id": ids,
            "true_spend_if_treated": mean_treated,
            "true_spend_if_control": mean_control,
            "true_uplift": mean_treated - mean_control,
        }
    )
    if scenario.confounding:
        truth["true_propensity"] = true_propensity(features, scenario)
    return history, truth


def simulate_new_users(n: int, seed: int = 2, scenario: Scenario | str = Scenario(), id_start: int = 1_000_001):
    """Users to score (id + features, no treatment or outcome) and their true uplift."""
    history, truth = simulate_history(n, seed=seed, scenario=scenario, id_start=id_start)
    return history.drop(columns=["campaign", outcome_column(scenario)]), truth


def outcome_column(scenario: Scenario | str = Scenario()) -> str:
    """Name of the outcome column in a simulated history: spend, bought (binary) or log_basket (Gaussian)."""
    if scenario == MULTI_ARM:
        return "spend"
    return {"spend": "spend", "binary": "bought", "gaussian": "log_basket"}[get_scenario(scenario).outcome]


def columns_for(scenario: Scenario | str = Scenario()) -> dict:
    """The ``columns`` config section for a simulated history of ``scenario``."""
    if scenario == MULTI_ARM:
        return {**COLUMNS, "outcome_type": "spend", "control": ARM_LEVELS[0]}
    outcome = get_scenario(scenario).outcome
    return {**COLUMNS, "outcome": outcome_column(scenario), "outcome_type": outcome}


#: Named scenarios with known expected spend under both arms (``simulate_history(n, scenario="nonlinear")``).
SCENARIOS: dict[str, Scenario] = {
    # The original default: linear effects on the logit of buying and on log-spend.
    "linear": Scenario(),
    # Thresholds (recency), saturation (past spend), a hump (tenure) and a new x web interaction.
    "nonlinear": Scenario(lift_intercept=0.0, lift_recency=0.0, lift_is_new=0.0, lift_web=0.0, amount_lift=0.0,
                          amount_lift_past_spend=0.0, nonlinear=1.0, name="nonlinear"),
    # The campaign changes nothing: true uplift is exactly 0 for everyone.
    "no_effect": Scenario(lift_intercept=0.0, lift_recency=0.0, lift_is_new=0.0, lift_web=0.0, amount_lift=0.0,
                          amount_lift_past_spend=0.0, name="no_effect"),
    # The campaign only changes the chance to buy, not the basket.
    "probability_only": Scenario(amount_lift=0.0, amount_lift_past_spend=0.0, name="probability_only"),
    # The campaign only changes the basket of those who buy anyway.
    "amount_only": Scenario(lift_intercept=0.0, lift_recency=0.0, lift_is_new=0.0, lift_web=0.0, amount_lift=0.15,
                            amount_lift_past_spend=0.1, name="amount_only"),
    # Observational: big, recent spenders were targeted more often (true propensity in the truth table).
    "confounded": Scenario(confounding=1.0, name="confounded"),
    # Wider log-normal plus 2% "whales" spending 8x (not log-normal any more: a misspecified model).
    "heavy_tail": Scenario(sigma=1.2, whale_share=0.02, whale_multiplier=8.0, name="heavy_tail"),
}

#: The linear scenario recorded as other outcome types (kept apart from SCENARIOS, which are all spend).
OUTCOME_SCENARIOS: dict[str, Scenario] = {
    # Whether the user bought (0/1); the effect is the linear scenario's lift on the logit of buying.
    "binary": Scenario(outcome="binary", name="binary"),
    # A Gaussian outcome for every user: the linear scenario's log-basket model, effect 0.05 + 0.08 z_spend.
    "gaussian": Scenario(outcome="gaussian", name="gaussian"),
}


def get_scenario(scenario: Scenario | str) -> Scenario:
    """A ``Scenario`` from itself or its name in ``SCENARIOS``."""
    if isinstance(scenario, Scenario):
        return scenario
    if scenario == MULTI_ARM:  # no Scenario: three arms, each with its own effect
        raise ValueError("scenario multi_arm has three arms and no treated/control pair: use "
                         "simulate_multi_arm_history or arm_two_parts")
    try:
        return {**SCENARIOS, **OUTCOME_SCENARIOS}[scenario]
    except KeyError:
        choices = sorted(SCENARIOS) + sorted(OUTCOME_SCENARIOS) + [MULTI_ARM]
        raise ValueError(f"unknown scenario {scenario!r}; choose from {choices}") from None


# ------------------------------------------------------------------- several campaign arms: multi_arm
MULTI_ARM = "multi_arm"
#: multi_arm's treatment levels: the control level first (``columns.control: none``), then the campaigns
ARM_LEVELS = ("none", "email_a", "email_b")


@dataclass(frozen=True)
class ArmEffect:
    """A campaign arm's effect over the linear scenario's baseline: on the logit of buying and on a buyer's
    log-spend, each an intercept plus slopes on the z-scored features (is_new as 0/1)."""

    buy: float = 0.0
    buy_recency: float = 0.0
    buy_is_new: float = 0.0
    amount: float = 0.0
    amount_past_spend: float = 0.0


#: email_a makes recent and new customers buy; email_b lifts big past spenders' baskets (and shrinks small
#: spenders'). At margin 0.3 and cost 1.0 the most profitable arm (seed 1, 20,000 users) is none for 40%,
#: email_a for 42%, email_b for 18% of users (tests/test_arms.py checks each is best for at least 5%).
ARM_EFFECTS = {"email_a": ArmEffect(buy=0.25, buy_recency=-0.5, buy_is_new=0.5),
               "email_b": ArmEffect(amount=0.15, amount_past_spend=0.3)}


def arm_two_parts(features: pd.DataFrame, level: str) -> tuple[np.ndarray, np.ndarray]:
    """P(buy) and the log-scale mean of a buyer's spend, per user, under multi_arm's arm ``level``."""
    p_buy, mu = _two_parts(features, 0, Scenario())
    if level == ARM_LEVELS[0]:
        return p_buy, mu
    effect = ARM_EFFECTS[level]
    z_spend, z_recency, _ = _z(features)
    logit = (np.log(p_buy) - np.log1p(-p_buy) + effect.buy + effect.buy_recency * z_recency
             + effect.buy_is_new * features["is_new"].to_numpy())
    return 1.0 / (1.0 + np.exp(-logit)), mu + effect.amount + effect.amount_past_spend * z_spend


def simulate_multi_arm_history(n: int, seed: int = 1, id_start: int = 1):
    """A randomized test of three arms (``ARM_LEVELS``, a third of the users each) on the linear scenario's
    features and baseline, each campaign with its own effect (``ARM_EFFECTS``).

    Returns ``(history, truth)``: history has customer_id, campaign (the level's name), spend and the features;
    truth has customer_id, true_spend_if_<level> for each level and true_uplift_<campaign> (minus none's).
    """
    sigma = Scenario().sigma
    rng = np.random.default_rng(seed)
    features = _features(n, rng)
    arm = rng.permutation(np.arange(n) % len(ARM_LEVELS))
    parts = [arm_two_parts(features, level) for level in ARM_LEVELS]
    p_buy = np.choose(arm, [p for p, _ in parts])
    mu = np.choose(arm, [m for _, m in parts])
    buys = rng.uniform(size=n) < p_buy
    spend = np.where(buys, np.round(np.exp(mu + sigma * rng.normal(size=n)), 2), 0.0)
    ids = np.arange(id_start, id_start + n)
    history = pd.DataFrame({"customer_id": ids, "campaign": np.asarray(ARM_LEVELS, dtype=object)[arm], "spend": spend})
    means = {level: p * np.exp(m + sigma**2 / 2.0) for level, (p, m) in zip(ARM_LEVELS, parts)}
    truth = pd.DataFrame({"customer_id": ids, **{f"true_spend_if_{level}": means[level] for level in ARM_LEVELS},
                          **{f"true_uplift_{level}": means[level] - means[ARM_LEVELS[0]] for level in ARM_LEVELS[1:]}})
    return pd.concat([history, features], axis=1), truth


def write_simulated_data(history, new_users, history_truth, new_users_truth, n_history: int = 20000,
                         n_new_users: int = 50000, seed: int = 1, scenario: Scenario | str = "linear") -> None:
    """Write the demo campaign history and users to score, with their truths in separate files."""
    from .io import write_csv_atomic

    hist, hist_truth = simulate_history(n_history, seed=seed, scenario=scenario)
    users, users_truth = simulate_new_users(n_new_users, seed=seed + 1, scenario=scenario)
    write_csv_atomic(hist, history)
    write_csv_atomic(users, new_users)
    write_csv_atomic(hist_truth, history_truth)
    write_csv_atomic(users_truth, new_users_truth)
