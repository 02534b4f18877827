"""PyTorch surrogate of the Bayesian model: the estimator (estimator.py), save/load, and the pipeline step that
trains it."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

import torch

from ..boundary import read_table
from ..data import FeatureSpec
from .checkpoint import load_surrogate, save_surrogate
from .estimator import TABLES, CounterfactualTables, UpliftSurrogate
from .fidelity import SurrogateFidelityError
from .model import SimpleNN, SurrogateConfig
from .predict import Surrogate

__all__ = ["CounterfactualTables", "SimpleNN", "Surrogate", "SurrogateConfig", "SurrogateFidelityError",
           "UpliftSurrogate", "load_surrogate", "save_surrogate", "train_surrogate_model"]
log = logging.getLogger("bayeslift")


def train_surrogate_model(train_data_csv, labels_csv, uplift_csv, spec_json, out_dir, config: SurrogateConfig,
                          threads: int = 1) -> dict:
    """The surrogate_model step: train on R's 'train' users, measure fidelity on its 'holdout' users.

    Raises SurrogateFidelityError (writing nothing) when the holdout uplift misses the floor (`check_fidelity`)
    at every width ``fit_to_floor`` tries. Returns the manifest; its ``training`` entry says what training did,
    its ``targeting`` entry holds the holdout users' predicted-uplift quantiles (the top_k rule's threshold).
    """
    torch.set_num_threads(max(1, threads))
    spec = FeatureSpec.from_json(spec_json)
    paths = {"train_data": train_data_csv, "labels": labels_csv, "uplift": uplift_csv}
    tables = CounterfactualTables(*(read_table(paths[key], table, spec) for key, table in TABLES.items()), spec,
                                  sources=paths)
    estimator = UpliftSurrogate(**asdict(config), n_jobs=threads).fit(tables)
    log.info("surrogate fidelity: %s", json.dumps(estimator.fidelity_))
    return estimator.save(out_dir)
