"""End to end with ``model.backend: bcf`` (stochtree's BCF behind R's generics): the tiny config's whole pipeline,
chains combined and checked, counterfactuals, surrogate and scoring, with nothing but the back-end changed."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from conftest import REPO, snakemake

pytestmark = pytest.mark.e2e
pytest.importorskip("stochtree")
ITER = 100


def test_bcf_backend_end_to_end(tmp_path):
    cfg = tmp_path / "bcf.yaml"
    # warn, not stop: BART's sigma^2 does not mix in short chains (R-hat 1.06-1.08, bulk ESS 19-38 at 500 and
    # 1,142 iterations), and extending would take a quarter of an hour; 100 iterations keep this test short
    cfg.write_text(yaml.safe_dump({"model": {"backend": "bcf", "inference": {"iter": ITER},
                                             "checks": {"on_fail": "warn"}}}))
    snakemake(tmp_path, "--configfile", str(REPO / "config/test.yaml"), str(cfg))
    diag = json.loads((tmp_path / "results/model/diagnostics.json").read_text())
    assert diag["backend"] == "bcf" and set(diag["parts"]) == {"buy", "amount"}
    chains = yaml.safe_load((REPO / "config/test.yaml").read_text())["model"]["inference"]["chains"]
    assert diag["chains"] == chains
    # the second half of the iterations kept, up to 250 per chain (R/bayeslift/R/backend_bcf.R, bcf_sampler())
    assert diag["parts"]["buy"]["n_draws"] == chains * ITER // 2
    assert diag["model_checks"]["loo"]["n_users"] == diag["n_users"]
    ate = json.loads((tmp_path / "results/counterfactuals/ate.json").read_text())
    truth = pd.read_csv(tmp_path / "data/simulated_truth/history_truth.csv")
    true_ate = truth["true_uplift"].mean()
    assert ate["ate_q05"] <= true_ate <= ate["ate_q95"], (ate, true_ate)
    pred = pd.read_csv(tmp_path / "results/uplift_predictions.csv")
    assert len(pred) == yaml.safe_load((REPO / "config/test.yaml").read_text())["simulation"]["n_new_users"]
