"""The surrogate with several campaign arms (issue 25): one arm input per campaign, fidelity per arm, a model
folder that saves, verifies and loads. Fast tier: the simulator's true expected spend per arm stands in for R's
posterior summaries, in the boundary tables' own layout."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from arms_tables import ARMS, three_arm_tables
from bayeslift.surrogate.estimator import UpliftSurrogate
from bayeslift.surrogate.fidelity import SurrogateFidelityError, check_fidelity
from bayeslift.surrogate.predict import Surrogate, prediction_names

@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tables, users = three_arm_tables(2400, seed=5)
    estimator = UpliftSurrogate(steps=4000, hidden=32, seed=1).fit(tables)
    folder = tmp_path_factory.mktemp("arms") / "surrogate"
    estimator.save(folder)
    return estimator, folder, users[users["split"] == "holdout"]


def test_inputs_and_outputs_are_named_per_arm(fitted):
    estimator, _, holdout = fitted
    assert estimator.encoder_.columns[:2] == ["received_email_a", "received_email_b"]
    table = estimator.predict_table(holdout)
    assert list(table.columns) == list(prediction_names(ARMS))
    assert list(table.columns)[:5] == ["spend_if_control", "spend_if_email_a", "uplift_email_a", "uplift_email_a_lower",
                                       "uplift_email_a_upper"]
    np.testing.assert_allclose(table["uplift_email_b"], table["spend_if_email_b"] - table["spend_if_control"])
    assert (table["uplift_email_a_lower"] < table["uplift_email_a"]).all()
    assert estimator.predict(holdout).shape == (len(holdout), 2)
    assert list(estimator.predict_arms(holdout).columns) == ["spend_if_control", "spend_if_email_a", "spend_if_email_b"]


def test_fidelity_is_gated_per_arm(fitted):
    estimator, _, _ = fitted
    holdout = estimator.fidelity_["holdout"]
    assert set(holdout["arms"]) == set(ARMS)
    for arm in ARMS:
        # measured 0.99+ on both arms at 4,000 steps; the gate's floor is 0.99
        assert holdout["arms"][arm]["r2_uplift"] > 0.97, arm
        assert holdout["arms"][arm]["r2_uplift_upper"] > 0.9, arm
    assert holdout["r2_uplift"] == min(holdout["arms"][a]["r2_uplift"] for a in ARMS)
    assert holdout["passed_by"].startswith("email_a: ")
    # one arm below the floor fails the gate, and the message names it
    failing = {**holdout, "arms": {**holdout["arms"], "email_b": {**holdout["arms"]["email_b"], "r2_uplift": 0.5,
                                                                   "uplift_error_share_of_posterior_sd": 0.9}}}
    with pytest.raises(SurrogateFidelityError, match="^arm email_b: surrogate uplift R\\^2"):
        check_fidelity(failing, 0.99)


def test_folder_round_trip_scores_alike_in_any_batch(fitted):
    estimator, folder, holdout = fitted
    loaded = UpliftSurrogate.load(folder)
    assert loaded.surrogate_.arm_names == ARMS
    before, after = estimator.predict_table(holdout), loaded.predict_table(holdout)
    pd.testing.assert_frame_equal(before, after)
    x = loaded.encoder_.transform(holdout)
    one = loaded.surrogate_.predict_encoded(x[7:8])
    for name, values in loaded.surrogate_.predict_encoded(x).items():
        assert one[name][0] == values[7], name


def test_numpy_scoring_matches_the_torch_network(fitted):
    import torch

    from bayeslift.surrogate.model import with_arm

    estimator, _, holdout = fitted
    surrogate = estimator.surrogate_
    x = estimator.encoder_.transform(holdout)
    pred = surrogate.predict_encoded(x)
    with torch.no_grad():
        for arm, name in enumerate(["spend_if_control", *(f"spend_if_{a}" for a in ARMS)]):
            z = surrogate.spend_net(with_arm(torch.from_numpy(x), arm, 2))[:, 0].numpy().astype(np.float64)
            np.testing.assert_allclose(surrogate.link.from_net(z), pred[name], rtol=1e-5)


def test_interval_outputs_must_match_the_arms():
    rng = np.random.default_rng(0)
    layers = [rng.normal(size=s).astype(np.float32) for s in [(4, 5), (4,), (1, 4), (1,)]]
    interval = [rng.normal(size=s).astype(np.float32) for s in [(4, 3), (4,), (2, 4), (2,)]]  # one arm's 2 outputs
    with pytest.raises(ValueError, match="interval_net has 2 outputs, not 2 per arm of 2"):
        Surrogate.from_layers(layers, interval, 1.0, 1.0, arm_names=ARMS)
