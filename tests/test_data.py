"""Fast tests of the input checks and the prepare step: clear errors, nothing half-written."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayeslift.data import DataValidationError, FeatureSpec
from bayeslift.prepare import prepare_training_data, stratified_split
from bayeslift.simulate import COLUMNS, simulate_history


@pytest.fixture
def history():
    frame, _ = simulate_history(400, seed=21)
    return frame


def run_prepare(frame, tmp_path, columns=COLUMNS):
    src = tmp_path / "history.csv"
    frame.to_csv(src, index=False)
    out = tmp_path / "out"
    prepare_training_data(src, columns, 0.3, 1, out / "train.csv", out / "holdout.csv", out / "spec.json")
    return out


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.drop(columns=["recency"]), r"missing required column\(s\) \['recency'\]"),
        (lambda f: f.assign(campaign=f["campaign"].replace({1: 2})), r"column 'campaign' must be exactly 0 or 1; lines \d+"),
        (lambda f: f.assign(campaign=0), r"column 'campaign' has only arm \[0\]"),
        (lambda f: f.assign(spend=f["spend"].where(f.index != 9, -5.0)), r"column 'spend' must be >= 0; negative at line 11"),
        (lambda f: f.assign(spend=f["spend"].astype(object).where(f.index != 3, "lots")), r"column 'spend' must be numeric; line 5 hold 'lots'"),
        (lambda f: f.assign(tenure=f["tenure"].where(f.index != 0)), r"column 'tenure' has missing values at line 2"),
        (lambda f: f.assign(channel=f["channel"].where(f.index != 7)), r"column 'channel' has missing values at line 9"),
        (lambda f: f.assign(customer_id=f["customer_id"].where(f.index != 5, 1)), r"column 'customer_id' has duplicate ids \(1\) at lines 2, 7"),
        (lambda f: f.assign(is_new=1), r"column 'is_new' is constant"),
        (lambda f: f.assign(past_spend=f["past_spend"].where(f.index != 2, -1.0)), r"column 'past_spend' is log1p-transformed and must be >= 0"),
    ],
)
def test_bad_history_names_file_column_and_line_and_writes_nothing(history, tmp_path, mutate, message):
    with pytest.raises(DataValidationError, match=message) as err:
        run_prepare(mutate(history), tmp_path)
    assert "history.csv" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_bad_column_config_is_rejected():
    with pytest.raises(DataValidationError, match="log1p names"):
        FeatureSpec.from_columns({**COLUMNS, "log1p": ["nope"]})
    with pytest.raises(DataValidationError, match="more than one role"):
        FeatureSpec.from_columns({**COLUMNS, "outcome": "recency"})


def test_prepare_splits_each_arm_and_records_levels(history, tmp_path):
    out = run_prepare(history, tmp_path)
    train, holdout = pd.read_csv(out / "train.csv"), pd.read_csv(out / "holdout.csv")
    assert len(train) + len(holdout) == len(history)
    assert set(train.customer_id).isdisjoint(holdout.customer_id)
    for arm in (0, 1):
        n_arm = (history.campaign == arm).sum()
        assert (holdout.campaign == arm).sum() == round(0.3 * n_arm)
    spec = json.loads((out / "spec.json").read_text())
    assert spec["levels"] == {"channel": ["multichannel", "phone", "web"]}
    assert list(train.columns) == ["customer_id", "campaign", "spend", *COLUMNS["numeric"], "channel"]


def test_split_refuses_arm_too_small():
    with pytest.raises(DataValidationError, match="arm 1 has 1 users"):
        stratified_split(np.array([0, 0, 0, 0, 1]), 0.3, 0)
