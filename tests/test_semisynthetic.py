"""The semi-synthetic benchmark's generator (bench/semisynthetic.py): real Hillstrom covariates, simulated
hurdle outcomes with a known truth. Fast tier: no R."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
HILLSTROM = REPO.parent / "shared" / "data" / "hillstrom.csv"
sys.path.insert(0, str(REPO / "bench"))
import semisynthetic as ss  # noqa: E402

# Monte-Carlo check of the truth: users drawn MC_REPS times each from their potential outcomes. Per user and
# arm, the mean spend over the draws (~8-15% buy: hundreds of log-normal baskets, close to normal) must be within
# MC_Z_MAX of its standard errors of the true expected spend (|z| > 5: probability ~6e-7 each); the mean uplift
# over all users and draws within MC_Z_MAX_POOLED standard errors of the true ATE. (Per user, the uplift's own
# z is no test: both arms share their draws, so a user with a tiny lift sees a handful of nonzero differences.)
MC_USERS = 150
MC_REPS = 4000
MC_Z_MAX = 5.0
MC_Z_MAX_POOLED = 4.0
# Confounded assignment: the treated share of the top vs bottom quarter of the true propensity must differ
# by at least this much in 5,000 users (the quarters' mean propensities differ by ~0.45).
CONFOUNDED_MIN_GAP = 0.25


@pytest.fixture(scope="module", autouse=True)
def hillstrom_file():
    if not HILLSTROM.exists():
        pytest.fail(f"{HILLSTROM} not found: the semi-synthetic benchmark's tests need the Hillstrom file in "
                    f"../shared/data next to the repository (it is never copied into the repository)")


def test_same_seed_same_data_other_seed_other_rows():
    h1, t1 = ss.simulate_history(2000, seed=5, scenario="thresholds")
    h2, t2 = ss.simulate_history(2000, seed=5, scenario="thresholds")
    pd.testing.assert_frame_equal(h1, h2)
    pd.testing.assert_frame_equal(t1, t2)
    _, t3 = ss.simulate_history(2000, seed=6, scenario="thresholds")
    assert not np.array_equal(t1["source_row"], t3["source_row"])
    assert list(h1.columns) == ["customer_id", "treatment", "spend", *ss.FEATURES]
    assert set(h1["zip_code"]) == set(ss.LEVELS["zip_code"]) and set(h1["channel"]) == set(ss.LEVELS["channel"])


def test_rows_are_real_and_pools_disjoint():
    raw = pd.read_csv(HILLSTROM)
    h, t = ss.simulate_history(3000, seed=1, pool="train")
    pd.testing.assert_frame_equal(h[ss.FEATURES], raw.iloc[t["source_row"]][ss.FEATURES].reset_index(drop=True))
    assert t["source_row"].is_unique
    train, holdout = ss.pool_rows("train"), ss.pool_rows("holdout")
    assert len(train) + len(holdout) == len(raw) and not set(train) & set(holdout)
    _, held = ss.simulate_history(2000, seed=1, pool="holdout")
    assert set(held["source_row"]) <= set(holdout)


def test_observed_spend_is_the_assigned_arms_potential_outcome():
    h, t = ss.simulate_history(3000, seed=2, scenario="interaction")
    expected = np.where(h["treatment"] == 1, t["spend_if_treated"], t["spend_if_control"])
    np.testing.assert_array_equal(h["spend"].to_numpy(), expected)
    assert 0.5 < (h["spend"] == 0).mean() < 0.97  # mostly zeros
    np.testing.assert_allclose(t["true_uplift"], t["true_spend_if_treated"] - t["true_spend_if_control"])


def test_no_effect_truth_is_exactly_zero():
    h, t = ss.simulate_history(3000, seed=3, scenario="no_effect")
    assert (t["true_uplift"] == 0).all()
    np.testing.assert_array_equal(t["spend_if_treated"], t["spend_if_control"])


def test_probability_only_changes_only_the_purchase_probability():
    h, _ = ss.simulate_history(3000, seed=4, scenario="probability_only")
    p1, mu1 = ss.two_parts(h, 1, "probability_only")
    p0, mu0 = ss.two_parts(h, 0, "probability_only")
    np.testing.assert_array_equal(mu1, mu0)
    assert np.all(p1 != p0) and np.std(p1 - p0) > 0
    _, lin_mu1 = ss.two_parts(h, 1, "linear")
    _, lin_mu0 = ss.two_parts(h, 0, "linear")
    assert np.all(lin_mu1 != lin_mu0)  # the linear scenario lifts baskets too; probability_only is it without


def test_randomized_scenarios_are_50_50():
    for name in ss.SCENARIOS:
        if name == "confounded":
            continue
        h, t = ss.simulate_history(5000, seed=7, scenario=name)
        assert (t["true_propensity"] == 0.5).all()
        assert abs(h["treatment"].mean() - 0.5) < 0.03


def test_confounded_assignment_depends_on_covariates_with_overlap():
    h, t = ss.simulate_history(5000, seed=8, scenario="confounded")
    e = t["true_propensity"].to_numpy()
    lo, hi = ss.PROPENSITY_BOUNDS
    assert (lo, hi) == (0.1, 0.9) and e.min() >= lo and e.max() <= hi and e.std() > 0.15
    top, bottom = e >= np.quantile(e, 0.75), e <= np.quantile(e, 0.25)
    assert h["treatment"][top].mean() - h["treatment"][bottom].mean() > CONFOUNDED_MIN_GAP
    np.testing.assert_allclose(e, ss.true_propensity(h, "confounded"))
    # the propensity follows features that also drive buying: history up, recency down
    assert np.corrcoef(e, np.log1p(h["history"]))[0, 1] > 0.3 and np.corrcoef(e, h["recency"])[0, 1] < -0.3


@pytest.mark.parametrize("name", sorted(ss.SCENARIOS))
def test_truth_matches_monte_carlo_of_the_potential_outcomes(name):
    h, t = ss.simulate_history(MC_USERS, seed=9, scenario=name)
    features = h[ss.FEATURES]
    rng = np.random.default_rng(10)
    draws = {"treated": np.empty((MC_REPS, MC_USERS)), "control": np.empty((MC_REPS, MC_USERS))}
    for r in range(MC_REPS):
        draws["treated"][r], draws["control"][r] = ss.potential_outcomes(features, name, rng)
    for arm, y in draws.items():  # each arm's mean spend per user (the uplift is their difference)
        z = (y.mean(axis=0) - t[f"true_spend_if_{arm}"].to_numpy()) / (y.std(axis=0, ddof=1) / np.sqrt(MC_REPS))
        worst = np.abs(z).argmax()
        assert abs(z[worst]) < MC_Z_MAX, f"{name}, {arm}: user {worst} has z = {z[worst]:.2f}"
    diffs = draws["treated"] - draws["control"]
    if name == "no_effect":
        assert (diffs == 0).all()
        return
    pooled_se = diffs.mean(axis=1).std(ddof=1) / np.sqrt(MC_REPS)
    assert abs(diffs.mean() - t["true_uplift"].mean()) < MC_Z_MAX_POOLED * pooled_se


def test_scale_is_hillstrom_like_with_enough_buyers():
    h, t = ss.simulate_history(3000, seed=11, scenario="linear")
    control = h["treatment"] == 0
    conversion = (h.loc[control, "spend"] > 0).mean()
    assert 0.04 < conversion < 0.15
    baskets = h.loc[h["spend"] > 0, "spend"]
    assert 60 < baskets.median() < 160 and baskets.mean() > baskets.median()  # heavy right tail
    assert (h.loc[h["treatment"] == 1, "spend"] > 0).sum() > 100 and (h.loc[control, "spend"] > 0).sum() > 100


def test_unknown_scenario_and_pool_are_clear_errors():
    with pytest.raises(ValueError, match="unknown semi-synthetic scenario 'nope'"):
        ss.simulate_history(10, scenario="nope")
    with pytest.raises(ValueError, match="pool must be 'train' or 'holdout'"):
        ss.simulate_history(10, pool="test")
    with pytest.raises(FileNotFoundError, match="never copied"):
        ss.simulate_history(10, path=REPO / "no_such_hillstrom.csv")
