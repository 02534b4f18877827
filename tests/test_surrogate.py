"""Fast tests of the surrogate, its checkpoint and manifest, and batch scoring (no R)."""
from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from bayeslift.data import DataValidationError
from bayeslift.manifest import ManifestError, verify_manifest
from bayeslift.scoring import PREDICTION_COLUMNS, UpliftScorer, score_file
from bayeslift.simulate import simulate_new_users
from bayeslift.surrogate import SimpleNN, SurrogateConfig, SurrogateFidelityError, load_surrogate
from bayeslift.surrogate.train import check_fidelity, fidelity, fit_surrogate, r_squared
from bayeslift.surrogate.truth import simulated_truth_targets

from constants import FIDELITY_FLOOR, TRUTH_SURROGATE_R2


def test_simple_nn_is_linear_relu_linear():
    net = SimpleNN(5, 8)
    kinds = [type(m) for m in net.net]
    assert kinds == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]
    assert net(torch.zeros(3, 5)).shape == (3, 1)


def test_surrogate_learns_true_uplift_on_fresh_users(truth_surrogate_dir):
    users, truth = simulate_new_users(1000, seed=99)
    scorer = UpliftScorer.load(truth_surrogate_dir)
    pred = scorer.score_frame(users)
    assert r_squared(truth["true_uplift"].to_numpy(), pred["uplift"].to_numpy()) > TRUTH_SURROGATE_R2
    assert np.allclose(pred["uplift"], pred["spend_if_treated"] - pred["spend_if_control"], atol=1e-9)
    assert (pred["uplift_lower"] <= pred["uplift"]).all() and (pred["uplift"] <= pred["uplift_upper"]).all()
    assert (pred[["spend_if_treated", "spend_if_control"]] > 0).all().all()


def test_numpy_inference_matches_torch_networks_and_ignores_batching(truth_surrogate_dir):
    """Scoring (numpy) computes what the trained torch networks compute, bit-identical for any batching."""
    from bayeslift.surrogate.model import with_arm
    from bayeslift.surrogate.train import PREDICT_CHUNK

    users, _ = simulate_new_users(PREDICT_CHUNK + 300, seed=5)
    scorer = UpliftScorer.load(truth_surrogate_dir)
    surrogate, x = scorer.surrogate, scorer.encoder.transform(users)
    whole = surrogate.predict_encoded(x)
    with torch.no_grad():
        xt = torch.from_numpy(x)
        treated = torch.exp(surrogate.spend_net(with_arm(xt, 1))[:, 0]).numpy() * surrogate.spend_scale
        control = torch.exp(surrogate.spend_net(with_arm(xt, 0))[:, 0]).numpy() * surrogate.spend_scale
    assert np.allclose(whole["spend_if_treated"], treated, rtol=1e-5)
    assert np.allclose(whole["spend_if_control"], control, rtol=1e-5)
    for rows in ([0], [7], slice(3, 20), slice(PREDICT_CHUNK - 5, PREDICT_CHUNK + 300)):
        part = surrogate.predict_encoded(x[rows])
        for name in whole:
            assert np.array_equal(part[name], whole[name][rows]), (name, rows)


def test_checkpoint_is_plain_dict_loadable_with_weights_only(truth_surrogate_dir):
    ckpt = torch.load(truth_surrogate_dir / "surrogate_nn.pth", weights_only=True)
    assert ckpt["format"] == "bayeslift-surrogate/1"
    assert set(ckpt) >= {"model_args", "spend_net", "interval_net", "spend_scale", "uplift_scale"}
    manifest = verify_manifest(truth_surrogate_dir)
    assert set(manifest["files"]) == {"surrogate_nn.pth", "feature_columns.pkl", "spend_scaler.pkl"}
    assert manifest["versions"]["torch"].startswith("2.13")


