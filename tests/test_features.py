"""The one feature encoder (issue 24): the surrogate and the baselines see the same matrix, one rule for
unseen levels, log1p then standardization, and the encoder's round trip through the model folder."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from bayeslift import features, surrogate
from bayeslift.baselines import Design, make_baseline
from bayeslift.data import DataValidationError, FeatureSpec, validate_training_frame
from bayeslift.features import FeatureEncoder
from bayeslift.simulate import COLUMNS, simulate_history
from bayeslift.surrogate.checkpoint import load_surrogate, save_surrogate
from bayeslift.surrogate.model import SimpleNN
from bayeslift.surrogate.predict import Surrogate


@pytest.fixture(scope="module")
def history():
    """A simulated history and its spec with levels and ranges learned, as prepare does."""
    frame, _ = simulate_history(600, seed=4)
    spec = FeatureSpec.from_columns(COLUMNS)
    validate_training_frame(frame, spec, "simulated history")
    return frame, spec


def test_one_encoder_class_everywhere():
    assert surrogate.model.FeatureEncoder is features.FeatureEncoder  # the surrogate's name re-exports it


def test_surrogate_and_baseline_paths_give_identical_matrices(history):
    frame, spec = history
    assert spec.categorical and spec.log1p  # the simulator has both kinds the encoder treats specially
    surrogate_encoder = FeatureEncoder.fit(spec, frame)  # as the surrogate's training does
    X, t, y = frame[spec.features], frame[spec.treatment], frame[spec.outcome]
    model = make_baseline("linear_interaction", categorical=spec.categorical, log1p=spec.log1p).fit(X, t, y)
    design = model.design_
    assert design.columns_ == surrogate_encoder.feature_names == surrogate_encoder.columns[1:]
    baseline_matrix = design.transform(X)
    assert baseline_matrix.dtype == np.float64
    np.testing.assert_array_equal(surrogate_encoder.transform(frame, dtype=np.float64), baseline_matrix)
    np.testing.assert_array_equal(surrogate_encoder.transform(frame), baseline_matrix.astype(np.float32))
    # a mapping of arrays (the HTTP service's validated columns) encodes as the frame does
    arrays = {c: frame[c].to_numpy() for c in spec.features}
    np.testing.assert_array_equal(surrogate_encoder.transform(arrays), surrogate_encoder.transform(frame))


def test_unseen_level_rejected_naming_column_values_and_rows(history):
    frame, spec = history
    encoder = FeatureEncoder.fit(spec, frame)
    users = frame.iloc[:8].copy()
    users.index = range(100, 108)  # rows are positions, whatever the index
    users.loc[[103, 105], "channel"] = "fax"
    with pytest.raises(DataValidationError, match=r"^X: column 'channel' has categories not seen in training "
                                                  r"\['fax'\] at rows 3, 5; known levels: \["):
        encoder.transform(users)
    design = Design(spec.categorical, spec.log1p).fit(frame[spec.features])
    with pytest.raises(DataValidationError, match=r"column 'channel' has categories not seen in training \['fax'\]"):
        design.transform(users[spec.features])
    users.loc[103, "channel"] = None
    with pytest.raises(DataValidationError, match=r"column 'channel' has missing values at row 3$"):
        encoder.transform(users)


def test_levels_are_learned_at_fit_when_the_spec_has_none(history):
    frame, spec = history
    bare = copy.deepcopy(spec)
    bare.levels = {}
    encoder = FeatureEncoder.fit(bare, frame)
    assert encoder.spec.levels == spec.levels and bare.levels == {}  # the spec given is not changed
    np.testing.assert_array_equal(encoder.transform(frame), FeatureEncoder.fit(spec, frame).transform(frame))


def test_log1p_then_standardized():
    frame = pd.DataFrame({"spend": [0.0, 1.0, 9.0, 99.0], "tenure": [1.0, 2.0, 3.0, 4.0], "grp": list("abab")})
    encoder = FeatureEncoder.from_frame(frame, log1p=["spend"])
    assert encoder.spec.categorical == ["grp"] and encoder.feature_names == ["spend", "tenure", "grp=a", "grp=b"]
    Z = encoder.transform(frame, dtype=np.float64)
    logged = np.log1p(frame["spend"].to_numpy())
    np.testing.assert_allclose(Z[:, 0], (logged - logged.mean()) / logged.std())
    np.testing.assert_allclose(Z[:, 1], (frame["tenure"] - 2.5) / frame["tenure"].std(ddof=0))
    np.testing.assert_array_equal(Z[:, 2:], [[1, 0], [0, 1], [1, 0], [0, 1]])
    np.testing.assert_allclose(encoder.scaler.mean_, [logged.mean(), 2.5])
    with pytest.raises(DataValidationError, match=r"column 'spend' is log1p-transformed and must be >= 0; "
                                                  r"negative at row 1"):
        encoder.transform(frame.assign(spend=[1.0, -2.0, 0.0, 0.0]))
    with pytest.raises(DataValidationError, match=r"column 'tenure' has missing or non-finite values at rows 0, 2"):
        encoder.transform(frame.assign(tenure=[np.nan, 1.0, np.inf, 2.0]))
    with pytest.raises(DataValidationError, match=r"log1p names \['grp'\]"):
        FeatureEncoder.from_frame(frame, log1p=["grp"])


def test_round_trip_through_the_model_folder(history, tmp_path):
    frame, spec = history
    encoder = FeatureEncoder.fit(spec, frame)
    n_inputs = len(encoder.columns)
    networks = Surrogate(SimpleNN(n_inputs, 4), SimpleNN(n_inputs - 1, 4, 2), 1.0, 1.0)
    save_surrogate(tmp_path / "model", networks, encoder, training_config={}, fidelity={})
    _, loaded, _ = load_surrogate(tmp_path / "model")  # the manifest's hashes and the format checks pass
    assert loaded.columns == encoder.columns and loaded.spec == encoder.spec
    for name in ("mean_", "scale_", "var_", "n_samples_seen_"):
        np.testing.assert_array_equal(getattr(loaded.scaler, name), getattr(encoder.scaler, name))
    np.testing.assert_array_equal(loaded.transform(frame), encoder.transform(frame))
