"""Baseline uplift models to compare the Bayesian model against (the learners layer).

Every model is a scikit-learn estimator: ``__init__`` only stores its arguments, ``fit(X, treatment, y)``
validates, learns (fitted attributes end in ``_``) and returns ``self``, and ``predict(X)`` returns the
predicted uplift E[y | X, treated] - E[y | X, control] per row. ``get_params``/``set_params`` reach into the
regressor too (``learner__n_estimators``), so ``clone`` and ``GridSearchCV`` work.

The meta-learners take a regressor object, as causalml's ``learner=`` does: any scikit-learn regressor,
cloned at fit (never fitted in place); ``None`` is ``make_regressor``'s LightGBM (the pipeline's defaults).
``random_state`` is set on the clones that take one (control arm: ``random_state + 1``); ``None`` keeps the
regressor's own.

Model selection: scikit-learn's splitters carry one target, so ``GridSearchCV`` and ``cross_val_score`` take
``uplift_target(treatment, y)`` as ``y``; ``fit(X, target)`` unpacks it, and ``metrics.qini_scorer`` scores it.

``X`` is a pandas frame of raw features (numeric and categorical columns), encoded by the one
``features.FeatureEncoder`` (``Design``): numbers log1p'd (``log1p``) and standardized, categorical columns
(object/category dtype, or named in ``categorical``) one-hot over the levels seen at fit; an unseen level is
refused (``DataValidationError`` naming the column).

Models (``BASELINES``: the names of config ``evaluation.baselines`` -> factory):
* ``TLearner``: one regressor per arm; uplift = mu1(x) - mu0(x).
* ``SLearner``: one regressor on (x, treatment); uplift = mu(x, 1) - mu(x, 0).
* ``InteractionLinear``: a linear regressor (ridge by default) of y on standardized x, t and t * x;
  uplift = b_t + x . b_tx.
* ``RandomUplift``: random scores, the floor every model must beat.
"""
from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import Ridge
from sklearn.utils.validation import check_is_fitted

from .features import FeatureEncoder

log = logging.getLogger("bayeslift")

T_TREES, S_TREES = 200, 300  # boosting rounds of the T-learner's two regressors and of the S-learner's one
TARGET_COLUMNS = ("treatment", "outcome")


class Design:
    """The baselines' view of ``features.FeatureEncoder``: fitted on every column of ``X`` (categorical: those
    named in ``categorical`` and those of object/string/category dtype), float64 matrices out. Standardizing
    leaves the trees' splits alone and lets every learner see the surrogate's matrix."""

    def __init__(self, categorical: list[str] | None = None, log1p: list[str] | None = None):
        self.categorical = categorical
        self.log1p = log1p

    def fit(self, X: pd.DataFrame) -> "Design":
        self.encoder_ = FeatureEncoder.from_frame(X, self.categorical, self.log1p)
        spec = self.encoder_.spec
        self.categorical_, self.numeric_, self.levels_ = spec.categorical, spec.numeric, spec.levels
        self.feature_names_in_ = [str(c) for c in pd.DataFrame(X).columns]
        self.columns_ = self.encoder_.feature_names
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        return self.encoder_.transform(pd.DataFrame(X).rename(columns=str), dtype=np.float64)


def uplift_target(treatment, y) -> pd.DataFrame:
    """Treatment and outcome as the one target scikit-learn's model selection passes to ``fit`` and scorers."""
    return pd.DataFrame({"treatment": np.asarray(treatment, dtype=float).ravel(),
                         "outcome": np.asarray(y, dtype=float).ravel()})


def split_target(target) -> tuple[np.ndarray, np.ndarray]:
    """(treatment, outcome) arrays back from ``uplift_target``'s frame."""
    if not isinstance(target, pd.DataFrame) or tuple(target.columns) != TARGET_COLUMNS:
        raise ValueError("fit(X, treatment, y) was given no y: pass both, or the single target "
                         "uplift_target(treatment, y) (columns treatment, outcome), as GridSearchCV needs")
    return target["treatment"].to_numpy(dtype=float), target["outcome"].to_numpy(dtype=float)


