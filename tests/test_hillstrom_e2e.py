"""Hillstrom: deriving treatment/id from the raw file, and the whole pipeline on a stratified sample."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from bayeslift.data import DataValidationError
from bayeslift.hillstrom import hillstrom_history
from conftest import REPO, snakemake

SAMPLE_N = 8000  # ~0.9% buy: 1,500 rows leave < 2 control buyers in the holdout


@pytest.fixture(scope="module")
def raw(request):
    path = REPO.parent / "shared" / "data" / "hillstrom.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return pd.read_csv(path)


def test_treatment_versions(raw):
    anym = hillstrom_history(raw, "any")
    assert len(anym) == 64000 and anym["customer_id"].is_unique
    assert anym["treatment"].mean() == pytest.approx((raw["segment"] != "No E-Mail").mean())
    mens = hillstrom_history(raw, "mens")
    assert set(raw.loc[mens["customer_id"] - 1, "segment"]) == {"Mens E-Mail", "No E-Mail"}
    assert mens["treatment"].sum() == (raw["segment"] == "Mens E-Mail").sum()
    sample = hillstrom_history(raw, "any", sample_n=SAMPLE_N, seed=3)
    assert abs(len(sample) - SAMPLE_N) <= 4
    assert sample["treatment"].mean() == pytest.approx(anym["treatment"].mean(), abs=0.01)  # stratified


def test_bad_segment_value(raw):
    with pytest.raises(DataValidationError, match="segment"):
        hillstrom_history(raw.head(10).assign(segment="Email"), "any")


@pytest.mark.e2e
def test_pipeline_on_hillstrom_sample(hillstrom_csv, tmp_path):
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(
        f"hillstrom: {{raw: {hillstrom_csv}, treatment: any, sample_n: {SAMPLE_N}, seed: 2}}\n"
        "model: {inference: {chains: 2, iter: 300}, checks: {on_fail: warn}}\n"
        "surrogate: {epochs: 20, hidden: 32, fidelity_floor: 0.0}\n"
        "evaluation: {n_jobs: 1, n_bootstrap: 30, n_folds: 3, outcome_model: linear}\n"
        "split: {refit_all: false}\n"  # one fit (tests/test_refit_all.py runs the refit)
    )
    snakemake(tmp_path, "--configfile", str(REPO / "config" / "hillstrom.yaml"), str(tiny))
    derived = pd.read_csv(tmp_path / "results" / "hillstrom" / "hillstrom.csv")
    assert abs(len(derived) - SAMPLE_N) <= 4
    summary = json.loads((tmp_path / "results" / "evaluation" / "evaluation.json").read_text())
    assert summary["truth_known"] is False
    metrics = pd.read_csv(tmp_path / "results" / "evaluation" / "metrics.csv")
    assert "sqrt_pehe" not in metrics.columns and len(metrics) == 8
    html = (tmp_path / "results" / "report" / "index.html").read_text()
    assert "Hillstrom" in html and "What to do" in html
    preds = pd.read_csv(tmp_path / "results" / "uplift_predictions.csv")
    assert len(preds) == len(derived)
