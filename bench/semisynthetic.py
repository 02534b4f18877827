"""Semi-synthetic spend benchmark: Hillstrom's real covariates, simulated hurdle outcomes with a known truth.

The covariates are real rows of the Hillstrom MineThatData file (``../shared/data/hillstrom.csv``, never
copied into the repository): recency (months, 1-12), history (dollars, heavily skewed, a point mass at
$29.99), mens, womens (10% of customers have both), newbie, zip_code (Rural 15%) and channel (Multichannel
12%). Only the outcomes are simulated, by a two-part (hurdle) model per scenario:

    P(buy | x, t) = logistic(baseline_logit(x) + t * lift_logit(x))
    spend | buy   ~ LogNormal(baseline_mu(x) + t * lift_mu(x), SIGMA)

so E[spend | x, t] = P(buy | x, t) * exp(mu(x, t) + SIGMA^2 / 2) and the true uplift of a user is
E[spend | x, 1] - E[spend | x, 0]. Both potential outcomes are drawn for every user (the same uniform and
normal draw under both arms); the history records the one of the assigned arm.

Scale: buyers' baskets match Hillstrom's buyers (log-mean 4.35-4.4, log-sd 0.84: ~$115 on average,
heavy right tail). The conversion rate does not: Hillstrom's is 0.9%, which leaves ~15 buyers per arm in
3,000 users, too few for any model to learn heterogeneity from. The baseline intercept is set so that ~8% of
control users buy (~10% treated): ~120 buyers per arm at 3,000 users, ~800 at 20,000. Spend is mostly zeros.

Assignment is 50/50 except in ``confounded``, where big, recent, web, non-newbie customers were targeted
more (the propensity depends on covariates that also drive buying and the effect; clipped to [0.1, 0.9]).

This module is the data generator only: it does not import or know the models it is used to judge, and its
scenarios are fixed (the bench must not adjust a model to one scenario's result, nor the scenarios to a
model). Deterministic given ``seed``: the rows are sampled by seed from a fixed split of the file into a
training pool and a held-out pool (``pool``), so training and held-out users never share a row.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from bayeslift.hillstrom import COLUMNS as HILLSTROM_COLUMNS
from bayeslift.hillstrom import FEATURES

REPO = Path(__file__).resolve().parents[1]
HILLSTROM_CSV = REPO.parent / "shared" / "data" / "hillstrom.csv"

#: The history's columns: those of the pipeline's prepared Hillstrom history (customer_id, treatment, spend).
COLUMNS = dict(HILLSTROM_COLUMNS)
#: Category levels of the real file (every sample of a few hundred rows has them all).
LEVELS = {"zip_code": ["Rural", "Surburban", "Urban"], "channel": ["Multichannel", "Phone", "Web"]}

#: Log-sd of a buyer's basket (Hillstrom's buyers: 0.84).
SIGMA = 0.84
#: Baseline logit intercept: ~8% of control users buy (see the module docstring for why not Hillstrom's 0.9%).
BUY_INTERCEPT = -2.75
#: Baseline log-mean of a buyer's basket (Hillstrom's buyers: 4.40 with their mix of features).
AMOUNT_INTERCEPT = 4.35
#: The file's rows are split once (permutation seed POOL_SEED) into the held-out pool (the last HOLDOUT_POOL
#: rows) and the training pool (the other 50,000).
POOL_SEED = 20230
HOLDOUT_POOL = 14_000
#: Propensity bounds of the confounded scenario (overlap).
PROPENSITY_BOUNDS = (0.1, 0.9)


class Covariates(NamedTuple):
    """The features as the scenarios use them: standardized log-history and recency, indicators."""

    z_hist: np.ndarray  # (log1p(history) - 5.0) / 1.0   (the file: mean 5.01, sd 1.02)
    z_rec: np.ndarray  # (recency - 6) / 3.5           (the file: mean 5.76, sd 3.51)
    recency: np.ndarray
    history: np.ndarray
    mens: np.ndarray
    womens: np.ndarray
    newbie: np.ndarray
    web: np.ndarray
    phone: np.ndarray
    multichannel: np.ndarray
    urban: np.ndarray
    rural: np.ndarray


def covariates(features: pd.DataFrame) -> Covariates:
    recency = features["recency"].to_numpy(dtype=float)
    history = features["history"].to_numpy(dtype=float)
    channel = features["channel"].astype(str).to_numpy()
    zip_code = features["zip_code"].astype(str).to_numpy()
    return Covariates(
        z_hist=np.log1p(history) - 5.0, z_rec=(recency - 6.0) / 3.5, recency=recency, history=history,
        mens=features["mens"].to_numpy(dtype=float), womens=features["womens"].to_numpy(dtype=float),
        newbie=features["newbie"].to_numpy(dtype=float), web=(channel == "Web").astype(float),
        phone=(channel == "Phone").astype(float), multichannel=(channel == "Multichannel").astype(float),
        urban=(zip_code == "Urban").astype(float), rural=(zip_code == "Rural").astype(float))


# --- baselines: (logit of buying, log-mean of a buyer's basket) under control ---------------------------------

def _linear_baseline(x: Covariates):
    logit = (BUY_INTERCEPT + 0.45 * x.z_hist - 0.35 * x.z_rec + 0.2 * x.womens + 0.1 * x.mens - 0.25 * x.newbie
             + 0.25 * x.web - 0.15 * x.phone + 0.1 * x.urban - 0.15 * x.rural)
    mu = AMOUNT_INTERCEPT + 0.25 * x.z_hist + 0.1 * x.mens - 0.1 * x.newbie + 0.1 * x.multichannel
    return logit, mu


def _threshold_baseline(x: Covariates):
    """Steps in recency (the last two months buy more, a year ago less) and saturation in history."""
    logit, mu = _linear_baseline(x)
    logit = (logit - 0.45 * x.z_hist + 0.35 * x.z_rec + 0.9 * np.tanh(1.5 * x.z_hist) + 0.9 * (x.recency <= 2)
             - 0.5 * (x.recency >= 10) - 0.15)
    mu = mu - 0.25 * x.z_hist + 0.4 * np.tanh(1.5 * x.z_hist)
    return logit, mu


def _interaction_baseline(x: Covariates):
    """Customers of both lines buy more; newbies' history matters less."""
    logit, mu = _linear_baseline(x)
    return logit + 0.5 * x.mens * x.womens - 0.35 * x.newbie * x.z_hist - 0.05, mu + 0.15 * x.womens * x.urban