def _arrays(X, treatment, y):
    if y is None:
        treatment, y = split_target(treatment)
    t = np.asarray(treatment, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if not len(X) == len(t) == len(y):
        raise ValueError(f"X has {len(X)} rows, treatment {len(t)} and y {len(y)}; they must be the same users")
    if set(np.unique(t)) != {0.0, 1.0}:
        raise ValueError("treatment must be 0/1 with both arms present")
    return t, y


def make_regressor(kind: str, random_state: int = 0, n_jobs: int = 2, n_estimators: int = T_TREES):
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


def _fresh(learner, default, random_state):
    """An unfitted copy of ``learner`` (``default()`` when None), seeded with ``random_state`` if it takes one."""
    if isinstance(learner, str):
        raise TypeError(f"learner is a regressor object, e.g. make_regressor({learner!r}), not the string {learner!r}")
    model = clone(learner) if learner is not None else default()
    if not (hasattr(model, "fit") and hasattr(model, "predict")):
        raise TypeError(f"learner must be a scikit-learn regressor (fit/predict), not {type(model).__name__}")
    if random_state is not None and "random_state" in model.get_params(deep=False):
        model.set_params(random_state=random_state)
    return model


def _plus(seed, k: int):
    return None if seed is None else seed + k


class TLearner(BaseEstimator):
    """Two regressors, one per arm; uplift = mu1(x) - mu0(x).

    ``learner``: regressor of the treated arm (and of the control arm unless ``control_learner`` is given).
    """

    def __init__(self, learner=None, control_learner=None, random_state=0, categorical=None, log1p=None):
        self.learner = learner
        self.control_learner = control_learner
        self.random_state = random_state
        self.categorical = categorical
        self.log1p = log1p

    def fit(self, X, treatment, y=None):
        t, y = _arrays(X, treatment, y)
        self.design_ = Design(self.categorical, self.log1p).fit(X)
        Z = self.design_.transform(X)
        default = partial(make_regressor, "lightgbm", n_estimators=T_TREES)
        control = self.control_learner if self.control_learner is not None else self.learner
        self.model_treated_ = _fresh(self.learner, default, self.random_state)
        self.model_control_ = _fresh(control, default, _plus(self.random_state, 1))
        self.model_treated_.fit(Z[t == 1], y[t == 1])
        self.model_control_.fit(Z[t == 0], y[t == 0])
        return self

    def predict_arms(self, X) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "design_")
        Z = self.design_.transform(X)
        return self.model_treated_.predict(Z).astype(float), self.model_control_.predict(Z).astype(float)

    def predict(self, X) -> np.ndarray:
        mu1, mu0 = self.predict_arms(X)
        return mu1 - mu0

    def bundle(self) -> dict:
        """What is saved with joblib: both models plus the feature order and encoding."""
        check_is_fitted(self, "design_")
        return {"kind": "t_learner", "base": type(self.model_treated_).__name__,
                "model_treated": self.model_treated_, "model_control": self.model_control_,
                "feature_order": self.design_.feature_names_in_, "design_columns": self.design_.columns_,
                "design": self.design_}


class SLearner(BaseEstimator):
    """One regressor on (t, x); uplift = mu(x, 1) - mu(x, 0)."""

    def __init__(self, learner=None, random_state=0, categorical=None, log1p=None):
        self.learner = learner
        self.random_state = random_state
        self.categorical = categorical
        self.log1p = log1p

    def fit(self, X, treatment, y=None):
        t, y = _arrays(X, treatment, y)
        self.design_ = Design(self.categorical, self.log1p).fit(X)
        Z = self.design_.transform(X)
        self.model_ = _fresh(self.learner, partial(make_regressor, "lightgbm", n_estimators=S_TREES),
                             self.random_state)
        self.model_.fit(np.column_stack([t, Z]), y)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "design_")
        Z = self.design_.transform(X)
        ones, zeros = np.ones(len(Z)), np.zeros(len(Z))
        return (self.model_.predict(np.column_stack([ones, Z])) - self.model_.predict(np.column_stack([zeros, Z]))).astype(float)


