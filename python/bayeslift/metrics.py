"""Metrics of uplift models on a randomized holdout (and against the truth when it is known): ATE estimators,
ranking (Qini, AUUC, uplift at k%), calibration, segments, truth metrics, and a scikit-learn scorer
(holdout_metrics.py applies them to every model of one holdout at once).

The metrics layer: it uses the learners (``baselines``) and the data checks, never a pipeline step.

Definitions (continuous outcome, e.g. spend; N users in the evaluation set, sorted by predicted uplift,
highest first; among the top k users, N_T(k) / N_C(k) are the treated / control counts and Y_T(k) /
Y_C(k) the sums of their outcomes; x = k / N is the share targeted):

* Qini curve      Q(x) = [Y_T(k) - Y_C(k) * N_T(k) / N_C(k)] / N * 1000
                  the incremental spend per 1,000 users of the whole population when the top share x is
                  treated (control sums rescaled to the treated count).
* Uplift (gain)   G(x) = [Y_T(k) / N_T(k) - Y_C(k) / N_C(k)] * k / N * 1000
  curve           same idea with arm means; the two agree when both arms are balanced.
* Qini gain       integral over x in [0, 1] of Q(x) - x * Q(1): the area between the Qini curve and the
                  straight line of random targeting, in spend per 1,000 users. Random ranking: 0 in
                  expectation; larger is better.
* AUUC            integral of G(x) over [0, 1] (per 1,000 users); ``auuc_lift`` = AUUC - G(1) / 2, the
                  area above random targeting.
* Uplift at k%    observed difference in mean outcome, treated minus control, among the top k% users.

Points where one arm is still empty count as 0. Intervals are 95% bootstrap percentiles: users are
resampled with replacement within each arm while the predictions (and so the ranking) stay fixed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold

from .baselines import make_regressor, split_target
from .data import DataValidationError
from .policy import uplift_scores

Z95 = stats.norm.ppf(0.975)
TOP_K = (0.1, 0.2, 0.3, 0.5)


# ----------------------------------------------------------------------------------------------- ATE
def _result(method: str, estimate: float, se: float) -> dict:
    return {"method": method, "estimate": float(estimate), "se": float(se),
            "ci_low": float(estimate - Z95 * se), "ci_high": float(estimate + Z95 * se)}


def check_arms(t, source="evaluation data"):
    """Treatment as floats; a DataValidationError naming ``source`` unless both arms (0 and 1) are present."""
    t = np.asarray(t, dtype=float)
    arms = set(np.unique(t).tolist())
    if arms != {0.0, 1.0}:
        raise DataValidationError(
            f"{source}: treatment has only arm {sorted(int(a) for a in arms)}; both treated (1) and control (0) are needed")
    return t


def diff_in_means(t, y) -> dict:
    """Treated mean minus control mean, with the unpooled (Welch) standard error."""
    t = check_arms(t)
    y = np.asarray(y, dtype=float)
    y1, y0 = y[t == 1], y[t == 0]
    se = np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0))
    return _result("difference_in_means", y1.mean() - y0.mean(), se)


def _standardize(Z):
    Z = np.asarray(Z, dtype=float)
    sd = Z.std(axis=0)
    return (Z - Z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def fit_propensity(Z, t, clip: float = 0.01) -> np.ndarray:
    """In-sample logistic-regression propensity P(t = 1 | x), clipped to [clip, 1 - clip]."""
    model = LogisticRegression(C=1.0, max_iter=2000).fit(_standardize(Z), np.asarray(t, dtype=int))
    return np.clip(model.predict_proba(_standardize(Z))[:, 1], clip, 1 - clip)


def ipw_ate(Z, t, y, propensity=None) -> dict:
    """Normalized (Hajek) inverse-propensity-weighted ATE with a fitted logistic propensity.

    Standard error from the influence function, treating the propensity as known.
    """
    t = check_arms(t)
    y = np.asarray(y, dtype=float)
    e = fit_propensity(Z, t) if propensity is None else np.broadcast_to(np.asarray(propensity, float), t.shape)
    w1, w0 = t / e, (1 - t) / (1 - e)
    m1, m0 = np.sum(w1 * y) / np.sum(w1), np.sum(w0 * y) / np.sum(w0)
    psi = w1 * (y - m1) / w1.mean() - w0 * (y - m0) / w0.mean()
    return _result("ipw", m1 - m0, psi.std(ddof=1) / np.sqrt(len(y)))


def _regressor(kind: str, seed: int):
    if kind == "linear":
        return Ridge(alpha=1.0)
    return make_regressor(kind, random_state=seed, n_jobs=1, n_estimators=100)


def _folds(n: int, n_folds: int, seed: int, strata=None) -> np.ndarray:
    fold = np.empty(n, dtype=int)
    splitter = (StratifiedKFold(n_folds, shuffle=True, random_state=seed) if strata is not None
                else KFold(n_folds, shuffle=True, random_state=seed))
    for k, (_, test) in enumerate(splitter.split(np.zeros(n), strata)):
        fold[test] = k
    return fold


def dml_plr(Z, t, y, n_folds: int = 5, outcome_model: str = "lightgbm", seed: int = 0) -> dict:
    """Cross-fitted Double ML, partially linear model y = theta * t + g(x) + e.

    m(x) = E[y | x] by ``outcome_model`` and e(x) = P(t = 1 | x) by logistic regression, each fitted on
    the other folds; theta = sum(t~ y~) / sum(t~^2) on residuals, with the Neyman-orthogonal score's SE.
    """
    t = check_arms(t)
    y = np.asarray(y, dtype=float)
    Zs = _standardize(Z)
    fold = _folds(len(y), n_folds, seed, strata=t)
    m_hat, e_hat = np.empty(len(y)), np.empty(len(y))
    for k in range(n_folds):
        tr, te = fold != k, fold == k
        m_hat[te] = _regressor(outcome_model, seed + k).fit(Zs[tr], y[tr]).predict(Zs[te])
        e_hat[te] = LogisticRegression(max_iter=2000).fit(Zs[tr], t[tr].astype(int)).predict_proba(Zs[te])[:, 1]
    y_res, t_res = y - m_hat, t - np.clip(e_hat, 0.01, 0.99)
    theta = np.sum(t_res * y_res) / np.sum(t_res**2)
    psi = (y_res - theta * t_res) * t_res
    se = np.sqrt(np.mean(psi**2)) / np.mean(t_res**2) / np.sqrt(len(y))
    return _result("double_ml", theta, se)


def aipw_scores(Z, t, y, propensity=None, n_folds: int = 5, outcome_model: str = "lightgbm",
                seed: int = 0) -> np.ndarray:
    """Cross-fitted doubly-robust (AIPW) uplift scores Gamma_i, one per user; their mean is the ATE.

    mu1, mu0 fitted per arm on the other folds; the propensity is ``propensity`` when given (a randomized
    design: the known assignment probability) or a cross-fitted logistic regression otherwise.
    """
    t = check_arms(t)
    y = np.asarray(y, dtype=float)
    Zs = _standardize(Z)
    fold = _folds(len(y), n_folds, seed, strata=t)
    mu1, mu0, e_hat = np.empty(len(y)), np.empty(len(y)), np.empty(len(y))
    for k in range(n_folds):
        tr, te = fold != k, fold == k
        for arm, mu in ((1, mu1), (0, mu0)):
            sel = tr & (t == arm)
            mu[te] = _regressor(outcome_model, seed + k).fit(Zs[sel], y[sel]).predict(Zs[te])
        if propensity is None:
            e_hat[te] = LogisticRegression(max_iter=2000).fit(Zs[tr], t[tr].astype(int)).predict_proba(Zs[te])[:, 1]
    e = np.clip(e_hat, 0.01, 0.99) if propensity is None else np.broadcast_to(np.asarray(propensity, float), t.shape)
    return uplift_scores(t, y, e, mu1, mu0)


def aipw_ate(Z, t, y, propensity=None, n_folds: int = 5, outcome_model: str = "lightgbm", seed: int = 0) -> dict:
    """Cross-fitted AIPW ATE: mean of ``aipw_scores`` with SE sd / sqrt(n)."""
    g = aipw_scores(Z, t, y, propensity, n_folds, outcome_model, seed)
    return _result("aipw", g.mean(), g.std(ddof=1) / np.sqrt(len(g)))


def ate_suite(Z, t, y, randomized: bool = True, n_folds: int = 5, outcome_model: str = "lightgbm",
              seed: int = 0) -> pd.DataFrame:
    """All four ATE estimators side by side (estimate, se, 95% CI)."""
    t = check_arms(t)
    known = float(np.mean(t)) if randomized else None
    rows = [diff_in_means(t, y), ipw_ate(Z, t, y),
            dml_plr(Z, t, y, n_folds, outcome_model, seed),
            aipw_ate(Z, t, y, known, n_folds, outcome_model, seed)]
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------------- ranking metrics
def _sorted_arrays(pred, t, y):
    order = np.argsort(-np.asarray(pred, dtype=float), kind="stable")
    return np.asarray(t, dtype=float)[order], np.asarray(y, dtype=float)[order]


def _curves_weighted(t, y, w, idx):
    """Qini and gain (per 1,000 users) at cut points ``idx`` (counts of top users) for weights ``w``.

    ``w`` may be 2-D (bootstrap replicates x users); arrays are in ranking order.
    """
    nt = np.cumsum(w * t, axis=-1)
    nc = np.cumsum(w * (1 - t), axis=-1)
    yt = np.cumsum(w * t * y, axis=-1)
    yc = np.cumsum(w * (1 - t) * y, axis=-1)
    total = np.sum(w, axis=-1, keepdims=True)
    pos = np.maximum(idx - 1, 0)
    nt, nc, yt, yc = (a[..., pos] for a in (nt, nc, yt, yc))
    k = np.cumsum(w, axis=-1)[..., pos]
    ok = (nt > 0) & (nc > 0) & (idx > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = np.where(ok, yt - yc * nt / nc, 0.0) / total * 1000
        gain = np.where(ok, (yt / nt - yc / nc) * k, 0.0) / total * 1000
    return qini, gain


def _grid(n: int, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0, 1, n_points)
    return x, np.round(x * n).astype(int)


def _area(x, curve):
    return np.trapezoid(curve, x, axis=-1) if hasattr(np, "trapezoid") else np.trapz(curve, x, axis=-1)


def uplift_curves(pred, t, y, n_points: int = 101) -> pd.DataFrame:
    """Qini and uplift (gain) curves on a grid of shares targeted (see the module docstring)."""
    t = check_arms(t)
    ts, ys = _sorted_arrays(pred, t, y)
    x, idx = _grid(len(ts), n_points)
    qini, gain = _curves_weighted(ts, ys, np.ones(len(ts)), idx)
    return pd.DataFrame({"fraction": x, "qini": qini, "gain": gain, "qini_random": x * qini[-1],
                         "gain_random": x * gain[-1]})


def _uplift_at_k(t, y, w, k_frac):
    n = t.shape[-1]
    m = max(int(round(k_frac * n)), 1)
    tt, yy, ww = t[:m], y[:m], w[..., :m]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.sum(ww * tt * yy, -1) / np.sum(ww * tt, -1)
                - np.sum(ww * (1 - tt) * yy, -1) / np.sum(ww * (1 - tt), -1))


def _metric_values(ts, ys, w, x, idx, top_k):
    qini, gain = _curves_weighted(ts, ys, w, idx)
    out = {"qini_gain": _area(x, qini - x * qini[..., -1:]),
           "auuc": _area(x, gain),
           "auuc_lift": _area(x, gain) - gain[..., -1] / 2}
    for k in top_k:
        out[f"uplift_at_{int(round(100 * k))}"] = _uplift_at_k(ts, ys, w, k)
    return out


def ranking_metrics(pred, t, y, top_k=TOP_K, n_bootstrap: int = 200, seed: int = 0, n_points: int = 101) -> dict:
    """Qini gain, AUUC and uplift at k% with 95% bootstrap intervals (keys ``<metric>``, ``_low``, ``_high``)."""
    t = check_arms(t)
    ts, ys = _sorted_arrays(pred, t, y)
    x, idx = _grid(len(ts), n_points)
    point = _metric_values(ts, ys, np.ones(len(ts)), x, idx, top_k)
    out = {k: float(v) for k, v in point.items()}
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        w = np.zeros((n_bootstrap, len(ts)))
        for arm in (0, 1):
            pos = np.flatnonzero(ts == arm)
            counts = rng.multinomial(len(pos), np.full(len(pos), 1 / len(pos)), size=n_bootstrap)
            w[:, pos] = counts
        boot = _metric_values(ts, ys, w, x, idx, top_k)
        for k, v in boot.items():
            v = v[np.isfinite(v)]
            out[f"{k}_low"], out[f"{k}_high"] = (float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))) \
                if len(v) else (float("nan"), float("nan"))
    return out


def qini_scorer(estimator, X, target) -> float:
    """Qini gain of ``estimator.predict(X)`` on ``target`` (``baselines.uplift_target(treatment, y)``), a
    scikit-learn scorer: ``GridSearchCV(model, grid, scoring=qini_scorer).fit(X, uplift_target(t, y))``."""
    t, y = split_target(target)
    return ranking_metrics(estimator.predict(X), t, y, top_k=(), n_bootstrap=0)["qini_gain"]


# ----------------------------------------------------------------------------------------- calibration
def _group_effect(t, y):
    t, y = np.asarray(t, float), np.asarray(y, float)
    n1, n0 = int(t.sum()), int((1 - t).sum())
    if n1 < 2 or n0 < 2:
        return {"observed": np.nan, "observed_se": np.nan, "observed_low": np.nan, "observed_high": np.nan,
                "n_treated": n1, "n_control": n0}
    y1, y0 = y[t == 1], y[t == 0]
    d = y1.mean() - y0.mean()
    se = np.sqrt(y1.var(ddof=1) / n1 + y0.var(ddof=1) / n0)
    return {"observed": d, "observed_se": se, "observed_low": d - Z95 * se, "observed_high": d + Z95 * se,
            "n_treated": n1, "n_control": n0}


def calibration_table(pred, t, y, n_bins: int = 10) -> pd.DataFrame:
    """Per bin of predicted uplift (deciles by rank): mean prediction vs observed diff in means with 95% CI."""
    pred = np.asarray(pred, dtype=float)
    t = check_arms(t)
    n_bins = max(1, min(n_bins, len(pred)))
    ranks = pd.Series(pred).rank(method="first").to_numpy()
    bins = np.minimum(((ranks - 1) * n_bins / len(pred)).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = bins == b
        rows.append({"bin": b + 1, "n": int(sel.sum()), "mean_predicted": float(pred[sel].mean()),
                     **_group_effect(t[sel], np.asarray(y, float)[sel])})
    return pd.DataFrame(rows)


def segment_table(features: pd.DataFrame, pred, t, y, numeric, categorical, n_bins: int = 4) -> pd.DataFrame:
    """Uplift by level of each categorical and by quantile bin of each numeric: predicted vs observed."""
    pred = np.asarray(pred, dtype=float)
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    missing = [c for c in [*numeric, *categorical] if c not in features.columns]
    if missing:
        raise DataValidationError(f"segment feature(s) {missing} not in the data; available: {list(features.columns)}")
    rows = []
    for col in [*categorical, *numeric]:
        values = features[col]
        if col in categorical or values.nunique() <= n_bins:
            groups = values.astype(str)
        else:
            groups = pd.qcut(values.astype(float), n_bins, duplicates="drop")
            groups = pd.Series(pd.Categorical(groups.astype(str), categories=[str(c) for c in groups.cat.categories],
                                              ordered=True), index=values.index)
        levels = groups.cat.categories if hasattr(groups, "cat") else sorted(pd.unique(groups))
        for level in levels:
            sel = (groups == level).to_numpy()
            rows.append({"feature": col, "level": level, "n": int(sel.sum()),
                         "mean_predicted": float(pred[sel].mean()), **_group_effect(t[sel], y[sel])})
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------------------- truth
def truth_metrics(pred, true_uplift, lower=None, upper=None) -> dict:
    """sqrt-PEHE, ATE error (mean prediction - true mean uplift), and coverage of the given intervals."""
    pred, true = np.asarray(pred, float), np.asarray(true_uplift, float)
    out = {"sqrt_pehe": float(np.sqrt(np.mean((pred - true) ** 2))),
           "ate_error": float(pred.mean() - true.mean())}
    if lower is not None and upper is not None:
        lo, hi = np.asarray(lower, float), np.asarray(upper, float)
        out["coverage_90"] = float(np.mean((lo <= true) & (true <= hi)))
    return out