# --- effects: (lift on the logit of buying, lift on the log-mean basket) -------------------------------------

def _linear_effect(x: Covariates):
    return (0.05 - 0.20 * x.z_rec + 0.25 * x.newbie + 0.15 * x.womens + 0.15 * x.web,
            0.05 + 0.08 * x.z_hist - 0.05 * x.newbie)


def _threshold_effect(x: Covariates):
    """Only customers who bought in the last four months respond (a step); the response grows with history
    and saturates; baskets grow only for customers with a history over ~$400 (a step)."""
    return (-0.2 + 0.7 * (x.recency <= 4) + 0.35 * np.tanh(2.0 * x.z_hist), 0.2 * (x.history >= 400.0))


def _interaction_effect(x: Covariates):
    """New web customers and customers of both lines respond; recency matters only for returning customers;
    the basket lift grows with history on the multichannel channel only."""
    return (0.1 + 0.6 * x.newbie * x.web + 0.5 * x.mens * x.womens - 0.3 * x.z_rec * (1.0 - x.newbie),
            0.25 * x.multichannel * (x.z_hist + 0.5))


def _no_effect(x: Covariates):
    zero = np.zeros_like(x.z_hist)
    return zero, zero


def _probability_effect(x: Covariates):
    logit, _ = _linear_effect(x)
    return logit, np.zeros_like(logit)


def _confounded_propensity(x: Covariates):
    lo, hi = PROPENSITY_BOUNDS
    score = 0.9 * x.z_hist - 0.7 * x.z_rec + 0.5 * x.web - 0.4 * x.newbie
    return np.clip(1.0 / (1.0 + np.exp(-score)), lo, hi)


@dataclass(frozen=True)
class Scenario:
    """A named true model: baseline and effect on both parts of the hurdle, and the assignment."""

    name: str
    description: str
    baseline: Callable[[Covariates], tuple]
    effect: Callable[[Covariates], tuple]
    #: P(treated | x); None: randomized 50/50.
    propensity: Callable[[Covariates], np.ndarray] | None = None


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("linear", "linear effects on the logit of buying and on the log basket", _linear_baseline,
             _linear_effect),
    Scenario("thresholds", "steps in recency and history, saturation in history (baseline and effect)",
             _threshold_baseline, _threshold_effect),
    Scenario("interaction", "feature x feature effects (newbie x web, mens x womens, recency x returning, "
             "multichannel x history)", _interaction_baseline, _interaction_effect),
    Scenario("no_effect", "the campaign changes nothing: true uplift exactly 0", _linear_baseline, _no_effect),
    Scenario("confounded", "the linear scenario with big, recent, web, returning customers targeted more "
             "(propensity in [0.1, 0.9])", _linear_baseline, _linear_effect, _confounded_propensity),
    Scenario("probability_only", "the linear effect on the chance to buy only; baskets unchanged",
             _linear_baseline, _probability_effect),
)}


def get_scenario(scenario: Scenario | str) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    try:
        return SCENARIOS[scenario]
    except KeyError:
        raise ValueError(f"unknown semi-synthetic scenario {scenario!r}; choose from {sorted(SCENARIOS)}") from None