class InteractionLinear(BaseEstimator):
    """A linear regressor (``learner``; None: ridge, alpha 1) of y on standardized x, t and t * x;
    uplift = b_t + x . b_tx."""

    def __init__(self, learner=None, categorical=None, log1p=None):
        self.learner = learner
        self.categorical = categorical
        self.log1p = log1p

    def _matrix(self, Z, t):
        Zs = (Z - self.mean_) / self.scale_
        return np.column_stack([Zs, t, t[:, None] * Zs])

    def fit(self, X, treatment, y=None):
        t, y = _arrays(X, treatment, y)
        self.design_ = Design(self.categorical, self.log1p).fit(X)
        Z = self.design_.transform(X)
        self.mean_ = Z.mean(axis=0)
        sd = Z.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        self.model_ = _fresh(self.learner, partial(Ridge, alpha=1.0), None).fit(self._matrix(Z, t), y)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "design_")
        Z = self.design_.transform(X)
        n = len(Z)
        return self.model_.predict(self._matrix(Z, np.ones(n))) - self.model_.predict(self._matrix(Z, np.zeros(n)))


class RandomUplift(BaseEstimator):
    """Random scores (standard normal): the ranking every model must beat."""

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, X, treatment, y=None):
        _arrays(X, treatment, y)
        self.n_features_in_ = pd.DataFrame(X).shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        return np.random.default_rng(self.random_state).normal(size=len(X))


def _boosted(cls, kind: str, n_estimators: int):
    def factory(random_state, n_jobs, categorical, log1p):
        return cls(make_regressor(kind, random_state, n_jobs, n_estimators), random_state=random_state,
                   categorical=categorical, log1p=log1p)
    return factory


# config evaluation.baselines' names (its schema's enum lists the same) -> factory(random_state, n_jobs, categorical, log1p)
BASELINES = {
    "t_lightgbm": _boosted(TLearner, "lightgbm", T_TREES),
    "t_xgboost": _boosted(TLearner, "xgboost", T_TREES),
    "s_lightgbm": _boosted(SLearner, "lightgbm", S_TREES),
    "s_xgboost": _boosted(SLearner, "xgboost", S_TREES),
    "linear_interaction": lambda random_state, n_jobs, categorical, log1p: InteractionLinear(
        categorical=categorical, log1p=log1p),
}
BASELINE_NAMES = tuple(BASELINES)


def make_baseline(name: str, random_state: int = 0, n_jobs: int = 2, categorical=None, log1p=None):
    """A fresh, unfitted baseline by name (one of BASELINE_NAMES, or 'random')."""
    if name == "random":
        return RandomUplift(random_state=random_state)
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {list(BASELINE_NAMES) + ['random']}")
    return BASELINES[name](random_state, n_jobs, categorical, log1p)


def predict_baselines(train: pd.DataFrame, users: pd.DataFrame, spec, names=BASELINE_NAMES, n_jobs: int = 2,
                      seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Fit every baseline (and ``random``) on ``train``; return id + one column of predicted uplift per model
    for ``users``, and the fitted models by name."""
    X, t, y = train[spec.features], train[spec.treatment], train[spec.outcome]
    out = pd.DataFrame({spec.id: users[spec.id].to_numpy()})
    models = {}
    for name in [*names, "random"]:
        models[name] = make_baseline(name, random_state=seed, n_jobs=n_jobs, categorical=spec.categorical,
                                     log1p=spec.log1p).fit(X, t, y)
        out[name] = models[name].predict(users[spec.features])
        log.info("baseline %s: mean predicted uplift %.4f on %d users", name, out[name].mean(), len(out))
    return out, models
