"""The public Python API: the README's example run as written (R fit, surrogate, model folder), the estimator's
scikit-learn behaviour, the arrays path without R, and clear errors for bad input."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import bayeslift
from bayeslift.config_check import ConfigError
from bayeslift.data import DataValidationError
from bayeslift.simulate import COLUMNS, simulate_history
from bayeslift.surrogate import SurrogateConfig, train_surrogate_model
from bayeslift.surrogate.estimator import TABLES, TARGET_COLUMNS
from bayeslift.surrogate.fidelity import r_squared

README = Path(__file__).resolve().parents[1] / "README.md"
#: the surrogate's holdout uplift against the posterior means R exported: at least the pipeline's gate
UPLIFT_R2_MIN = SurrogateConfig().fidelity_floor
#: its ATE (mean predicted uplift over every user) against the posterior ATE, relative (measured: 0.1%)
ATE_RELATIVE_ERROR_MAX = 0.02
#: R^2 of its 90% interval's bounds against the posterior's 5% and 95% quantiles, held-out users (measured:
#: 0.96 and 0.995)
INTERVAL_R2_MIN = 0.9
#: the arrays path on the simulator's truth: holdout uplift R^2 after 480 steps
TRUTH_R2_MIN = 0.9


def readme_example() -> str:
    """The code block of the README's "Python API" section."""
    section = README.read_text().split("## Python API (notebooks)", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section must hold exactly one python block"
    return blocks[0]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The README example's variables after running it in a fresh folder (its model folder lands there)."""
    import os

    folder = tmp_path_factory.mktemp("python_api")
    before = os.getcwd()
    os.chdir(folder)
    try:
        namespace = {"__name__": "readme_example"}
        exec(compile(readme_example(), str(README), "exec"), namespace)
    finally:
        os.chdir(before)
    namespace["folder"] = folder
    return namespace


@pytest.mark.rpy2
def test_readme_example_surrogate_matches_the_posterior_r_exported(example):
    tables, surrogate, users = example["tables"], example["surrogate"], example["users"]
    posterior = tables.uplift.set_index(tables.uplift[tables.spec.id].astype(str))
    assert set(posterior["split"]) == {"train", "holdout"} and len(posterior) == len(users) == 600
    assert tables.diagnostics["fitted_on"] == "all" and tables.config["model"]["inference"]["iter"] == 500
    # the posterior is a real one: an ATE interval around the mean, per-user intervals of positive width
    assert tables.ate["ate_q05"] < tables.ate["ate_mean"] < tables.ate["ate_q95"]
    assert (posterior["uplift_q95"] > posterior["uplift_q05"]).all()

    predicted = pd.Series(example["uplift"], index=users[tables.spec.id].astype(str).to_numpy())
    holdout = posterior.index[posterior["split"] == "holdout"]
    assert r_squared(posterior.loc[holdout, "uplift_mean"].to_numpy(), predicted[holdout].to_numpy()) >= UPLIFT_R2_MIN
    assert surrogate.fidelity_["holdout"]["n_users"] == len(holdout)
    assert abs(predicted.mean() - tables.ate["ate_mean"]) <= ATE_RELATIVE_ERROR_MAX * abs(tables.ate["ate_mean"])
    interval = example["interval"].set_axis(predicted.index)
    for bound, quantile in (("uplift_lower", "uplift_q05"), ("uplift_upper", "uplift_q95")):
        r2 = r_squared(posterior.loc[holdout, quantile].to_numpy(), interval.loc[holdout, bound].to_numpy())
        assert r2 >= INTERVAL_R2_MIN, (bound, r2)
    arms = example["arms"]
    np.testing.assert_allclose(arms["spend_if_treated"] - arms["spend_if_control"], example["uplift"], rtol=0,
                               atol=1e-9)


@pytest.mark.rpy2
def test_readme_example_save_load_and_scorer_give_identical_predictions(example):
    surrogate, reloaded, scorer, users = example["surrogate"], example["reloaded"], example["scorer"], example["users"]
    assert (example["folder"] / "my_model" / "manifest.json").exists()
    expected = surrogate.predict_table(users)
    pd.testing.assert_frame_equal(reloaded.predict_table(users), expected, check_exact=True)
    scored = scorer.score_frame(users, "users")
    pd.testing.assert_frame_equal(scored[list(TARGET_COLUMNS)], expected, check_exact=True)
    assert reloaded.get_params() == surrogate.get_params()
    assert reloaded.manifest_["fidelity"] == surrogate.fidelity_  # JSON keeps every float
    # top_k from the holdout threshold stored with the model: about the top 20% of similar users
    assert 0.1 < example["treat"].mean() < 0.3


@pytest.mark.rpy2
def test_the_pipeline_step_is_the_estimator(example, tmp_path):
    """train_surrogate_model (rule surrogate_model) on the same tables, as files, trains the same networks."""
    tables, surrogate, users = example["tables"], example["surrogate"], example["users"]
    paths = [tmp_path / f"{table}.csv" for table in TABLES.values()]
    for key, path in zip(TABLES, paths):
        getattr(tables, key).to_csv(path, index=False, float_format="%.17g")
    tables.spec.to_json(tmp_path / "spec.json")
    config = SurrogateConfig(**{k: v for k, v in surrogate.get_params().items() if k != "n_jobs"})
    manifest = train_surrogate_model(*paths, tmp_path / "spec.json", tmp_path / "model", config)
    assert manifest["training"] == surrogate.manifest_["training"]
    step = bayeslift.UpliftSurrogate.load(tmp_path / "model")
    pd.testing.assert_frame_equal(step.predict_table(users), surrogate.predict_table(users), check_exact=True)


@pytest.mark.rpy2
def test_clone_and_params(example):
    surrogate = example["surrogate"]
    twin = clone(surrogate)
    assert twin.get_params() == surrogate.get_params() and twin.steps == 2000 and twin.hidden == 64
    with pytest.raises(NotFittedError):
        twin.predict(example["users"])
    assert list(surrogate.feature_names_in_) == COLUMNS["numeric"] + COLUMNS["categorical"]


@pytest.mark.rpy2
def test_bad_users_are_named_by_column_and_line(example):
    users = example["users"].copy()
    users.loc[3, "recency"] = np.nan
    with pytest.raises(DataValidationError, match=r"column 'recency' has missing values at line 5\b"):
        example["surrogate"].predict(users)
    users = example["users"].drop(columns=["tenure"])
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) \['tenure'\]"):
        example["surrogate"].predict_interval(users)
    users = example["users"].assign(channel="fax")
    with pytest.raises(DataValidationError, match=r"column 'channel' has categories not seen in training \['fax'\]"):
        example["surrogate"].predict_arms(users)


