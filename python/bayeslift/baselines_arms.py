"""Baseline uplift models over several campaign arms (issue 25; the learners layer, beside ``baselines``).

The K-arm form of ``baselines``' models, with the same estimator contract: ``fit(X, arm, y)`` takes the arm index
per row (0 = control, 1..K the campaign arms, ``arms.encode_treatment``; every arm present), ``predict(X)``
returns an (n, K) array whose column k - 1 is arm k's uplift E[y | X, arm k] - E[y | X, control].

* ``ArmTLearner``: one regressor per arm 0..K; uplift_k = mu_k(x) - mu_0(x).
* ``ArmSLearner``: one regressor on (one-hot arms 1..K, x); uplift_k = mu(x, arm k) - mu(x, control).
* ``ArmInteractionLinear``: a linear regressor (ridge) of y on standardized x, the K arm indicators d_k and each
  d_k * x; uplift_k = b_k + x . b_kx.
* ``ArmRandomUplift``: random scores per arm, the floor every model must beat.

``ARM_BASELINES`` holds them under config ``evaluation.baselines``' names (``t_lightgbm`` is the multi-arm
T-learner on LightGBM, and so on), so one config serves one campaign and several.
"""
from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import Ridge
from sklearn.utils.validation import check_is_fitted

from .baselines import S_TREES, T_TREES, Design, _boosted, _fresh, _plus, make_regressor

log = logging.getLogger("bayeslift")
#: the baselines file's column naming each row's campaign arm (its slug) when there are several
ARM_COLUMN = "arm"


def _arm_arrays(X, arm, y) -> tuple[np.ndarray, np.ndarray, int]:
    """(arm index, outcome, K): the arm as int64, every arm 0..K present (K >= 1)."""
    a = np.asarray(arm, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if not len(X) == len(a) == len(y):
        raise ValueError(f"X has {len(X)} rows, arm {len(a)} and y {len(y)}; they must be the same users")
    if not np.isfinite(a).all() or (a % 1 != 0).any() or (a < 0).any():
        raise ValueError("arm must hold arm indices 0 (control), 1..K")
    a = a.astype(np.int64)
    n_arms = int(a.max()) if len(a) else 0
    absent = sorted(set(range(n_arms + 1)) - set(np.unique(a).tolist()))
    if n_arms < 1 or absent:
        raise ValueError(f"arm must hold control (0) and every campaign arm 1..K; missing {absent or [1]}")
    return a, y, n_arms


def _one_hot(arm: np.ndarray, n_arms: int) -> np.ndarray:
    """(n, K) indicators of arms 1..K (control: all 0)."""
    return (np.asarray(arm)[:, None] == np.arange(1, n_arms + 1)).astype(float)


def _versus_control(mu: list[np.ndarray]) -> np.ndarray:
    """(n, K) uplift from the expected outcome under each arm 0..K (a list, control first)."""
    return np.column_stack(mu[1:]) - mu[0][:, None]


class _ArmLearner(BaseEstimator):
    """The arguments the tree learners share, and their fit's first step."""

    def __init__(self, learner=None, random_state=0, categorical=None, log1p=None):
        self.learner = learner
        self.random_state = random_state
        self.categorical = categorical
        self.log1p = log1p

    def _encode(self, X, arm, y):
        """(Z, arm, y): the arms checked (``n_arms_``), the encoder fitted on ``X`` (``design_``) and applied."""
        arm, y, self.n_arms_ = _arm_arrays(X, arm, y)
        self.design_ = Design(self.categorical, self.log1p).fit(X)
        return self.design_.transform(X), arm, y


class ArmTLearner(_ArmLearner):
    """One regressor per arm 0..K (``learner``, cloned; arm k seeded ``random_state + k``); uplift_k = mu_k - mu_0."""

    def fit(self, X, arm, y):
        Z, arm, y = self._encode(X, arm, y)
        default = partial(make_regressor, "lightgbm", n_estimators=T_TREES)
        self.models_ = [_fresh(self.learner, default, _plus(self.random_state, k)).fit(Z[arm == k], y[arm == k])
                        for k in range(self.n_arms_ + 1)]
        return self

    def predict_arms(self, X) -> np.ndarray:
        """(n, K + 1): the expected outcome under each arm, control first."""
        check_is_fitted(self, "design_")
        Z = self.design_.transform(X)
        return np.column_stack([m.predict(Z).astype(float) for m in self.models_])

    def predict(self, X) -> np.ndarray:
        mu = self.predict_arms(X)
        return mu[:, 1:] - mu[:, :1]

    def bundle(self) -> dict:
        """What is saved with joblib: the K + 1 models (control first) plus the feature order and encoding."""
        check_is_fitted(self, "design_")
        return {"kind": "t_learner_arms", "base": type(self.models_[0]).__name__, "models": self.models_,
                "feature_order": self.design_.feature_names_in_, "design_columns": self.design_.columns_,
                "design": self.design_}


class ArmSLearner(_ArmLearner):
    """One regressor on (one-hot arms 1..K, x); uplift_k = mu(x, arm k) - mu(x, control)."""

    def fit(self, X, arm, y):
        Z, arm, y = self._encode(X, arm, y)
        self.model_ = _fresh(self.learner, partial(make_regressor, "lightgbm", n_estimators=S_TREES),
                             self.random_state)
        self.model_.fit(np.column_stack([_one_hot(arm, self.n_arms_), Z]), y)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "design_")
        Z = self.design_.transform(X)
        return _versus_control([self.model_.predict(np.column_stack([_one_hot(np.full(len(Z), k), self.n_arms_), Z]))
                                .astype(float) for k in range(self.n_arms_ + 1)])


