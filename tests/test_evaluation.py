"""ATE suite, Qini/uplift curves, calibration, segments and truth metrics on data with known effects."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayeslift import evaluation as ev
from bayeslift import metrics
from bayeslift.data import DataValidationError, FeatureSpec
from eval_constants import ATE_MAX_SE, CONFOUNDED_NAIVE_BIAS_MIN, QINI_TRUTH_OVER_RANDOM

TRUE_ATE = 1.0


def make_data(n=4000, seed=0, confounded=False):
    """y = 2 + 2 x1 + x2 + tau(x) t + noise, tau = 1 + x2 (ATE 1); confounded: P(t) rises with x1."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    e = 1 / (1 + np.exp(-1.2 * X[:, 0])) if confounded else np.full(n, 0.5)
    t = rng.binomial(1, e)
    tau = TRUE_ATE + X[:, 1]
    y = 2 + 2 * X[:, 0] + X[:, 1] + tau * t + rng.normal(size=n)
    return X, t.astype(float), y, tau, e


@pytest.mark.parametrize("confounded", [False, True])
def test_ate_estimators_unbiased(confounded):
    X, t, y, tau, _ = make_data(confounded=confounded)
    suite = metrics.ate_suite(X, t, y, randomized=not confounded, n_folds=3, outcome_model="linear")
    assert list(suite["method"]) == ["difference_in_means", "ipw", "double_ml", "aipw"]
    for _, r in suite.iterrows():
        assert r["ci_low"] < r["estimate"] < r["ci_high"]
        if confounded and r["method"] == "difference_in_means":
            assert r["estimate"] - tau.mean() > CONFOUNDED_NAIVE_BIAS_MIN
            continue
        assert abs(r["estimate"] - tau.mean()) < ATE_MAX_SE * r["se"], r.to_dict()


def test_aipw_with_boosted_outcome_model_and_known_propensity():
    X, t, y, tau, _ = make_data(n=3000, seed=4)
    r = metrics.aipw_ate(X, t, y, propensity=0.5, n_folds=3, outcome_model="lightgbm")
    assert abs(r["estimate"] - tau.mean()) < ATE_MAX_SE * r["se"]
    dim = metrics.diff_in_means(t, y)
    assert r["se"] < dim["se"]  # covariate adjustment sharpens the estimate


def test_one_arm_is_an_error():
    with pytest.raises(DataValidationError, match="only arm"):
        metrics.diff_in_means(np.ones(10), np.arange(10.0))


def test_qini_curve_definition_by_hand():
    # 4 users ranked by pred: (t, y) = (1, 5), (0, 1), (1, 2), (0, 0)
    pred, t, y = np.array([4, 3, 2, 1.0]), np.array([1, 0, 1, 0.0]), np.array([5, 1, 2, 0.0])
    c = metrics.uplift_curves(pred, t, y, n_points=5)
    np.testing.assert_allclose(c["fraction"], [0, 0.25, 0.5, 0.75, 1])
    # k=2: Y_T=5, Y_C=1, N_T=N_C=1 -> (5 - 1) / 4 * 1000; k=4: (7 - 1) / 4 * 1000
    np.testing.assert_allclose(c["qini"], [0, 0, 1000, (7 - 1 * 2 / 1) / 4 * 1000, 1500])
    np.testing.assert_allclose(c["gain"].iloc[-1], (3.5 - 0.5) * 4 / 4 * 1000)


def test_truth_ranking_beats_random():
    X, t, y, tau, _ = make_data(n=3000, seed=1)
    truth = metrics.ranking_metrics(tau, t, y, n_bootstrap=100)
    rand = [metrics.ranking_metrics(np.random.default_rng(s).normal(size=len(t)), t, y, n_bootstrap=0)
            for s in range(5)]
    assert truth["qini_gain_low"] > 0
    assert truth["qini_gain"] > QINI_TRUTH_OVER_RANDOM * max(abs(np.mean([r["qini_gain"] for r in rand])), 1.0)
    assert truth["auuc_lift"] > np.mean([r["auuc_lift"] for r in rand])
    assert truth["uplift_at_10"] > truth["uplift_at_50"] > 0
    for key in ("qini_gain", "auuc", "uplift_at_20"):
        assert truth[f"{key}_low"] <= truth[key] <= truth[f"{key}_high"]


def test_calibration_by_decile():
    X, t, y, tau, _ = make_data(n=4000, seed=2)
    cal = metrics.calibration_table(tau, t, y)
    assert len(cal) == 10 and cal["n"].sum() == 4000
    assert cal["mean_predicted"].is_monotonic_increasing
    # Perfect predictions: observed within its CI of the prediction in most deciles.
    inside = (cal["observed_low"] <= cal["mean_predicted"]) & (cal["mean_predicted"] <= cal["observed_high"])
    assert inside.mean() >= 0.7


