"""The evaluation rules inside the real pipeline (tiny config): baselines, evaluate, the HTML report."""
from __future__ import annotations

import json
import re

import joblib
import numpy as np
import pandas as pd
import pytest

from conftest import REPO, snakemake

pytestmark = pytest.mark.e2e
TEST_CONFIG = str(REPO / "config" / "test.yaml")


@pytest.fixture(scope="module")
def workdir(tiny_pipeline):
    # The report is in `rule all`, so the session fixture has built it; this call only checks it is up to date.
    proc = snakemake(tiny_pipeline, "--configfile", TEST_CONFIG)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    return tiny_pipeline


def test_report_is_self_contained(workdir):
    html = (workdir / "results" / "report" / "index.html").read_text()
    for heading in ("What to do", "Average effect", "Qini", "Calibration", "Value of targeting rules",
                    "Segments", "Fast scoring model", "fit diagnostics"):
        assert heading in html, heading
    srcs = re.findall(r'src="([^"]+)"', html)
    assert len(srcs) >= 5 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in html and "https://" not in html


def test_evaluation_tables(workdir):
    ev_dir = workdir / "results" / "evaluation"
    summary = json.loads((ev_dir / "evaluation.json").read_text())
    assert summary["truth_known"] is True
    metrics = pd.read_csv(ev_dir / "metrics.csv")
    expected = {"bayesian", "surrogate", "t_lightgbm", "t_xgboost", "s_lightgbm", "s_xgboost",
                "linear_interaction", "random"}
    assert set(metrics["model"]) == expected
    for col in ("qini_gain", "qini_gain_low", "qini_gain_high", "auuc", "uplift_at_10", "uplift_at_50",
                "sqrt_pehe", "ate_error"):
        assert metrics[col].notna().all(), col
    cov = metrics.set_index("model")["coverage_90"]
    assert cov[["bayesian", "surrogate"]].between(0, 1).all() and cov.drop(["bayesian", "surrogate"]).isna().all()
    ate = pd.read_csv(ev_dir / "ate.csv")
    assert {"difference_in_means", "ipw", "double_ml", "aipw", "true_sample_ate"} <= set(ate["method"])
    policy = pd.read_csv(ev_dir / "policy.csv")
    assert {"nobody", "everybody"} <= set(policy["rule"])
    assert policy["rule"].str.startswith("P(profit > 0)").any()
    assert policy["value_true"].notna().all()
    holdout = pd.read_csv(workdir / "results" / "prepared" / "holdout.csv")
    preds = pd.read_csv(ev_dir / "predictions.csv")
    assert len(preds) == len(holdout) and set(preds["id"]) == set(holdout["customer_id"])
    # The Bayesian rule reads R's exact P(margin * uplift - cost > 0), counted over the posterior draws.
    assert summary["policy"]["prob_profit_method"].startswith("exact")
    exact = pd.read_csv(workdir / "results" / "counterfactuals" / "uplift_summary.csv").set_index("customer_id")
    np.testing.assert_allclose(preds["bayesian_prob_profit"], exact.loc[preds["id"], "prob_profit"])


def test_t_learner_bundle(workdir):
    bundle = joblib.load(workdir / "results" / "baselines" / "t_learner_lightgbm.joblib")
    holdout = pd.read_csv(workdir / "results" / "prepared" / "holdout.csv")
    Z = bundle["design"].transform(holdout[bundle["feature_order"]])
    uplift = bundle["model_treated"].predict(Z) - bundle["model_control"].predict(Z)
    preds = pd.read_csv(workdir / "results" / "baselines" / "holdout_predictions.csv")
    assert abs(uplift - preds["t_lightgbm"].to_numpy()).max() < 1e-6


def test_bad_config_fails_before_any_model(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("evaluation:\n  segments: [channel, no_such_feature]\n")
    proc = snakemake(tmp_path, "--configfile", TEST_CONFIG, str(bad), "-n", check=False)
    assert proc.returncode != 0 and "no_such_feature" in proc.stdout + proc.stderr
    bad.write_text("policy:\n  cost_per_contact: -1\n")
    proc = snakemake(tmp_path, "--configfile", TEST_CONFIG, str(bad), "-n", check=False)
    assert proc.returncode != 0 and "cost_per_contact" in proc.stdout + proc.stderr
    bad.write_text("policy:\n  prob_threshold: 1.5\n")
    proc = snakemake(tmp_path, "--configfile", TEST_CONFIG, str(bad), "-n", check=False)
    assert proc.returncode != 0 and "prob_threshold" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
