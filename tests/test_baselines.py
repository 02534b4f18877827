"""Baseline uplift models: interface, ATE recovery on simulated data, the joblib bundle, early input errors;
scikit-learn estimators (clone, nested params, GridSearchCV); the layers learners -> metrics -> pipeline steps."""
from __future__ import annotations

import ast
import inspect

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.validation import check_is_fitted

from bayeslift.baselines import (BASELINE_NAMES, BASELINES, S_TREES, T_TREES, Design, InteractionLinear, SLearner,
                                 TLearner, make_baseline, make_regressor, uplift_target)
from bayeslift.evaluation import run_baselines
from bayeslift.data import DataValidationError, FeatureSpec
from bayeslift.metrics import qini_scorer
from conftest import REPO
from eval_constants import BASELINE_ATE_TOL

PACKAGE = REPO / "python" / "bayeslift"


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
    Z = d.transform(pd.DataFrame({"a": [0.0], "c": ["y"]}))
    logged = np.log1p([1.0, 2.0, 3.0])  # numbers: log1p, then standardized on the fit rows
    np.testing.assert_allclose(Z, [[(0.0 - logged.mean()) / logged.std(), 0.0, 1.0]])
    # one rule for unseen levels (issue 24, the one encoder): refused, naming the column, as a scoring file's are
    with pytest.raises(DataValidationError, match=r"column 'c' has categories not seen in training \['z'\] at row 0"):
        d.transform(pd.DataFrame({"a": [0.0], "c": ["z"]}))


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


# ------------------------------------------------------------------ scikit-learn estimators (issue 24)
@pytest.mark.parametrize("name", [*BASELINE_NAMES, "random"])
def test_clone_keeps_params_and_refits_to_the_same_predictions(name, data):
    (X, t, y, _), (Xn, _, _, _) = data
    model = make_baseline(name, random_state=3, n_jobs=1).fit(X, t, y)
    copy = clone(model)
    assert repr(copy.get_params(deep=True)) == repr(model.get_params(deep=True))
    assert not any(k.endswith("_") for k in vars(copy))  # clone is unfitted
    with pytest.raises(NotFittedError):
        copy.predict(Xn)
    np.testing.assert_allclose(copy.fit(X, t, y).predict(Xn), model.predict(Xn), rtol=1e-10, atol=1e-12)


def test_defaults_are_the_pipelines_regressors(data):
    (X, t, y, _), (Xn, _, _, _) = data
    fitted = TLearner().fit(X, t, y)
    assert fitted.model_treated_.get_params() == make_regressor("lightgbm", 0, 2, T_TREES).get_params()
    assert fitted.model_control_.get_params() == make_regressor("lightgbm", 1, 2, T_TREES).get_params()
    assert SLearner().fit(X, t, y).model_.get_params() == make_regressor("lightgbm", 0, 2, S_TREES).get_params()
    assert InteractionLinear().fit(X, t, y).model_.get_params() == Ridge(alpha=1.0).get_params()
    # the pipeline's name -> factory gives the same model as the class with the same regressor
    by_name = make_baseline("t_xgboost", random_state=5, n_jobs=1).fit(X, t, y).predict(Xn)
    by_class = TLearner(make_regressor("xgboost", n_jobs=1), random_state=5).fit(X, t, y).predict(Xn)
    np.testing.assert_array_equal(by_name, by_class)


def test_regressor_objects_are_cloned_not_fitted_in_place(data):
    (X, t, y, _), _ = data
    ridge, tree = Ridge(alpha=2.0), DecisionTreeRegressor(max_depth=3, random_state=11)
    model = TLearner(learner=ridge, control_learner=tree, random_state=None).fit(X, t, y)
    assert isinstance(model.model_treated_, Ridge) and model.model_treated_.alpha == 2.0
    assert isinstance(model.model_control_, DecisionTreeRegressor) and model.model_control_.random_state == 11
    for given in (ridge, tree):
        with pytest.raises(NotFittedError):
            check_is_fitted(given)
    assert TLearner(learner=tree, random_state=7).fit(X, t, y).model_control_.random_state == 8


def test_nested_params_reach_the_fitted_regressor(data):
    (X, t, y, _), _ = data
    model = SLearner(make_regressor("lightgbm", n_jobs=1)).set_params(learner__n_estimators=7)
    assert model.get_params()["learner__n_estimators"] == 7
    assert model.fit(X, t, y).model_.n_estimators == 7
    assert model.model_.booster_.num_trees() == 7


def test_grid_search_over_the_regressor(data):
    (X, t, y, _), (Xn, _, _, tau_new) = data
    grid = [{"learner": [DummyRegressor()]}, {"learner": [Ridge()], "learner__alpha": [0.1, 10.0]}]
    search = GridSearchCV(TLearner(Ridge()), grid, scoring=qini_scorer, cv=3)
    search.fit(X, uplift_target(t, y))
    scores = dict(zip(map(repr, search.cv_results_["params"]), search.cv_results_["mean_test_score"]))
    assert isinstance(search.best_estimator_.learner, Ridge)
    assert min(s for k, s in scores.items() if "Ridge" in k) > max(0.0, scores[repr({"learner": DummyRegressor()})])
    assert np.corrcoef(search.predict(Xn), tau_new)[0, 1] > 0.5  # refitted on all rows


def test_single_target_equals_treatment_and_outcome(data):
    (X, t, y, _), (Xn, _, _, _) = data
    a = InteractionLinear().fit(X, t, y).predict(Xn)
    b = InteractionLinear().fit(X, uplift_target(t, y)).predict(Xn)
    np.testing.assert_array_equal(a, b)


def test_clear_errors_for_old_or_wrong_arguments(data):
    (X, t, y, _), _ = data
    with pytest.raises(TypeError, match="regressor object.*make_regressor\\('lightgbm'\\)"):
        TLearner("lightgbm").fit(X, t, y)
    with pytest.raises(ValueError, match="uplift_target"):
        SLearner().fit(X, t)
    with pytest.raises(ValueError, match="X has 4000 rows, treatment 10"):
        InteractionLinear().fit(X, t[:10], y[:10])
    with pytest.raises(ValueError, match="both arms"):
        InteractionLinear().fit(X, np.ones(len(X)), y)


def test_config_schema_lists_the_baseline_names():
    schema = yaml.safe_load((REPO / "config" / "config.schema.yaml").read_text())
    enum = schema["properties"]["evaluation"]["properties"]["baselines"]["items"]["enum"]
    assert tuple(enum) == BASELINE_NAMES == tuple(BASELINES)


# --------------------------------------------------------------------------- layers (issue 24)
def _imports(module: str) -> set[str]:
    """bayeslift modules that ``module`` imports anywhere in its file (top level or inside functions)."""
    path = PACKAGE / (module.replace(".", "/") + ".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("bayeslift."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("bayeslift.")}
    return found


def _reachable(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        for dep in _imports(todo.pop()):
            if dep not in seen and (PACKAGE / f"{dep}.py").exists():
                seen.add(dep)
                todo.append(dep)
    return seen


def test_layers_learners_then_metrics_then_pipeline_steps():
    assert {"baselines", "metrics"} <= _imports("evaluation")
    assert "baselines" in _imports("metrics")
    assert not {"metrics", "evaluation"} & _reachable("baselines")  # learners never import what is above them
    assert "evaluation" not in _reachable("metrics")
    for module in ("baselines", "metrics", "evaluation"):
        assert module not in _reachable(module), f"{module} imports itself through a cycle"
