"""Baseline uplift models to compare the Bayesian model against.

Every model has the same sklearn-like interface: ``__init__`` only stores its arguments,
``fit(X, treatment, y)`` learns (fitted attributes end in ``_``) and returns ``self``, and
``predict(X)`` returns the predicted uplift E[y | X, treated] - E[y | X, control] per row.

``X`` is a pandas frame of raw features (numeric and categorical columns); categorical columns
(object/category dtype, or named in ``categorical``) are one-hot encoded with the levels seen at fit.

Models:
* ``TLearner``: one regressor per arm (LightGBM or XGBoost); uplift = mu1(x) - mu0(x).
* ``SLearner``: one regressor on (x, treatment); uplift = mu(x, 1) - mu(x, 0).
* ``InteractionLinear``: ridge regression of y on x, t and t * x; uplift = b_t + x . b_tx.
* ``RandomUplift``: random scores, the floor every model must beat.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

BASELINE_NAMES = ("t_lightgbm", "t_xgboost", "s_lightgbm", "s_xgboost", "linear_interaction")


class Design:
    """Numeric matrix from raw features: numeric columns as float, categoricals one-hot (fit levels)."""

    def __init__(self, categorical: list[str] | None = None, log1p: list[str] | None = None):
        self.categorical = categorical
        self.log1p = log1p

    def fit(self, X: pd.DataFrame) -> "Design":
        X = pd.DataFrame(X)
        given = list(self.categorical) if self.categorical is not None else []
        auto = [c for c in X.columns if X[c].dtype == object or str(X[c].dtype) == "category"]
        self.categorical_ = [c for c in X.columns if c in given or c in auto]
        self.numeric_ = [c for c in X.columns if c not in self.categorical_]
        self.levels_ = {c: sorted(X[c].astype(str).unique().tolist()) for c in self.categorical_}
        self.feature_names_in_ = list(X.columns)
        self.columns_ = list(self.numeric_) + [f"{c}={lv}" for c in self.categorical_ for lv in self.levels_[c]]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        X = pd.DataFrame(X)
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"features {missing} missing; the model was fitted on {self.feature_names_in_}")
        parts = []
        for c in self.numeric_:
            v = X[c].to_numpy(dtype=float)
            if self.log1p and c in self.log1p:
                v = np.log1p(np.clip(v, 0.0, None))
            parts.append(v[:, None])
        for c in self.categorical_:
            v = X[c].astype(str).to_numpy()
            parts.append(np.stack([(v == lv).astype(float) for lv in self.levels_[c]], axis=1))
        return np.hstack(parts) if parts else np.empty((len(X), 0))


def _arrays(treatment, y):
    t = np.asarray(treatment, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if set(np.unique(t)) != {0.0, 1.0}:
        raise ValueError("treatment must be 0/1 with both arms present")
    return t, y


def make_regressor(kind: str, random_state: int = 0, n_jobs: int = 2, n_estimators: int = 200):
    """Small, fast gradient-boosting regressors (the defaults of the baselines)."""
    if kind == "lightgbm":
        from lightgbm import LGBMRegressor

        return LGBMRegressor(n_estimators=n_estimators, learning_rate=0.05, num_leaves=15, min_child_samples=20,
                             subsample=0.8, subsample_freq=1, colsample_bytree=0.9, reg_lambda=1.0,
                             random_state=random_state, n_jobs=n_jobs, verbose=-1)
    if kind == "xgboost":
        from xgboost import XGBRegressor

        return XGBRegressor(n_estimators=n_estimators, learning_rate=0.05, max_depth=4, min_child_weight=5,
                            subsample=0.8, colsample_bytree=0.9, reg_lambda=1.0, tree_method="hist",
                            random_state=random_state, n_jobs=n_jobs, verbosity=0)
    raise ValueError(f"unknown regressor kind {kind!r}; use 'lightgbm' or 'xgboost'")


class TLearner:
    """Two regressors, one per arm; uplift = mu1(x) - mu0(x)."""

    def __init__(self, base: str = "lightgbm", n_estimators: int = 200, random_state: int = 0, n_jobs: int = 2,
                 categorical=None, log1p=None):
        self.base = base
        self.n_estimators = n_estimators
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.categorical = categorical
        self.log1p = log1p

    def fit(self, X, treatment, y):
        t, y = _arrays(treatment, y)
        self.design_ = Design(self.categorical, self.log1p).fit(X)
        Z = self.design_.transform(X)
        self.model_treated_ = make_regressor(self.base, self.random_state, self.n_jobs, self.n_estimators)
        self.model_control_ = make_regressor(self.base, self.random_state + 1, self.n_jobs, self.n_estimators)
        self.model_treated_.fit(Z[t == 1], y[t == 1])
        self.model_control_.fit(Z[t == 0], y[t == 0])
        return self

    def predict_arms(self, X) -> tuple[np.ndarray, np.ndarray]:
        Z = self.design_.transform(X)
        return self.model_treated_.predict(Z).astype(float), self.model_control_.predict(Z).astype(float)

    def predict(self, X) -> np.ndarray:
        mu1, mu0 = self.predict_arms(X)
        return mu1 - mu0

    def bundle(self) -> dict:
        """What is saved with joblib: both models plus the feature order and encoding."""
        return {"kind": "t_learner", "base": self.base, "model_treated": self.model_treated_,
                "model_control": self.model_control_, "feature_order": self.design_.feature_names_in_,
                "design_columns": self.design_.columns_, "design": self.design_}


class SLearner:
    """One regressor on (x, t); uplift = mu(x, 1) - mu(x, 0)."""

    def __init__(self, base: str = "lightgbm", n_estimators: int = 300, random_state: int = 0, n_jobs: int = 2,
                 categorical=None, log1p=None):
        self.base = base
        self.n_estimators = n_estimators
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.categorical = categorical
        self.log1p = log1p

    def fit(self, X, treatment, y):
        t, y = _arrays(treatment, y)
        self.design_ = Design(self.categorical, self.log1p).fit(X)
        Z = self.design_.transform(X)
        self.model_ = make_regressor(self.base, self.random_state, self.n_jobs, self.n_estimators)
        self.model_.fit(np.column_stack([t, Z]), y)
        return self

    def predict(self, X) -> np.ndarray:
        Z = self.design_.transform(X)
        ones, zeros = np.ones(len(Z)), np.zeros(len(Z))
        return (self.model_.predict(np.column_stack([ones, Z])) - self.model_.predict(np.column_stack([zeros, Z]))).astype(float)


class InteractionLinear:
    """Ridge regression of y on standardized x, t and t * x; uplift = b_t + x . b_tx."""

    def __init__(self, alpha: float = 1.0, categorical=None, log1p=None):
        self.alpha = alpha
        self.categorical = categorical
        self.log1p = log1p

    def _matrix(self, Z, t):
        Zs = (Z - self.mean_) / self.scale_
        return np.column_stack([Zs, t, t[:, None] * Zs])

    def fit(self, X, treatment, y):
        from sklearn.linear_model import Ridge

        t, y = _arrays(treatment, y)
        self.design_ = Design(self.categorical, self.log1p).fit(X)
        Z = self.design_.transform(X)
        self.mean_ = Z.mean(axis=0)
        sd = Z.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        self.model_ = Ridge(alpha=self.alpha).fit(self._matrix(Z, t), y)
        return self

    def predict(self, X) -> np.ndarray:
        Z = self.design_.transform(X)
        n = len(Z)
        return self.model_.predict(self._matrix(Z, np.ones(n))) - self.model_.predict(self._matrix(Z, np.zeros(n)))


class RandomUplift:
    """Random scores (standard normal): the ranking every model must beat."""

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, X, treatment, y):
        self.n_features_in_ = pd.DataFrame(X).shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        return np.random.default_rng(self.random_state).normal(size=len(X))


def make_baseline(name: str, random_state: int = 0, n_jobs: int = 2, categorical=None, log1p=None):
    """A fresh, unfitted baseline by name (one of BASELINE_NAMES, or 'random')."""
    common = dict(random_state=random_state, n_jobs=n_jobs, categorical=categorical, log1p=log1p)
    if name == "t_lightgbm":
        return TLearner("lightgbm", **common)
    if name == "t_xgboost":
        return TLearner("xgboost", **common)
    if name == "s_lightgbm":
        return SLearner("lightgbm", **common)
    if name == "s_xgboost":
        return SLearner("xgboost", **common)
    if name == "linear_interaction":
        return InteractionLinear(categorical=categorical, log1p=log1p)
    if name == "random":
        return RandomUplift(random_state=random_state)
    raise ValueError(f"unknown baseline {name!r}; choose from {list(BASELINE_NAMES) + ['random']}")


def predict_baselines(train: pd.DataFrame, users: pd.DataFrame, spec, names=BASELINE_NAMES, n_jobs: int = 2,
                      seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Fit every baseline (and ``random``) on ``train``; return id + one column of predicted uplift per model
    for ``users``, and the fitted models by name."""
    import logging

    log = logging.getLogger("bayeslift")
    X, t, y = train[spec.features], train[spec.treatment], train[spec.outcome]
    out = pd.DataFrame({spec.id: users[spec.id].to_numpy()})
    models = {}
    for name in [*names, "random"]:
        models[name] = make_baseline(name, random_state=seed, n_jobs=n_jobs, categorical=spec.categorical,
                                     log1p=spec.log1p).fit(X, t, y)
        out[name] = models[name].predict(users[spec.features])
        log.info("baseline %s: mean predicted uplift %.4f on %d users", name, out[name].mean(), len(out))
    return out, models


