"""bayeslift: per-customer spend uplift from a Bayesian causal model and a fast PyTorch surrogate.

The public API (README, "Python API"), from a DataFrame to scores without Snakemake::

    tables = bayeslift.fit_bayesian(history, columns={...})      # the R model's counterfactual tables
    surrogate = bayeslift.UpliftSurrogate().fit(tables)           # a scikit-learn estimator
    surrogate.predict(users); surrogate.save("model")             # uplift per user; the model folder

Names are imported on first use, so ``import bayeslift`` (the CLI, the HTTP service) loads neither torch nor R.
"""
import importlib
import logging

__version__ = "0.1.0"

logging.getLogger("bayeslift").addHandler(logging.NullHandler())

#: public name -> the module that defines it
_PUBLIC = {
    "fit_bayesian": "bayeslift.bayesian",
    "fit_settings": "bayeslift.bayesian",
    "BayesianFitError": "bayeslift.bayesian",
    "UpliftSurrogate": "bayeslift.surrogate.estimator",
    "CounterfactualTables": "bayeslift.surrogate.estimator",
    "SurrogateFidelityError": "bayeslift.surrogate.fidelity",
    "UpliftScorer": "bayeslift.scoring",
    "PolicyConfig": "bayeslift.policy",
    "decide": "bayeslift.policy",
    "DataValidationError": "bayeslift.data",
    "ModelArtifactError": "bayeslift.manifest",
    "ConfigError": "bayeslift.config_check",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayeslift' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_PUBLIC})
