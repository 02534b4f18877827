"""The prepare step: check a campaign history and split it into train and holdout, stratified by arm."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .arms import arm_levels
from .data import DataValidationError, FeatureSpec, read_csv, validate_training_frame
from .io import write_csv_atomic

log = logging.getLogger("bayeslift")


def stratified_split(treatment: np.ndarray, holdout_fraction: float, seed: int, names=None) -> np.ndarray:
    """Boolean mask of holdout rows, drawing the same fraction from each arm: 0 and 1, or with ``names`` (each
    arm index's level, control first: ``arms.arm_levels``) every arm 0..K, each named by its level."""
    rng = np.random.default_rng(seed)
    holdout = np.zeros(len(treatment), dtype=bool)
    for arm in range(len(names) if names else 2):  # arm by arm in index order: 0/1 draws as it always did
        idx = np.flatnonzero(treatment == arm)
        n_hold = int(round(holdout_fraction * len(idx)))
        if n_hold < 1 or n_hold >= len(idx):
            raise DataValidationError(f"{arm_label(arm, names)} has {len(idx)} users: too few to hold out a fraction "
                                      f"of {holdout_fraction} and still train")
        holdout[rng.choice(idx, size=n_hold, replace=False)] = True
    return holdout


def arm_label(arm: int, names=None) -> str:
    """'arm 1', or with level ``names`` 'arm 'email_a'' (the level a user wrote in the treatment column)."""
    return f"arm {arm}" if not names else f"arm {names[arm]!r}"


def prepare_training_data(
    train_csv: str | Path,
    columns: dict,
    holdout_fraction: float,
    seed: int,
    out_train: str | Path,
    out_holdout: str | Path,
    out_spec: str | Path,
) -> FeatureSpec:
    """Validate ``train_csv`` and write the train split, the holdout split and the feature spec.

    Nothing is written unless every check passes (all of them run first); each file is written atomically.
    """
    spec = FeatureSpec.from_columns(columns)
    frame = validate_training_frame(read_csv(train_csv, **history_reading(spec)), spec, str(train_csv))
    names = arm_levels(spec)
    holdout = stratified_split(frame[spec.treatment].to_numpy(), holdout_fraction, seed, names)
    train_part, holdout_part = frame[~holdout], frame[holdout]
    for part, name in ((train_part, "train"), (holdout_part, "holdout")):
        buyers = part[spec.outcome].gt(0).groupby(part[spec.treatment]).sum()
        if buyers.min() < 2:
            raise DataValidationError(
                f"{train_csv}: the {name} split has fewer than 2 buyers (outcome > 0) in "
                f"{arm_label(int(buyers.idxmin()), names)} ({int(buyers.min())}); the hurdle model needs buyers in "
                f"{'every arm' if names and len(names) > 2 else 'both arms'}"
            )
    write_csv_atomic(train_part, out_train)
    write_csv_atomic(holdout_part, out_holdout)
    spec.to_json(out_spec)
    log.info("prepared %d train and %d holdout users from %s", len(train_part), len(holdout_part), train_csv)
    return spec


def text_reading(spec: FeatureSpec) -> dict:
    """``read_csv`` arguments for a campaign history or a prepared split: categories as strings, and in them
    and in the ids only an empty field is missing (a category spelt "NA" stays "NA")."""
    return {"text_columns": [spec.id, *spec.categorical], "dtype": {c: str for c in spec.categorical}}


def history_reading(spec: FeatureSpec) -> dict:
    """``text_reading`` for the history ``prepare`` reads: with ``columns.control`` the treatment column holds
    level names, read as text too ("none" and "NA" are levels; the prepared splits hold the arm index)."""
    reading = text_reading(spec)
    if spec.control is not None:
        reading["text_columns"].append(spec.treatment)
        reading["dtype"][spec.treatment] = str
    return reading


def read_prepared(path: str | Path, spec: FeatureSpec) -> pd.DataFrame:
    """Read a prepared split with categorical features as strings, as ``prepare`` read them."""
    return read_csv(path, **text_reading(spec))