def run_baselines(train_csv, holdout_csv, spec_json, out_predictions, out_bundle, names=BASELINE_NAMES,
                  n_jobs: int = 2, seed: int = 0, segments=None) -> pd.DataFrame:
    """The ``baselines`` step: fit every baseline on the train split and predict the holdout users.

    Writes one column of predicted uplift per model (plus ``random``) and saves the LightGBM T-learner
    bundle (both models + feature order) with joblib. Inputs are checked before any model is fitted.
    """
    import joblib

    from .data import FeatureSpec
    from .evaluation import check_evaluation_inputs
    from .io import atomic_path, write_csv_atomic
    from .prepare import read_prepared

    spec = FeatureSpec.from_json(spec_json)
    train = read_prepared(train_csv, spec)
    holdout = read_prepared(holdout_csv, spec)
    check_evaluation_inputs(train, spec, segments, str(train_csv))
    check_evaluation_inputs(holdout, spec, segments, str(holdout_csv))
    out, models = predict_baselines(train, holdout, spec, names, n_jobs, seed)
    bundle_model = models.get("t_lightgbm")
    if bundle_model is None:
        bundle_model = make_baseline("t_lightgbm", random_state=seed, n_jobs=n_jobs, categorical=spec.categorical,
                                     log1p=spec.log1p).fit(train[spec.features], train[spec.treatment],
                                                            train[spec.outcome])
    with atomic_path(out_bundle) as tmp:
        joblib.dump(bundle_model.bundle(), tmp)
    write_csv_atomic(out, out_predictions)
    return out
