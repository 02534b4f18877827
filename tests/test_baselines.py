"""Baseline uplift models: interface, ATE recovery on simulated data, the joblib bundle, early input errors."""
from __future__ import annotations

import inspect

import joblib
import numpy as np
import pandas as pd
import pytest

from bayeslift.baselines import BASELINE_NAMES, Design, make_baseline, run_baselines
from bayeslift.data import DataValidationError, FeatureSpec
from eval_constants import BASELINE_ATE_TOL


def simple_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                      "grp": rng.choice(["a", "b", "c"], size=n)})
    t = rng.binomial(1, 0.5, n)
    tau = 1.0 + X["x2"].to_numpy()
    y = 2 + X["x1"].to_numpy() + tau * t + rng.normal(size=n)
    return X, t, y, tau


@pytest.fixture(scope="module")
def data():
    return simple_data(4000, 1), simple_data(2000, 2)


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_baseline_recovers_ate_and_ranks(name, data):
    (X, t, y, _), (Xn, _, _, tau_new) = data
    model = make_baseline(name, n_jobs=1)
    assert model.fit(X, t, y) is model
    pred = model.predict(Xn)
    assert pred.shape == (len(Xn),)
    assert abs(pred.mean() - 1.0) < BASELINE_ATE_TOL
    assert np.corrcoef(pred, tau_new)[0, 1] > 0.5  # uplift driven by x2 is found


@pytest.mark.parametrize("name", [*BASELINE_NAMES, "random"])
def test_sklearn_style_init_only_stores_args(name):
    model = make_baseline(name, random_state=3, n_jobs=1)
    params = [p for p in inspect.signature(type(model).__init__).parameters if p != "self"]
    assert set(vars(model)) == set(params)
    assert not any(k.endswith("_") for k in vars(model))


def test_unknown_baseline():
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("nope")


def test_design_one_hot_and_unseen_levels():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": ["x", "y", "x"]})
    d = Design(log1p=["a"]).fit(X)
    assert d.columns_ == ["a", "c=x", "c=y"]
    Z = d.transform(pd.DataFrame({"a": [0.0], "c": ["z"]}))
    np.testing.assert_allclose(Z, [[0.0, 0.0, 0.0]])


def _write_split(tmp_path, n=300, one_arm_holdout=False):
    X, t, y, _ = simple_data(n, 5)
    frame = pd.concat([pd.DataFrame({"id": np.arange(n), "t": t, "y": np.abs(y)}), X], axis=1)
    train, holdout = frame.iloc[: n // 2], frame.iloc[n // 2:].copy()
    if one_arm_holdout:
        holdout["t"] = 1
    spec = FeatureSpec.from_columns({"id": "id", "treatment": "t", "outcome": "y", "numeric": ["x1", "x2"],
                                     "categorical": ["grp"]})
    paths = {k: tmp_path / f"{k}.csv" for k in ("train", "holdout")}
    train.to_csv(paths["train"], index=False)
    holdout.to_csv(paths["holdout"], index=False)
    spec.to_json(tmp_path / "spec.json")
    return paths, tmp_path / "spec.json"


def test_run_baselines_writes_predictions_and_bundle(tmp_path):
    paths, spec = _write_split(tmp_path)
    out = run_baselines(paths["train"], paths["holdout"], spec, tmp_path / "p.csv", tmp_path / "b.joblib",
                        names=["t_lightgbm", "linear_interaction"], n_jobs=1)
    assert list(out.columns) == ["id", "t_lightgbm", "linear_interaction", "random"]
    bundle = joblib.load(tmp_path / "b.joblib")
    assert bundle["feature_order"] == ["x1", "x2", "grp"]
    holdout = pd.read_csv(paths["holdout"])
    Z = bundle["design"].transform(holdout[bundle["feature_order"]])
    uplift = bundle["model_treated"].predict(Z) - bundle["model_control"].predict(Z)
    np.testing.assert_allclose(uplift, out["t_lightgbm"], rtol=1e-6, atol=1e-9)


def test_run_baselines_one_arm_holdout_fails_early(tmp_path):
    paths, spec = _write_split(tmp_path, one_arm_holdout=True)
    with pytest.raises(DataValidationError, match="only arm"):
        run_baselines(paths["train"], paths["holdout"], spec, tmp_path / "p.csv", tmp_path / "b.joblib")
    assert not (tmp_path / "p.csv").exists()


def test_run_baselines_unknown_segment_fails_early(tmp_path):
    paths, spec = _write_split(tmp_path)
    with pytest.raises(DataValidationError, match="evaluation.segments.*nope"):
        run_baselines(paths["train"], paths["holdout"], spec, tmp_path / "p.csv", tmp_path / "b.joblib",
                      segments=["x1", "nope"])
