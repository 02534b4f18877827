"""PyTorch surrogate of the Bayesian model: fit, save/load, and the pipeline step that trains it."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

import torch

from ..boundary import read_table
from ..data import FeatureSpec
from .checkpoint import load_surrogate, save_surrogate, targeting_facts
from .fidelity import SurrogateFidelityError, fidelity
from .model import FeatureEncoder, SimpleNN, SurrogateConfig
from .predict import Surrogate
from .train import build_targets, fit_to_floor

__all__ = ["SimpleNN", "Surrogate", "SurrogateConfig", "SurrogateFidelityError", "load_surrogate",
           "save_surrogate", "train_surrogate_model"]
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
    train_data = read_table(train_data_csv, "surrogate_train_data", spec)
    labels = read_table(labels_csv, "surrogate_labels", spec)
    uplift = read_table(uplift_csv, "uplift_summary", spec)
    if len(labels) != len(train_data) or not (
        labels[spec.id].astype(str).equals(train_data[spec.id].astype(str))
        and labels["received_campaign"].equals(train_data["received_campaign"])
    ):
        raise ValueError(f"{labels_csv}: rows do not line up with {train_data_csv} (id and received_campaign)")

    is_train = train_data["split"] == "train"
    encoder = FeatureEncoder.fit(spec, train_data[is_train & (train_data["received_campaign"] == 1)])
    fit_targets = build_targets(train_data[is_train], labels, uplift, spec, encoder)
    holdout_targets = build_targets(train_data[~is_train], labels, uplift, spec, encoder)
    run, holdout, tries = fit_to_floor(fit_targets, holdout_targets, config)
    scores = {"train": fidelity(run.surrogate, fit_targets), "holdout": holdout}
    log.info("surrogate fidelity: %s", json.dumps(scores))
    return save_surrogate(out_dir, run.surrogate, encoder, training_config=asdict(config), fidelity=scores,
                          training={**run.facts(), "widths_tried": tries},
                          targeting=targeting_facts(run.surrogate, holdout_targets.x, "holdout"))
