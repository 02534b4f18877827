"""Bayesian causal forests (stochtree's BCF) for the R back-end ``bcf`` (R/bayeslift/R/backend_bcf.R).

One model part is one BCF: a probit BCF on a 0/1 outcome (the purchase part of spend, or a binary outcome) or
a Gaussian BCF (log spend of buyers, or a Gaussian outcome). Its latent mean is ``mu(x) + z tau(x)``, ``mu``
the prognostic forest, ``tau`` the treatment-effect forest plus stochtree's treatment intercept ``tau_0``.
R composes the parts' draws into expected outcomes (P(buy) exp(mu + sigma^2 / 2) for spend), as it does for
its Stan back-ends. A fitted part is kept as text R stores inside its fit object (the model file is then
self-contained): a metadata line, then the prognostic and treatment forests as stochtree's C++ JSON. It is
reloaded in C++ only: ``BCFModel.from_json`` also parses the whole text in Python, about 60% of a reload that
every prediction pays. Chains are independent samplers with their own seeds; their draws are concatenated.

The CLI (``python -m bayeslift.bcf fit|predict``) reads and writes plain files for R: a features CSV in
(design columns, plus ``.t``, ``.y`` and ``.propensity`` where needed), raw float64 out.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

LOG = logging.getLogger("bayeslift")

KINDS = ("probit", "gaussian")
#: columns of a part's CSV that are not design columns
TREATMENT, OUTCOME, PROPENSITY = ".t", ".y", ".propensity"
#: per-draw quantities R's diagnostics monitor, in this order (sigma2 for Gaussian parts only)
MONITORED = ("ate", "mean_prognostic", "sigma2")


@dataclass(frozen=True)
class BCFSettings:
    """How one part is sampled: ``num_gfr`` grow-from-root sweeps warm-start the MCMC (stochtree's
    recommendation), then ``num_burnin`` sweeps are discarded and ``num_mcmc`` draws kept, one every
    ``keep_every`` sweeps. Tree counts are stochtree's defaults. ``propensity``: the training CSV carries an
    estimated propensity, put in the prognostic forest as BCF prescribes for observational data; without it
    (a randomized experiment: the propensity is a constant) no propensity covariate is used."""

    kind: str
    seed: int = 1
    num_gfr: int = 10
    num_burnin: int = 500
    num_mcmc: int = 250
    keep_every: int = 6
    propensity: bool = False
    num_trees_mu: int = 250
    num_trees_tau: int = 100

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"BCFSettings: kind must be one of {KINDS}, not {self.kind!r}")
        for key in ("num_gfr", "num_mcmc", "keep_every", "num_trees_mu", "num_trees_tau"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"BCFSettings: {key} must be >= 1, got {getattr(self, key)}")
        if int(self.num_burnin) < 0:
            raise ValueError(f"BCFSettings: num_burnin must be >= 0, got {self.num_burnin}")


def _stochtree():
    try:
        from stochtree import BCFModel, OutcomeModel
    except ImportError as exc:  # a clear message for R's stop()
        raise ImportError(f"backend bcf needs the Python package stochtree (pip install -r requirements.txt): {exc}") from exc
    return BCFModel, OutcomeModel


def fit_bcf(X, t, y, settings: BCFSettings, propensity=None):
    """Sample one BCF part; returns stochtree's fitted ``BCFModel``. ``X``: users x features (float), ``t``: 0/1,
    ``y``: the outcome (0/1 for probit), ``propensity``: per user, used only with ``settings.propensity``."""
    BCFModel, OutcomeModel = _stochtree()
    X, t, y = np.asarray(X, dtype=float), np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    if len(X) != len(t) or len(X) != len(y):
        raise ValueError(f"fit_bcf: X has {len(X)} rows, t {len(t)}, y {len(y)}")
    if settings.kind == "probit" and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("fit_bcf: a probit part's outcome must be 0/1")
    if settings.propensity and propensity is None:
        raise ValueError("fit_bcf: settings.propensity is set but no propensity was given")
    general = {"random_seed": int(settings.seed), "num_threads": 1, "keep_every": int(settings.keep_every),
               "propensity_covariate": "prognostic" if settings.propensity else "none"}
    if settings.kind == "probit":
        general["outcome_model"] = OutcomeModel(outcome="binary", link="probit")
    model = BCFModel()
    started = time.perf_counter()
    model.sample(X_train=X, Z_train=t, y_train=y,
                 propensity_train=np.asarray(propensity, dtype=float) if settings.propensity else None,
                 num_gfr=int(settings.num_gfr), num_burnin=int(settings.num_burnin), num_mcmc=int(settings.num_mcmc),
                 general_params=general, prognostic_forest_params={"num_trees": int(settings.num_trees_mu)},
                 treatment_effect_forest_params={"num_trees": int(settings.num_trees_tau)})
    LOG.info("BCF %s part on %d users: %d draws in %.1f s", settings.kind, len(y), settings.num_mcmc,
             time.perf_counter() - started)
    return model


def part_text(model) -> str:
    """The fitted part as text: its metadata as one JSON line, then the mu and tau forests' JSON lines."""
    meta = {"y_std": float(model.y_std), "y_bar": float(model.y_bar), "propensity": model.propensity_covariate != "none",
            "num_trees_mu": int(model.forest_container_mu.num_trees), "num_trees_tau": int(model.forest_container_tau.num_trees),
            "tau_0": (np.asarray(model.tau_0_samples)[0].tolist() if getattr(model, "sample_tau_0", False) else None)}
    if model.adaptive_coding or model.has_rfx or model.include_variance_forest:
        raise ValueError("part_text: adaptive coding, random effects and variance forests are not part of backend bcf")
    forests = [model.forest_container_mu.dump_json_string(), model.forest_container_tau.dump_json_string()]
    if any("\n" in f for f in forests):
        raise ValueError("part_text: stochtree's forest JSON spans lines; the one-forest-per-line format cannot hold it")
    return "\n".join([json.dumps(meta), *forests])