def test_tampered_file_is_refused_before_loading(truth_surrogate_dir, tmp_path):
    copy = tmp_path / "surrogate"
    shutil.copytree(truth_surrogate_dir, copy)
    with open(copy / "spend_scaler.pkl", "ab") as fh:
        fh.write(b"\x00")
    with pytest.raises(ManifestError, match="spend_scaler.pkl: sha256"):
        load_surrogate(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ManifestError, match="no manifest"):
        load_surrogate(copy)


def test_score_file_streams_in_chunks_keeps_order(truth_surrogate_dir, tmp_path):
    users, _ = simulate_new_users(1000, seed=5)
    users["customer_id"] = [f"u{i:05d}" for i in range(len(users))][::-1]  # string ids, not sorted
    users["ignored_column"] = "x"
    src = tmp_path / "users.csv"
    users.to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    rows = score_file(truth_surrogate_dir, src, out, chunk_size=97, progress=False)
    scored = pd.read_csv(out, dtype={"customer_id": str})
    assert rows == len(users) == len(scored)
    assert list(scored.columns) == ["customer_id", *PREDICTION_COLUMNS]
    assert scored["customer_id"].tolist() == users["customer_id"].tolist()
    whole = UpliftScorer.load(truth_surrogate_dir).score_frame(users)
    np.testing.assert_allclose(scored["uplift"], whole["uplift"], rtol=1e-7, atol=1e-9)


def test_parquet_in_parquet_out(truth_surrogate_dir, tmp_path):
    users, _ = simulate_new_users(300, seed=6)
    src = tmp_path / "users.parquet"
    users.to_parquet(src)
    out = tmp_path / "pred.parquet"
    score_file(truth_surrogate_dir, src, out, chunk_size=50, progress=False)
    assert len(pd.read_parquet(out)) == 300


def test_bad_row_deep_in_file_names_line_and_leaves_no_output(truth_surrogate_dir, tmp_path):
    users, _ = simulate_new_users(500, seed=7)
    users["recency"] = users["recency"].astype(object)
    users.loc[432, "recency"] = "soon"
    src = tmp_path / "users.csv"
    users.to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    with pytest.raises(DataValidationError, match=r"users.csv: column 'recency' must be numeric; line 434 hold 'soon'"):
        score_file(truth_surrogate_dir, src, out, chunk_size=100, progress=False)
    assert not out.exists()
    assert not list(tmp_path.glob(".pred.csv*"))


def test_unknown_category_is_rejected(truth_surrogate_dir, tmp_path):
    users, _ = simulate_new_users(50, seed=8)
    users.loc[3, "channel"] = "fax"
    with pytest.raises(DataValidationError, match=r"column 'channel' has categories not seen in training \['fax'\] at line 5"):
        UpliftScorer.load(truth_surrogate_dir).score_frame(users, "users.csv")


def test_fidelity_judges_near_constant_uplift_by_its_size():
    """A shrunk posterior (users barely differ) passes on the error next to the posterior sd, where R^2 only
    measures noise; a surrogate that gets the uplift wrong still fails."""
    _, truth_targets = simulated_truth_targets(2000, seed=5)
    control = truth_targets.spend_control
    uplift = 3.0 + 0.01 * np.random.default_rng(0).standard_normal(len(control))

    def targets(u):
        return replace(truth_targets, spend_treated=control + u, uplift_mean=u, uplift_q05=u - 3.0,
                       uplift_q95=u + 3.0)  # posterior sd 1.8

    surrogate = fit_surrogate(targets(uplift), SurrogateConfig(hidden=32, steps=480, seed=3))
    scores = fidelity(surrogate, targets(uplift))
    assert scores["r2_uplift"] < FIDELITY_FLOOR, scores  # the spread is noise: R^2 cannot pass
    assert check_fidelity(scores, FIDELITY_FLOOR) == "error_share_of_posterior_sd", scores
    with pytest.raises(SurrogateFidelityError, match="of the posterior sd"):
        check_fidelity(fidelity(surrogate, targets(-uplift)), FIDELITY_FLOOR)
