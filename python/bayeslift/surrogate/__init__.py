"""PyTorch surrogate of the Bayesian model: the estimator (estimator.py), save/load, and the pipeline step that
trains it.

Names are imported on first use: loading a model folder to score (``load_surrogate``) imports neither torch nor
scikit-learn; training and the estimator do.
"""
from __future__ import annotations

import importlib
import json
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import SurrogateConfig

#: public name -> the module of this package that defines it
_PUBLIC = {
    "CounterfactualTables": "estimator",
    "UpliftSurrogate": "estimator",
    "SimpleNN": "model",
    "SurrogateConfig": "model",
    "Surrogate": "predict",
    "SurrogateFidelityError": "fidelity",
    "load_surrogate": "checkpoint",
    "save_surrogate": "checkpoint",
}
__all__ = sorted([*_PUBLIC, "train_surrogate_model"])
log = logging.getLogger("bayeslift")


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_PUBLIC})


def train_surrogate_model(train_data_csv, labels_csv, uplift_csv, spec_json, out_dir,
                          config: SurrogateConfig, threads: int = 1) -> dict:
    """The surrogate_model step: train on R's 'train' users, measure fidelity on its 'holdout' users.

    Raises SurrogateFidelityError (writing nothing) when the holdout uplift misses the floor (`check_fidelity`)
    at every width ``fit_to_floor`` tries. Returns the manifest; its ``training`` entry says what training did,
    its ``targeting`` entry holds the holdout users' predicted-uplift quantiles (the top_k rule's threshold).
    """
    import torch

    from ..boundary import read_table
    from ..data import FeatureSpec
    from .estimator import TABLES, CounterfactualTables, UpliftSurrogate

    spec = FeatureSpec.from_json(spec_json)
    torch.set_num_threads(max(1, threads))
    paths = {"train_data": train_data_csv, "labels": labels_csv, "uplift": uplift_csv}
    tables = CounterfactualTables(*(read_table(paths[key], table, spec) for key, table in TABLES.items()), spec,
                                  sources=paths)
    estimator = UpliftSurrogate(**asdict(config), n_jobs=threads).fit(tables)
    log.info("surrogate fidelity: %s", json.dumps(estimator.fidelity_))
    return estimator.save(out_dir)