def test_segments_and_unknown_feature():
    X, t, y, tau, _ = make_data(n=2000, seed=3)
    feats = pd.DataFrame({"x2": X[:, 1], "grp": np.where(X[:, 2] > 0, "hi", "lo")})
    seg = metrics.segment_table(feats, tau, t, y, ["x2"], ["grp"], n_bins=4)
    assert list(seg["feature"]) == ["grp", "grp", "x2", "x2", "x2", "x2"]
    x2 = seg[seg["feature"] == "x2"]
    assert x2["observed"].is_monotonic_increasing  # uplift rises with x2
    with pytest.raises(DataValidationError, match="nope"):
        metrics.segment_table(feats, tau, t, y, ["nope"], [], n_bins=4)


def test_check_evaluation_inputs():
    spec = FeatureSpec.from_columns({"id": "id", "treatment": "t", "outcome": "y", "numeric": ["a"]})
    frame = pd.DataFrame({"id": [1, 2], "t": [0, 1], "y": [0.0, 1.0], "a": [1.0, 2.0]})
    ev.check_evaluation_inputs(frame, spec, ["a"], "holdout")
    with pytest.raises(DataValidationError, match="evaluation.segments"):
        ev.check_evaluation_inputs(frame, spec, ["b"], "holdout")
    with pytest.raises(DataValidationError, match="holdout: treatment has only arm"):
        ev.check_evaluation_inputs(frame.assign(t=0), spec, None, "holdout")


def test_truth_metrics():
    m = metrics.truth_metrics([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], lower=[0, 0, 2], upper=[2, 2, 4])
    assert m["sqrt_pehe"] == pytest.approx(np.sqrt(5 / 3))
    assert m["ate_error"] == pytest.approx(1.0)
    assert m["coverage_90"] == pytest.approx(2 / 3)


# ----------------------------------------------------- the evaluate step's tables and the report's figures
def holdout_frame(n=600, seed=3):
    """An evaluation frame (evaluation.evaluation_frame's columns) of two models and the truth."""
    X, t, y, tau, _ = make_data(n=n, seed=seed)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": np.arange(n), "treatment": t, "outcome": y, "bayesian": tau + rng.normal(0, 0.3, n),
                          "random": rng.normal(size=n), "bayesian_prob_profit": rng.uniform(size=n),
                          "true_uplift": tau})
    frame["bayesian_q05"], frame["bayesian_q95"] = frame["bayesian"] - 0.6, frame["bayesian"] + 0.6
    return X, frame


def test_holdout_tables_of_every_model():
    from bayeslift.holdout_metrics import ORACLE, holdout_ate, model_tables, policy_tables
    from bayeslift.policy import PolicyConfig

    X, frame = holdout_frame()
    features = pd.DataFrame({"x2": X[:, 1], "channel": np.where(X[:, 2] > 0, "web", "mail")})
    models = ["bayesian", "random"]
    ate = holdout_ate(X, frame, n_folds=3, outcome_model="linear")
    assert list(ate["method"]) == ["difference_in_means", "ipw", "double_ml", "aipw", "bayesian_mean_of_user_uplift",
                                   "true_sample_ate"]
    assert ate.set_index("method").loc["true_sample_ate", "estimate"] == pytest.approx(frame["true_uplift"].mean())
    tabs = model_tables(frame, models, features, ["x2"], ["channel"], n_bootstrap=20)
    assert list(tabs["metrics"]["model"]) == models
    assert tabs["metrics"].set_index("model")["coverage_90"].isna().tolist() == [False, True]  # bayesian's interval
    assert set(tabs["curves"]["model"]) == {*models, ORACLE} and set(tabs["calibration"]["model"]) == set(models)
    pol = policy_tables(frame, models, PolicyConfig(), X, n_folds=3, outcome_model="linear")
    assert {"nobody", "everybody"} <= set(pol["policy"]["rule"]) and pol["policy"]["value_true"].notna().all()
    assert set(pol["policy_curve"]["model"]) == {*models, ORACLE}


def test_run_evaluation_needs_every_declared_output():
    outputs = {name: f"{name}.csv" for name in ev.TABLES}  # no summary
    with pytest.raises(ValueError, match="missing \\['summary'\\]"):
        ev.run_evaluation("h.csv", "spec.json", "u.csv", None, "b.csv", outputs, {}, {})


def test_report_figures_are_drawn_from_the_tables(tmp_path):
    from bayeslift import report

    tables = {"metrics": pd.DataFrame({"model": ["bayesian"]}), "predictions": pd.DataFrame({"bayesian": [0.1]})}
    assert set(report.default_figure_paths(tables, tmp_path)) == set(report.FIGURES) - {"surrogate_vs_bayesian"}
    with pytest.raises(ValueError, match="unknown figure"):
        report.make_figures(tables, {"pie": tmp_path / "pie.png"})
    with pytest.raises(DataValidationError, match="no surrogate column"):
        report.make_figures(tables, {"surrogate_vs_bayesian": tmp_path / "s.png"})
    with pytest.raises(DataValidationError, match="tables \\['ate'"):
        report.read_tables({})
