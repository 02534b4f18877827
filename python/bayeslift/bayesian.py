"""``fit_bayesian``: the R package's causal model fitted from Python, without Snakemake.

The frame is checked and split as the pipeline's ``prepare`` step does it (``prepare_training_data``); the
config is config/config.yaml's (``CONFIG_DIR``: shipped in the package, so no checkout is needed), with the caller's ``columns``, ``model``, ``policy`` and ``split`` keys merged
over it and checked by the pipeline's own schema and rules; then one ``Rscript`` process (fit_bayesian.R beside
this file) fits the configured model, checks its convergence and exports the counterfactual tables, which are
read back through the boundary schema (boundary.yaml), as the surrogate step reads them.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from .arms import decode_treatment
from .boundary import SCHEMA_PATH, read_table
from .config_check import ConfigError, load_schema, validate_config
from .config_layers import CONFIG_DIR, resolve_config, rule_problems
from .data import DataValidationError, FeatureSpec, validate_training_frame
from .io import write_csv_atomic
from .prepare import prepare_training_data
from .surrogate.estimator import TABLES, CounterfactualTables

__all__ = ["BayesianFitError", "CONFIG_DIR", "fit_bayesian", "fit_settings"]
log = logging.getLogger("bayeslift")
R_SCRIPT = Path(__file__).with_name("fit_bayesian.R")
_CHECKOUT = Path(__file__).resolve().parents[2]
R_LIBRARY = _CHECKOUT / "R" / ".rlib"  # where `make install` puts the R package in a checkout
R_MISSING = 4  # the probe's exit status when R cannot load the bayeslift package
FRAME = "the frame (line n is row n - 2)"  # how messages name the caller's DataFrame
STOPPED = 3  # fit_bayesian.R's exit status when the convergence checks fail with on_fail "stop"
SECTIONS = ("columns", "model", "policy", "split", "counterfactuals")  # what a fit reads of the config


class BayesianFitError(RuntimeError):
    """The R fit failed: R's error, or convergence checks that failed with ``model.checks.on_fail: stop``."""


def fit_settings(columns: dict, model: dict | None = None, policy: dict | None = None, split: dict | None = None,
                 config: str | os.PathLike | None = None) -> dict:
    """The config sections a fit uses (``SECTIONS``): ``config`` (default
    config/config.yaml, which holds every default value) with the given keys merged over it, checked against
    the pipeline's schema and the rules between keys (:class:`ConfigError` naming each key)."""
    defaults = Path(config) if config is not None else CONFIG_DIR / "config.yaml"
    schema = defaults.with_name("config.schema.yaml")
    if not defaults.exists() or not schema.exists():
        raise ConfigError(f"fit_bayesian reads its defaults from config.yaml and config.schema.yaml (installed with "
                          f"the package as bayeslift/config, or a checkout's config/); not found beside {defaults}: "
                          f"pass config= a bayeslift config.yaml with its schema beside it")
    given = {"columns": columns, "model": model, "policy": policy, "split": split}
    for name, value in given.items():
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"fit_bayesian: {name} must be a dict of config keys ({name}: ...), got "
                              f"{type(value).__name__}")
    overrides = {name: copy.deepcopy(value) for name, value in given.items() if value}
    resolved = resolve_config(defaults, overrides=overrides)
    for note in resolved.notes:
        log.warning("%s", note)
    validate_config(resolved, load_schema(schema), set_default=False)
    # data.train/score name files for the pipeline; here the frame is the data
    problems = [p for p in rule_problems(resolved) if not p.startswith("config: data.")]
    if problems:
        raise ConfigError("\n".join(problems))
    return {name: resolved[name] for name in SECTIONS}


def fit_bayesian(frame: pd.DataFrame, columns: dict, model: dict | None = None, policy: dict | None = None,
                 split: dict | None = None, config: str | os.PathLike | None = None,
                 cores: int | None = None) -> CounterfactualTables:
    """Fit the Bayesian causal model to a campaign history and return its counterfactual tables.

    ``frame``: one row per user with the id, treatment (0/1), outcome and feature columns that ``columns`` (the
    config's ``columns`` section) names; it is checked as ``prepare`` checks a history (DataValidationError
    naming the column and the line, line n being row n - 2) and split into train and holdout users by
    ``split.holdout_fraction`` and ``split.seed``. ``model``, ``policy``, ``split``: config keys merged over
    config/config.yaml's (``fit_settings``), e.g. ``model={"inference": {"iter": 500}}``. The model is fitted
    on the train users (every user with ``split.refit_all``) by ``cores`` chains at once (default: the
    chains, at most the CPUs) and its convergence checked by ``model.checks``; failed checks raise
    :class:`BayesianFitError` under ``on_fail: stop`` (longer chains are not tried, as the pipeline's
    ``extend_minutes`` does) and are logged under ``warn``.

    Returns :class:`CounterfactualTables` for every user (``split`` says which are held out), with the
    sample ATE, the convergence diagnostics and the settings used; ``UpliftSurrogate().fit(tables)`` learns it.
    """
    settings = fit_settings(columns, model, policy, split, config)
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"fit_bayesian: frame must be a pandas DataFrame, got {type(frame).__name__}")
    spec = FeatureSpec.from_columns(settings["columns"])
    users = validate_training_frame(frame, spec, FRAME)  # the caller's own rows named in any message
    if spec.control is not None:  # prepare below reads the history's level names, not the arm index
        users[spec.treatment] = decode_treatment(users[spec.treatment], spec)
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise BayesianFitError("fit_bayesian: Rscript not found on PATH; install R and the bayeslift R package "
                               "(make install)")
    env = _r_environment()
    _check_r_package(rscript, env)
    with tempfile.TemporaryDirectory(prefix="bayeslift-fit-") as tmp:
        work = Path(tmp)
        history = work / "history.csv"
        write_csv_atomic(users, history)
        try:
            spec = prepare_training_data(history, settings["columns"], settings["split"]["holdout_fraction"],
                                         settings["split"]["seed"], work / "train.csv", work / "holdout.csv",
                                         work / "spec.json")
        except DataValidationError as exc:
            raise DataValidationError(str(exc).replace(str(history), FRAME)) from None
        diagnostics = _run_r(rscript, env, work, settings, cores)
        paths = {key: work / f"{table}.csv" for key, table in TABLES.items()}
        tables = CounterfactualTables(*(read_table(paths[key], table, spec) for key, table in TABLES.items()),
                                      spec, ate=json.loads((work / "ate.json").read_text()), diagnostics=diagnostics,
                                      config=settings)
    tables.check()
    for arm, ate in (tables.ate["arms"].items() if "arms" in tables.ate else [("", tables.ate)]):
        log.info("fit_bayesian: ATE%s %.4g (90%% interval %.4g to %.4g) over %d users", f" of {arm}" if arm else "",
                 ate["ate_mean"], ate["ate_q05"], ate["ate_q95"], tables.ate["n_users"])
    return tables