class ArmInteractionLinear(_ArmLearner):
    """A linear regressor (``learner``; None: ridge, alpha 1) of y on standardized x, the arm indicators d_k and
    d_k * x; uplift_k = b_k + x . b_kx. ``random_state`` is unused (no randomness), kept for one signature."""

    def _matrix(self, Z, arm):
        Zs = (Z - self.mean_) / self.scale_
        d = _one_hot(arm, self.n_arms_)
        return np.column_stack([Zs, d, *(d[:, [k]] * Zs for k in range(self.n_arms_))])

    def fit(self, X, arm, y):
        Z, arm, y = self._encode(X, arm, y)
        self.mean_ = Z.mean(axis=0)
        sd = Z.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        self.model_ = _fresh(self.learner, partial(Ridge, alpha=1.0), None).fit(self._matrix(Z, arm), y)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "design_")
        Z = self.design_.transform(X)
        return _versus_control([self.model_.predict(self._matrix(Z, np.full(len(Z), k)))
                                for k in range(self.n_arms_ + 1)])


class ArmRandomUplift(BaseEstimator):
    """Random scores (standard normal), one per user and arm: the ranking every model must beat."""

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, X, arm, y):
        _, _, self.n_arms_ = _arm_arrays(X, arm, y)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "n_arms_")
        return np.random.default_rng(self.random_state).normal(size=(len(X), self.n_arms_))


# config evaluation.baselines' names -> factory(random_state, n_jobs, categorical, log1p), as ``BASELINES``
ARM_BASELINES = {
    "t_lightgbm": _boosted(ArmTLearner, "lightgbm", T_TREES),
    "t_xgboost": _boosted(ArmTLearner, "xgboost", T_TREES),
    "s_lightgbm": _boosted(ArmSLearner, "lightgbm", S_TREES),
    "s_xgboost": _boosted(ArmSLearner, "xgboost", S_TREES),
    "linear_interaction": lambda random_state, n_jobs, categorical, log1p: ArmInteractionLinear(
        categorical=categorical, log1p=log1p),
}


def make_arm_baseline(name: str, random_state: int = 0, n_jobs: int = 2, categorical=None, log1p=None):
    """A fresh, unfitted multi-arm baseline by name (one of ``ARM_BASELINES``, or 'random')."""
    if name == "random":
        return ArmRandomUplift(random_state=random_state)
    if name not in ARM_BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {list(ARM_BASELINES) + ['random']}")
    return ARM_BASELINES[name](random_state, n_jobs, categorical, log1p)


def arm_predictions_frame(ids, slugs, uplift: dict, id_name: str = "id") -> pd.DataFrame:
    """The multi-arm baselines file: one row per user and campaign arm (users in order, each user's arms in arm
    order), columns ``id_name``, ``ARM_COLUMN`` (the arm's slug) and one per model of ``uplift`` ({model: (n, K)})."""
    ids = np.asarray(ids)
    out = pd.DataFrame({id_name: np.repeat(ids, len(slugs)),
                        ARM_COLUMN: np.tile(np.asarray(slugs, dtype=object), len(ids))})
    for name, values in uplift.items():
        out[name] = np.asarray(values, dtype=float).reshape(-1)  # row-major: user by user, arm after arm
    return out


def predict_arm_baselines(train: pd.DataFrame, users: pd.DataFrame, spec, names, n_jobs: int = 2,
                          seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Fit every multi-arm baseline (and ``random``) on ``train`` (its treatment column: the arm index 0..K);
    return ``arm_predictions_frame`` for ``users`` (its ``id`` column named ``spec.id``) and the fitted models."""
    X, arm, y = train[spec.features], train[spec.treatment], train[spec.outcome]
    models, uplift = {}, {}
    for name in [*names, "random"]:
        models[name] = make_arm_baseline(name, random_state=seed, n_jobs=n_jobs, categorical=spec.categorical,
                                         log1p=spec.log1p).fit(X, arm, y)
        uplift[name] = models[name].predict(users[spec.features])
        log.info("baseline %s: mean predicted uplift per arm %s on %d users", name,
                 np.round(uplift[name].mean(axis=0), 4).tolist(), len(users))
    return arm_predictions_frame(users[spec.id].to_numpy(), spec.arm_slugs, uplift, spec.id), models
