"""The non-Bayesian-hurdle peers of bench/bench_accuracy.py and the metrics every model is scored by.

Peers: T-/S-learner LightGBM and the linear interaction model (``bayeslift.baselines``); causalml's
X-learner and DR-learner; stochtree's Bayesian causal forest (BCF), on spend directly (``bcf_stochtree``) and
as a two-part model (``bcf_hurdle_stochtree``: a probit BCF on buying and a BCF on the log basket of buyers,
combined per posterior draw into expected spend). causalml and stochtree are not dependencies: each is
installed for the benchmark only into a throwaway folder (``--causalml-path``, ``--stochtree-path``), which
is put at the end of ``sys.path`` so the venv's own numpy and pandas stay first.
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from sklearn.exceptions import ConvergenceWarning

from bayeslift.baselines import make_baseline
from bayeslift.features import FeatureEncoder

BASELINES = ("t_lightgbm", "s_lightgbm", "linear_interaction")
#: stochtree BCF variants (``--bcf``); the posterior draws per fit are ``--bcf-draws``.
BCF_VARIANTS = ("direct", "hurdle")
#: stochtree's recommended warm start: grow-from-root sweeps before the retained MCMC draws.
BCF_GFR = 10


def metrics(pred, true, lower=None, upper=None, ate_lo=None, ate_hi=None):
    """sqrt-PEHE, ATE error, coverage of per-user intervals and whether the ATE interval covers the truth."""
    out = {"sqrt_pehe": float(np.sqrt(np.mean((pred - true) ** 2))), "ate_error": float(np.mean(pred) - np.mean(true))}
    out["coverage_90"] = float(np.mean((lower <= true) & (true <= upper))) if lower is not None else None
    out["ate_covered"] = bool(ate_lo <= true.mean() <= ate_hi) if ate_lo is not None else None
    return out


def _optional_path(path):
    if path and path not in sys.path:
        sys.path.append(path)


def causalml_learners(path):
    """name -> factory of causalml's X- and DR-learner (LightGBM inside), or {} when causalml does not import."""
    _optional_path(path)
    try:
        from causalml.inference.meta import BaseDRRegressor, BaseXRegressor
        from lightgbm import LGBMRegressor
    except Exception as exc:  # noqa: BLE001 - optional
        print(f"causalml unavailable ({type(exc).__name__}: {exc}); X-/DR-learner skipped")
        return {}

    def lgbm():
        return LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=20, verbose=-1,
                             n_jobs=1, random_state=0)
    return {"x_learner_causalml": lambda: BaseXRegressor(learner=lgbm()),
            "dr_learner_causalml": lambda: BaseDRRegressor(learner=lgbm())}


def stochtree_bcf(path):
    """stochtree's ``(BCFModel, OutcomeModel)``, or None when stochtree does not import."""
    _optional_path(path)
    try:
        from stochtree import BCFModel, OutcomeModel
    except Exception as exc:  # noqa: BLE001 - optional
        print(f"stochtree unavailable ({type(exc).__name__}: {exc}); BCF skipped")
        return None
    return BCFModel, OutcomeModel


def _bcf_fit(bcf, X, t, y, draws, seed, **general):
    BCFModel, _ = bcf
    model = BCFModel()
    model.sample(X_train=X, Z_train=t, y_train=y, num_gfr=BCF_GFR, num_burnin=0, num_mcmc=draws,
                 general_params={"random_seed": seed, "num_threads": 1, **general})
    return model


def bcf_uplift_draws(bcf, variant, X, t, y, U, draws, seed=1):
    """Posterior draws of the uplift on spend of the users ``U`` (a users x draws matrix).

    ``direct``: BCF on spend, the uplift is its treatment effect function. ``hurdle``: a probit BCF on
    buying and a BCF on the log basket of buyers; per draw, uplift = P(buy|u,1) exp(m(u,1) + s2/2) -
    P(buy|u,0) exp(m(u,0) + s2/2) (the two posteriors are independent, so draws are paired by index).
    The propensity is estimated by stochtree itself (its default: a BART of treatment on X).
    """
    ones, zeros = np.ones(len(U)), np.zeros(len(U))
    if variant == "direct":
        return _bcf_fit(bcf, X, t, y, draws, seed).predict(X=U, Z=ones, terms="cate")
    _, OutcomeModel = bcf
    bought = (y > 0).astype(float)
    buy = _bcf_fit(bcf, X, t, bought, draws, seed, outcome_model=OutcomeModel(outcome="binary", link="probit"))
    p1 = buy.predict(X=U, Z=ones, terms="y_hat", scale="probability")
    p0 = buy.predict(X=U, Z=zeros, terms="y_hat", scale="probability")
    b = bought == 1
    basket = _bcf_fit(bcf, X[b], t[b], np.log(y[b]), draws, seed)
    s2 = basket.global_var_samples[None, :] / 2.0
    m1 = basket.predict(X=U, Z=ones, terms="y_hat")
    m0 = basket.predict(X=U, Z=zeros, terms="y_hat")
    return p1 * np.exp(m1 + s2) - p0 * np.exp(m0 + s2)


def peer_rows(spec, train, users, true, learners, bcf=None, bcf_variants=BCF_VARIANTS, bcf_draws=500, seed=1):
    """One row of metrics and fit time per peer, fitted on ``train`` and scored on ``users``."""
    X, t, y = train[spec.features], train[spec.treatment].to_numpy(), train[spec.outcome].to_numpy(dtype=float)
    rows = []
    for base in BASELINES:
        t0 = time.perf_counter()
        m = make_baseline(base, n_jobs=1, categorical=spec.categorical, log1p=spec.log1p).fit(X, t, y)
        sec = time.perf_counter() - t0
        rows.append({"model": base, **metrics(m.predict(users[spec.features]), true), "fit_s": sec})
    # the one encoder the baselines and the surrogate use (an unseen level in users is refused, not zeroed)
    encoder = FeatureEncoder.fit(spec, X)
    Xn, Un = encoder.transform(X, dtype=np.float64), encoder.transform(users, dtype=np.float64, source="users")
    for lname, make in learners.items():
        t0 = time.perf_counter()
        m = make()
        with warnings.catch_warnings(record=True) as caught:  # causalml's propensity model (saga) says it per fold
            warnings.simplefilter("always", ConvergenceWarning)
            m.fit(X=Xn, treatment=t, y=y)
        sec = time.perf_counter() - t0
        unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        if unconverged:
            print(f"  {lname}: {unconverged} of its sklearn fits stopped at max_iter (ConvergenceWarning)", flush=True)
        for w in caught:
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        rows.append({"model": lname, **metrics(np.asarray(m.predict(Un)).ravel(), true), "fit_s": sec})
    for variant in bcf_variants if bcf is not None else ():
        t0 = time.perf_counter()
        d = bcf_uplift_draws(bcf, variant, Xn, t.astype(float), y, Un, bcf_draws, seed)
        sec = time.perf_counter() - t0
        ate = d.mean(axis=0)
        name = "bcf_stochtree" if variant == "direct" else f"bcf_{variant}_stochtree"
        rows.append({"model": name, **metrics(d.mean(axis=1), true, np.quantile(d, 0.05, axis=1),
                                              np.quantile(d, 0.95, axis=1), *np.quantile(ate, [0.05, 0.95])),
                     "fit_s": sec})
    return rows