def _r_environment() -> dict:
    """This process's environment, with a checkout's R/.rlib (where `make install` puts the package) in R_LIBS."""
    env = dict(os.environ)
    if R_LIBRARY.is_dir():
        env["R_LIBS"] = os.pathsep.join(p for p in (str(R_LIBRARY), env.get("R_LIBS")) if p)
    return env


def _check_r_package(rscript: str, env: dict) -> None:
    """BayesianFitError, before any work, unless Rscript loads the R package bayeslift (R's reason and the
    libraries it searched in the message)."""
    # R's reason on stderr, the libraries it searched on stdout
    probe = ('tryCatch(invisible(loadNamespace("bayeslift")), error = function(e) {message(conditionMessage(e)); '
             f'cat(.libPaths(), sep = "\\n"); quit(save = "no", status = {R_MISSING})}})')
    done = subprocess.run([rscript, "--vanilla", "-e", probe], env=env, capture_output=True, text=True)
    if done.returncode == R_MISSING:
        reason = " ".join(done.stderr.split()) or "(no message)"
        searched = ", ".join(done.stdout.splitlines()) or "none"
        raise BayesianFitError(
            f"fit_bayesian needs the R package bayeslift (R/bayeslift in the bayeslift repository), which R cannot "
            f"load: {reason}; libraries searched: {searched}. Install it with `R CMD INSTALL R/bayeslift` (or "
            "`make install` in a checkout, into R/.rlib) and put the library that holds it in R_LIBS")
    if done.returncode != 0:
        raise BayesianFitError(f"fit_bayesian: {rscript} failed (exit status {done.returncode}): "
                               f"{(done.stdout + done.stderr).strip()[-2000:]}")


def _run_r(rscript: str, env: dict, work: Path, settings: dict, cores: int | None) -> dict:
    """Run fit_bayesian.R in ``work``; return its diagnostics (BayesianFitError on R's failure)."""
    model = settings["model"]
    chains = model["inference"]["chains"] if model["inference"]["algorithm"] == "sampling" else 1
    run = {"spec": str(work / "spec.json"), "train": str(work / "train.csv"), "holdout": str(work / "holdout.csv"),
           "schema": str(SCHEMA_PATH), "out_dir": str(work), "model": model,
           "policy": {k: settings["policy"][k] for k in ("margin", "cost_per_contact", "arms")},
           "chunk_size": settings["counterfactuals"]["chunk_size"], "refit_all": settings["split"]["refit_all"],
           "cores": int(cores) if cores else max(1, min(chains, os.cpu_count() or 1))}
    (work / "settings.json").write_text(json.dumps(run))
    log.info("fit_bayesian: %s %s (%s back-end, %d chain(s) of %s iterations)", rscript, R_SCRIPT.name,
             model["backend"], chains, model["inference"]["iter"])
    done = subprocess.run([rscript, "--vanilla", str(R_SCRIPT), str(work / "settings.json")], env=env, cwd=work,
                          capture_output=True, text=True)
    output = (done.stdout + done.stderr).strip()
    for line in output.splitlines():
        log.debug("R: %s", line)
    diagnostics_path = work / "diagnostics.json"
    diagnostics = json.loads(diagnostics_path.read_text()) if diagnostics_path.exists() else {}
    if done.returncode == STOPPED:
        raise BayesianFitError("fit_bayesian: MCMC diagnostics failed: " + "; ".join(diagnostics.get("problems", []))
                               + " (raise model.inference.iter or model.inference.adapt_delta, or set "
                               "model.checks.on_fail: warn)")
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-15:])
        raise BayesianFitError(f"fit_bayesian: {R_SCRIPT.name} failed (exit status {done.returncode}):\n{tail}")
    for problem in diagnostics.get("problems", []):
        log.warning("fit_bayesian: diagnostics failed but model.checks.on_fail is 'warn': %s", problem)
    return diagnostics