def two_parts(features: pd.DataFrame, treated, scenario: Scenario | str):
    """True P(buy) and log-mean basket per user under arm ``treated`` (0, 1 or one per user)."""
    s = get_scenario(scenario)
    x = covariates(features)
    t = np.broadcast_to(np.asarray(treated, dtype=float), x.z_hist.shape)
    logit, mu = s.baseline(x)
    lift_logit, lift_mu = s.effect(x)
    return 1.0 / (1.0 + np.exp(-(logit + t * lift_logit))), mu + t * lift_mu


def expected_spend(features: pd.DataFrame, treated, scenario: Scenario | str) -> np.ndarray:
    """True E[spend | x, arm]: P(buy) * exp(mu + SIGMA^2 / 2)."""
    p_buy, mu = two_parts(features, treated, scenario)
    return p_buy * np.exp(mu + SIGMA**2 / 2.0)


def true_propensity(features: pd.DataFrame, scenario: Scenario | str) -> np.ndarray:
    """True P(treated | x): 0.5 unless the scenario is confounded."""
    s = get_scenario(scenario)
    return np.full(len(features), 0.5) if s.propensity is None else s.propensity(covariates(features))


def potential_outcomes(features: pd.DataFrame, scenario: Scenario | str, rng: np.random.Generator):
    """One draw of (spend if treated, spend if control) per user, sharing the uniform and normal draws."""
    p1, mu1 = two_parts(features, 1, scenario)
    p0, mu0 = two_parts(features, 0, scenario)
    u = rng.uniform(size=len(features))
    z = rng.normal(size=len(features))
    return (np.where(u < p1, np.round(np.exp(mu1 + SIGMA * z), 2), 0.0),
            np.where(u < p0, np.round(np.exp(mu0 + SIGMA * z), 2), 0.0))


@lru_cache(maxsize=2)
def _hillstrom_features(path: str) -> pd.DataFrame:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} not found: the semi-synthetic benchmark needs the Hillstrom file in "
                                f"../shared/data (next to the repository; it is never copied into it)")
    raw = pd.read_csv(path)
    missing = [c for c in FEATURES if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: columns {missing} missing; expected the MineThatData Hillstrom file")
    return raw[FEATURES].copy()


def pool_rows(pool: str, path: str | Path = HILLSTROM_CSV) -> np.ndarray:
    """Row numbers (0-based, of the file) of the ``train`` or ``holdout`` pool."""
    n = len(_hillstrom_features(str(path)))
    order = np.random.default_rng(POOL_SEED).permutation(n)
    if pool == "train":
        return np.sort(order[:-HOLDOUT_POOL])
    if pool == "holdout":
        return np.sort(order[-HOLDOUT_POOL:])
    raise ValueError(f"pool must be 'train' or 'holdout', got {pool!r}")


def simulate_history(n: int, seed: int = 1, scenario: Scenario | str = "linear", id_start: int = 1,
                     pool: str = "train", path: str | Path = HILLSTROM_CSV):
    """``n`` real Hillstrom customers (rows sampled without replacement from ``pool`` by ``seed``) with a
    simulated campaign and spend, like ``bayeslift.simulate.simulate_history``.

    Returns ``(history, truth)``. history: customer_id, treatment, spend and the features (``COLUMNS``).
    truth: customer_id, source_row (0-based row of the file), true_spend_if_treated, true_spend_if_control,
    true_uplift, true_buy_if_treated, true_buy_if_control, true_propensity, and the drawn potential outcomes
    spend_if_treated and spend_if_control (history's spend is the one of the assigned arm).
    """
    s = get_scenario(scenario)
    rows = pool_rows(pool, path)
    if not 0 < n <= len(rows):
        raise ValueError(f"n must be in 1..{len(rows)} (the {pool} pool), got {n}")
    rng = np.random.default_rng([seed, 23])
    rows = np.sort(rng.choice(rows, size=n, replace=False))
    features = _hillstrom_features(str(path)).iloc[rows].reset_index(drop=True)
    propensity = true_propensity(features, s)
    treatment = (rng.uniform(size=n) < propensity).astype(int)
    spend_1, spend_0 = potential_outcomes(features, s, rng)
    ids = np.arange(id_start, id_start + n)
    history = pd.concat([pd.DataFrame({COLUMNS["id"]: ids, COLUMNS["treatment"]: treatment,
                                       COLUMNS["outcome"]: np.where(treatment == 1, spend_1, spend_0)}),
                         features], axis=1)
    mean_1, mean_0 = expected_spend(features, 1, s), expected_spend(features, 0, s)
    truth = pd.DataFrame({
        "customer_id": ids, "source_row": rows, "true_spend_if_treated": mean_1, "true_spend_if_control": mean_0,
        "true_uplift": mean_1 - mean_0, "true_buy_if_treated": two_parts(features, 1, s)[0],
        "true_buy_if_control": two_parts(features, 0, s)[0], "true_propensity": propensity,
        "spend_if_treated": spend_1, "spend_if_control": spend_0})
    return history, truth