def latent_draws(text, X, propensity=None):
    """``(mu, tau)``: users x draws matrices of the prognostic and treatment-effect functions at ``X`` of a part's
    text (``part_text``), computed as ``BCFModel.predict`` does: the latent mean in arm z is ``mu + z tau``."""
    from stochtree import Dataset, ForestContainer
    meta_line, mu_json, tau_json = text.split("\n", 2)
    meta = json.loads(meta_line)
    X = np.asarray(X, dtype=float)
    if meta["propensity"]:
        if propensity is None:
            raise ValueError("latent_draws: the part was fitted with a propensity covariate; give the users' propensity")
        X = np.c_[X, np.asarray(propensity, dtype=float)]
    data = Dataset()
    data.add_covariates(X)
    data.add_basis(np.zeros((len(X), 1)))
    mu_forest = ForestContainer(meta["num_trees_mu"], 1, True, False)
    mu_forest.load_from_json_string(mu_json)
    tau_forest = ForestContainer(meta["num_trees_tau"], 1, False, False)
    tau_forest.load_from_json_string(tau_json)
    mu = mu_forest.forest_container_cpp.Predict(data.dataset_cpp) * meta["y_std"] + meta["y_bar"]
    tau = np.asarray(tau_forest.forest_container_cpp.PredictRaw(data.dataset_cpp)).reshape(len(X), -1) * meta["y_std"]
    if meta["tau_0"] is not None:
        tau = tau + np.asarray(meta["tau_0"])[None, :]
    return np.asarray(mu).reshape(len(X), -1), tau


def monitored_draws(text, X, kind, sigma2=None, propensity=None) -> pd.DataFrame:
    """Per draw (rows): the part's sample average treatment effect over ``X`` on its outcome's scale (probability
    for probit, mean for Gaussian), the mean prognostic function and, for Gaussian parts, ``sigma2``."""
    mu, tau = latent_draws(text, X, propensity)
    if kind == "probit":
        from scipy.stats import norm
        ate = (norm.cdf(mu + tau) - norm.cdf(mu)).mean(axis=0)
    else:
        ate = tau.mean(axis=0)
    out = {"ate": ate, "mean_prognostic": mu.mean(axis=0)}
    if kind == "gaussian":
        out["sigma2"] = np.asarray(sigma2, dtype=float)
    return pd.DataFrame(out)


def read_part_csv(path):
    """``(X, t, y, propensity)`` of a part's CSV; ``t``, ``y`` and ``propensity`` are None where absent."""
    frame = pd.read_csv(path)
    design = [c for c in frame.columns if c not in (TREATMENT, OUTCOME, PROPENSITY)]
    col = (lambda c: frame[c].to_numpy(dtype=float) if c in frame else None)
    return frame[design].to_numpy(dtype=float), col(TREATMENT), col(OUTCOME), col(PROPENSITY)


def _write_f64(array, path):
    """Raw little-endian float64 in C order: a users x draws array reads in R as a draws x users matrix."""
    np.ascontiguousarray(array, dtype="<f8").tofile(path)


def cli_fit(data, settings_path, out_dir):
    """Fit one part: ``out_dir``/model.json (stochtree's JSON) and monitored.csv (``monitored_draws``)."""
    settings = BCFSettings(**json.loads(Path(settings_path).read_text()))
    X, t, y, propensity = read_part_csv(data)
    model = fit_bcf(X, t, y, settings, propensity)
    text = part_text(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").write_text(text)
    sigma2 = model.global_var_samples if settings.kind == "gaussian" else None
    monitored_draws(text, X, settings.kind, sigma2, propensity if settings.propensity else None).to_csv(
        out / "monitored.csv", index=False)
    (out / "settings.json").write_text(json.dumps(asdict(settings)))


def cli_predict(data, out_dir, models):
    """Predict one part at the users of ``data``: ``out_dir``/mu.f64 and tau.f64 (users x draws, every chain)."""
    X, _, _, propensity = read_part_csv(data)
    draws = [latent_draws(Path(m).read_text(), X, propensity) for m in models]  # chain after chain
    mu, tau = (np.concatenate([d[k] for d in draws], axis=1) for k in (0, 1))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_f64(mu, out / "mu.f64")
    _write_f64(tau, out / "tau.f64")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bayeslift.bcf", description="stochtree BCF parts for R's backend bcf")
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="sample one part")
    f.add_argument("data"), f.add_argument("settings"), f.add_argument("out_dir")
    p = sub.add_parser("predict", help="mu and tau draws of one part at new users")
    p.add_argument("data"), p.add_argument("out_dir"), p.add_argument("models", nargs="+")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.command == "fit":
        cli_fit(args.data, args.settings, args.out_dir)
    else:
        cli_predict(args.data, args.out_dir, args.models)


if __name__ == "__main__":
    main()