def test_fit_bayesian_refuses_a_bad_history_before_running_r():
    history, _ = simulate_history(60, seed=2)
    history.loc[7, "spend"] = -3.0
    with pytest.raises(DataValidationError, match=r"the frame \(line n is row n - 2\): column 'spend' must be >= 0; "
                                                  r"negative at line 9\b"):
        bayeslift.fit_bayesian(history, columns=COLUMNS)
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) \['tenure'\]"):
        bayeslift.fit_bayesian(history.drop(columns=["tenure"]), columns=COLUMNS)


def test_fit_bayesian_checks_its_config_keys_by_the_pipeline_schema():
    history, _ = simulate_history(60, seed=2)
    with pytest.raises(ConfigError, match=r"model\.inference\.iter"):
        bayeslift.fit_bayesian(history, columns=COLUMNS, model={"inference": {"iter": "many"}})
    with pytest.raises(ConfigError, match=r"model\.combine: stack mixes candidates"):
        bayeslift.fit_bayesian(history, columns=COLUMNS, model={"effect": {"shape": "linear"}, "combine": "stack"})
    settings = bayeslift.fit_settings(COLUMNS, model={"inference": {"iter": 500}})
    assert settings["model"]["inference"]["iter"] == 500 and settings["model"]["backend"] == "stan"
    assert settings["columns"]["numeric"] == COLUMNS["numeric"] and settings["split"]["holdout_fraction"] > 0


def truth_arrays(n: int = 1200, seed: int = 11):
    """Features and the simulator's true counterfactuals as fit(X, y) takes them (a band as the interval)."""
    history, truth = simulate_history(n, seed=seed)
    uplift = truth["true_uplift"].to_numpy()
    y = pd.DataFrame({"spend_if_treated": truth["true_spend_if_treated"].to_numpy(),
                      "spend_if_control": truth["true_spend_if_control"].to_numpy(), "uplift": uplift,
                      "uplift_lower": uplift - 0.5, "uplift_upper": uplift + 0.5})
    split = np.where(np.arange(n) % 4 == 0, "holdout", "train")
    return history[COLUMNS["numeric"] + COLUMNS["categorical"]], y, split


def test_arrays_fit_without_r(tmp_path):
    X, y, split = truth_arrays()
    columns = {"numeric": COLUMNS["numeric"], "categorical": COLUMNS["categorical"], "log1p": COLUMNS["log1p"]}
    est = bayeslift.UpliftSurrogate(hidden=64, steps=480, seed=3, fidelity_floor=TRUTH_R2_MIN).fit(
        X, y, split=split, columns=columns)
    holdout = split == "holdout"
    assert r_squared(y["uplift"].to_numpy()[holdout], est.predict(X[holdout])) >= TRUTH_R2_MIN
    assert est.manifest_["targeting"]["users"] == "holdout" and est.fidelity_["holdout"]["n_users"] == holdout.sum()
    assert est.spec_.log1p == ["past_spend"] and est.spec_.levels["channel"] == ["multichannel", "phone", "web"]
    est.save(tmp_path / "model")
    pd.testing.assert_frame_equal(bayeslift.UpliftSurrogate.load(tmp_path / "model").predict_table(X),
                                  est.predict_table(X), check_exact=True)


def test_arrays_fit_of_numeric_arrays_and_bad_targets():
    X, y, _ = truth_arrays(400)
    numeric = X[COLUMNS["numeric"]].to_numpy()
    est = bayeslift.UpliftSurrogate(steps=50).fit(numeric, y.to_numpy())
    assert list(est.feature_names_in_) == ["x0", "x1", "x2", "x3"] and "holdout" not in est.fidelity_
    assert est.predict(numeric[:5]).shape == (5,)
    with pytest.raises(DataValidationError, match=r"X: has 3 columns, but the model's features are 4"):
        est.predict(numeric[:, :3])
    bad = y.copy()
    bad.loc[2, "uplift"] = np.inf
    with pytest.raises(DataValidationError, match=r"y: column 'uplift' must be finite; not at rows 2\b"):
        bayeslift.UpliftSurrogate(steps=50).fit(numeric, bad)
    with pytest.raises(DataValidationError, match=r"y: missing column\(s\) \['uplift_upper'\]"):
        bayeslift.UpliftSurrogate(steps=50).fit(numeric, y.drop(columns=["uplift_upper"]))
    with pytest.raises(DataValidationError, match=r"split: must be 'train' or 'holdout'; rows 0"):
        bayeslift.UpliftSurrogate(steps=50).fit(numeric, y, split=["test"] * len(y))
    with pytest.raises(TypeError, match="posterior summaries y"):
        bayeslift.UpliftSurrogate(steps=50).fit(numeric)


@pytest.mark.rpy2
def test_failed_convergence_checks_stop_the_fit():
    """model.checks.on_fail stop (the default): short chains fail the default ESS floor, and nothing is returned."""
    history, _ = simulate_history(300, seed=4)
    with pytest.raises(bayeslift.BayesianFitError, match=r"MCMC diagnostics failed: .*bulk ESS \d+ below 400.*"
                                                         r"raise model\.inference\.iter"):
        bayeslift.fit_bayesian(history, columns=COLUMNS, model={"inference": {"iter": 200}})


@pytest.mark.rpy2
def test_fit_bayesian_takes_several_campaign_arms():
    """issue 25: a three-arm history through the API (control level named) gives each arm's tables and ATE, and
    the estimator learns every arm from them."""
    from bayeslift.simulate import columns_for

    history, truth = simulate_history(1500, seed=6, scenario="multi_arm")
    tables = bayeslift.fit_bayesian(history, columns=columns_for("multi_arm"),
                                    model={"effect": {"shape": "linear"}, "inference": {"iter": 600},
                                           "checks": {"rhat_max": 1.05, "ess_bulk_min": 100, "ess_tail_min": 100}},
                                    split={"refit_all": False})
    assert tables.spec.arms == ["email_a", "email_b"]
    assert sorted(tables.train_data["received_campaign"].unique()) == [0, 1, 2]
    for arm in ("email_a", "email_b"):
        ate = tables.ate["arms"][arm]
        sd = (ate["ate_q95"] - ate["ate_q05"]) / 3.29
        assert abs(ate["ate_mean"] - truth[f"true_uplift_{arm}"].mean()) < 3 * sd, (arm, ate)
    model = bayeslift.UpliftSurrogate(steps=2000, hidden=64, fidelity_floor=0.95).fit(tables)  # as config/test.yaml
    pred = model.predict_table(history.head(5))
    assert {"uplift_email_a", "uplift_email_b_upper", "spend_if_control"} <= set(pred.columns)
