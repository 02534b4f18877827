"""End to end: real snakemake, real R/Stan, real PyTorch, on tiny configs."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from bayeslift.report import model_checks_html, posterior_ate_html
from bayeslift.simulate import simulate_history, simulate_new_users

from conftest import PROCESS_ENV, REPO, snakemake
from model_constants import PPC_P_BOUNDS
from constants import BINARY_N_HISTORY, RECOVERY_UPLIFT_MIN_CORR, RECOVERY_UPLIFT_RMSE_SHARE, TINY_SURROGATE_R2

pytestmark = pytest.mark.e2e


def test_tiny_pipeline_writes_every_artifact(tiny_pipeline):
    res = tiny_pipeline / "results"
    for path in ["prepared/train.csv", "model/fit.rds", "model/diagnostics.json", "counterfactuals/surrogate_train_data.csv",
                 "counterfactuals/surrogate_labels.csv", "counterfactuals/uplift_summary.csv", "counterfactuals/ate.json",
                 "surrogate/surrogate_nn.pth", "surrogate/feature_columns.pkl", "surrogate/spend_scaler.pkl",
                 "surrogate/manifest.json", "uplift_predictions.csv", "summary.json"]:
        assert (res / path).exists(), path
    for rule in ["prepare", "bayesian_model", "counterfactuals", "surrogate_model", "batch_uplift"]:
        assert (tiny_pipeline / "logs" / f"{rule}.log").stat().st_size > 0, rule


def test_predictions_one_row_per_user_in_input_order(tiny_pipeline):
    users = pd.read_csv(tiny_pipeline / "data/simulated/new_users.csv")
    pred = pd.read_csv(tiny_pipeline / "results/uplift_predictions.csv")
    assert list(pred.columns) == ["customer_id", "spend_if_treated", "spend_if_control", "uplift", "uplift_lower", "uplift_upper", "treat"]
    assert set(pred["treat"]) <= {0, 1}
    policy = yaml.safe_load((REPO / "config/config.yaml").read_text())["policy"]
    policy.update(yaml.safe_load((REPO / "config/test.yaml").read_text()).get("policy", {}))
    expected_profit = policy["margin"] * pred["uplift"] - policy["cost_per_contact"]
    assert policy["rule"] == "expected_profit" and (pred["treat"] == (expected_profit > 0)).all()
    assert pred["customer_id"].tolist() == users["customer_id"].tolist()
    assert (pred["uplift_lower"] <= pred["uplift"]).all() and (pred["uplift"] <= pred["uplift_upper"]).all()


def test_diagnostics_are_checked_and_recorded(tiny_pipeline):
    diag = json.loads((tiny_pipeline / "results/model/diagnostics.json").read_text())
    assert diag["passed"] is True and diag["problems"] == []
    for part in ("buy", "amount"):
        d = diag["parts"][part]
        assert d["rhat_max"] <= diag["thresholds"]["rhat_max"]
        assert d["ess_bulk_min"] >= diag["thresholds"]["ess_bulk_min"]
        assert d["divergences"] <= diag["thresholds"]["divergences_max"]
    checks = diag["model_checks"]  # PSIS-LOO and posterior predictive checks, shown in the report
    assert checks["loo"]["n_users"] == diag["n_users"] and checks["loo"]["elpd"] < 0
    low, high = PPC_P_BOUNDS  # the tiny data come from the model's own (linear) family
    assert all(low <= row["p_value"] <= high for row in checks["ppc"]), checks["ppc"]
    assert "Model checks" in (tiny_pipeline / "results/report/index.html").read_text()


def test_model_auto_stacks_or_picks_candidates_by_loo(tiny_pipeline, tmp_path):
    """The preset accurate (effect shape auto, shrinkage normal, spline_df 5), here with model.combine
    stack: the no-effect, default and flexible chains are fitted as jobs, their posteriors mixed by LOO stacking
    weights, every member that carries weight checked, and the exported ATE covers the truth; on the same chains
    combine pick keeps the default model (linear truth) and pseudo_bma mixes all three with most weight
    on the best LOO."""
    cfg = tmp_path / "stack.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"train": str(tiny_pipeline / "data/simulated/history.csv"),
                                            "score": str(tiny_pipeline / "data/simulated/new_users.csv")},
                                   "presets": ["demo", "accurate"],
                                   # test.yaml's shape linear (quick tiny fits) is above the preset: auto again
                                   "model": {"combine": "stack", "effect": {"shape": "auto"}}}))
    snakemake(tmp_path, "results/counterfactuals/ate.json", "--configfile", str(REPO / "config/test.yaml"), str(cfg))
    chain = subprocess.run(["Rscript", "-e", f"""
      c <- readRDS("{tmp_path}/results/model/chains/chain_1.rds")
      spline <- grep("splines::ns(", names(c$flexible$buy$coefficients), fixed = TRUE, value = TRUE)
      cat(c$flexible$options$shrinkage, max(as.integer(sub(".*[)]", "", spline))))"""],
                           env=PROCESS_ENV, capture_output=True, text=True, check=True).stdout.split()
    assert chain == ["normal", "5"], chain  # the preset's prior, and basis columns ns(...)1 to ns(...)5
    diag = json.loads((tmp_path / "results/model/diagnostics.json").read_text())
    selection = diag["model_checks"]["selection"]
    assert selection["method"] == "stack" and [row["model"] for row in selection["table"]] == ["no_effect", "default", "flexible"]
    weights = selection["weights"]
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6)
    members = {part.split(":")[0] for part in diag["parts"]}
    assert members == {name for name, w in weights.items() if w >= 0.01}, (members, weights)
    assert diag["passed"] is True
    shown = "".join(model_checks_html(diag["model_checks"]))  # what the report says of the stack
    assert "mixed the candidates by LOO stacking" in shown and f"no_effect {weights['no_effect']:.3f}" in shown
    ate = json.loads((tmp_path / "results/counterfactuals/ate.json").read_text())
    truth = pd.read_csv(tiny_pipeline / "data/simulated_truth/history_truth.csv")
    users = pd.read_csv(tmp_path / "results/counterfactuals/uplift_summary.csv")
    true_ate = truth.set_index("customer_id").loc[users["customer_id"], "true_uplift"].mean()
    assert ate["ate_q05"] <= true_ate <= ate["ate_q95"], (ate, true_ate)
    # combine: pick and pseudo_bma on the same chain jobs' fits (one pipeline run serves all three)
    other = subprocess.run(["Rscript", "-e", f"""
      library(bayeslift)
      chains <- lapply(Sys.glob("{tmp_path}/results/model/chains/chain_*.rds"), readRDS)
      m <- suppressWarnings(choose_model(
        lapply(chains, function(c) structure(c[c("default", "flexible")], class = "bayeslift_candidates")), "pick"))
      cat(m$selection$method, m$selection$chosen, paste(m$selection$table$model, collapse = ","), "\n")
      b <- suppressWarnings(choose_model(chains, "pseudo_bma"))
      cat(b$selection$method, class(b), sum(unlist(b$selection$weights)),
          names(which.max(unlist(b$selection$weights))), b$selection$table$model[which.max(b$selection$table$elpd)])"""],
                           env=PROCESS_ENV, capture_output=True, text=True, check=True)
    pick, bma = (line.split() for line in other.stdout.splitlines())
    assert pick == ["pick", "default", "default,flexible"], pick  # linear truth
    # pseudo-BMA+ mixes the three, its largest weight on the model with the best LOO elpd
    assert bma[:2] == ["pseudo_bma", "bayeslift_stack"] and float(bma[2]) == pytest.approx(1.0, abs=1e-6), bma
    assert bma[3] == bma[4], bma


def test_surrogate_fidelity_recorded_in_manifest(tiny_pipeline):
    manifest = json.loads((tiny_pipeline / "results/surrogate/manifest.json").read_text())
    assert manifest["fidelity"]["holdout"]["r2_uplift"] >= TINY_SURROGATE_R2
    assert manifest["training_config"]["fidelity_floor"] == 0.95


def test_failed_diagnostics_stop_the_pipeline(tiny_pipeline, tmp_path):
    cfg = tmp_path / "strict.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"train": str(tiny_pipeline / "data/simulated/history.csv"),
                                            "score": str(tiny_pipeline / "data/simulated/new_users.csv")},
                                   "model": {"inference": {"iter": 200}, "checks": {"ess_bulk_min": 100000}}}))
    proc = snakemake(tmp_path, "--configfile", str(REPO / "config/test.yaml"), str(cfg), check=False)
    assert proc.returncode != 0
    assert "MCMC diagnostics failed" in proc.stderr and "bulk ESS" in proc.stderr
    # a shortfall no time budget can meet is not refitted, and the message says why
    assert "not extended: the next attempt" in proc.stderr and "model.checks.extend_minutes" in proc.stderr
    assert not (tmp_path / "results/model/fit.rds").exists()


def test_short_chains_are_extended_before_the_checks_refuse(tiny_pipeline, tmp_path):
    """Chains of 100 iterations (100 draws in all) cannot reach a bulk ESS of 150: bayesian_model refits every
    chain longer, within model.checks.extend_minutes, and the longer fit passes and is the one exported."""
    cfg = tmp_path / "short.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"train": str(tiny_pipeline / "data/simulated/history.csv"),
                                            "score": str(tiny_pipeline / "data/simulated/new_users.csv")},
                                   "model": {"inference": {"iter": 100},
                                             "checks": {"ess_bulk_min": 150, "ess_tail_min": 50, "rhat_max": 1.1,
                                                        "divergences_max": 20, "extend_minutes": 10}}}))
    snakemake(tmp_path, "results/model/diagnostics.json", "--configfile", str(REPO / "config/test.yaml"), str(cfg))
    diag = json.loads((tmp_path / "results/model/diagnostics.json").read_text())
    attempts = pd.DataFrame(diag["extension"]["attempts"])
    assert diag["passed"] is True and len(attempts) >= 2, diag
    assert attempts["iter"].iloc[0] == 100 and attempts["iter"].is_monotonic_increasing
    assert attempts["passed"].tolist() == [False] * (len(attempts) - 1) + [True]
    final_iter = int(attempts["iter"].iloc[-1])
    assert all(part["n_draws"] == 2 * final_iter // 2 for part in diag["parts"].values())
    assert "refitting with" in (tmp_path / "logs/bayesian_model.log").read_text()


def test_wrong_config_key_fails_before_anything_runs(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"backend": "rstanarm", "inference": {"chians": 2}}}))
    proc = snakemake(tmp_path, "--configfile", str(cfg), check=False)
    assert proc.returncode != 0
    assert "config: model.inference.chians: unknown key" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()
    cfg.write_text(yaml.safe_dump({"surrogate": {"epochs": "many"}}))
    proc = snakemake(tmp_path, "--configfile", str(cfg), check=False)
    assert proc.returncode != 0 and "'many' is not of type 'integer'" in proc.stderr


def test_bad_training_file_fails_with_line_and_leaves_no_output(tmp_path):
    history, _ = simulate_history(300, seed=3)
    history.loc[41, "spend"] = -2.5
    history.to_csv(tmp_path / "history.csv", index=False)
    simulate_new_users(10)[0].to_csv(tmp_path / "users.csv", index=False)
    cfg = tmp_path / "user.yaml"
    cfg.write_text(yaml.safe_dump({"presets": ["demo"], "data": {"train": "history.csv", "score": "users.csv"}}))
    proc = snakemake(tmp_path, "--configfile", str(cfg), check=False)
    assert proc.returncode != 0
    assert "history.csv: column 'spend' must be >= 0; negative at line 43" in proc.stderr
    assert not (tmp_path / "results").exists() or not any(p.is_file() for p in (tmp_path / "results").rglob("*"))


def test_own_data_with_renamed_columns_recovers_known_truth(tmp_path):
    """Recovery: 6,000 simulated users under the user's own column names; truth kept outside the run."""
    rename = {"customer_id": "user", "campaign": "got_email", "spend": "revenue", "channel": "source"}
    history, truth = simulate_history(6000, seed=31)
    history.rename(columns=rename).to_csv(tmp_path / "history.csv", index=False)
    users, _ = simulate_new_users(200, seed=32)
    users.rename(columns=rename).assign(extra="ignored").to_csv(tmp_path / "users.csv", index=False)
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"train": "history.csv", "score": "users.csv"},
        "columns": {"id": "user", "treatment": "got_email", "outcome": "revenue",
                    "numeric": ["past_spend", "recency", "tenure", "is_new"], "categorical": ["source"],
                    "log1p": ["past_spend"]},
        "model": {"inference": {"iter": 1000}, "checks": {"ess_bulk_min": 300, "ess_tail_min": 300, "rhat_max": 1.02}},
        "surrogate": {"epochs": 120},
        "split": {"refit_all": False},  # one fit: the recovery is read from the train split's counterfactuals
    }))
    snakemake(tmp_path, "--configfile", str(cfg))
    ate = json.loads((tmp_path / "results/counterfactuals/ate.json").read_text())
    true_ate = truth["true_uplift"].mean()
    assert ate["ate_q05"] <= true_ate <= ate["ate_q95"], (ate, true_ate)
    summary = pd.read_csv(tmp_path / "results/counterfactuals/uplift_summary.csv")
    merged = summary.merge(truth, left_on="user", right_on="customer_id")
    assert len(merged) == 6000
    rmse = float(np.sqrt(np.mean((merged["uplift_mean"] - merged["true_uplift"]) ** 2)))
    assert rmse < RECOVERY_UPLIFT_RMSE_SHARE * merged["true_uplift"].std(), rmse
    assert np.corrcoef(merged["uplift_mean"], merged["true_uplift"])[0, 1] > RECOVERY_UPLIFT_MIN_CORR
    pred = pd.read_csv(tmp_path / "results/uplift_predictions.csv")
    assert list(pred.columns)[0] == "user" and len(pred) == 200 and "extra" not in pred


def test_brms_backend_with_a_user_formula(tiny_pipeline, tmp_path):
    """An R user changes the causal model from config alone: brms with their own formulas (incl. a spline)."""
    cfg = tmp_path / "brms.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"train": str(tiny_pipeline / "data/simulated/history.csv"),
                 "score": str(tiny_pipeline / "data/simulated/new_users.csv")},
        "model": {"backend": "brms", "inference": {"iter": 400}, "brms": {"formula": [
            "spend ~ campaign * (past_spend + recency + is_new) + s(tenure, k = 4) + channel",
            "hu ~ campaign * (past_spend + recency + is_new + channel)"]}},
    }))
    snakemake(tmp_path, "--configfile", str(REPO / "config/test.yaml"), str(cfg))
    diag = json.loads((tmp_path / "results/model/diagnostics.json").read_text())
    assert diag["backend"] == "brms" and set(diag["parts"]) == {"hurdle"}
    # The brms chain jobs are combined (brms::combine_models): every chain's draws, chain after chain.
    chains = yaml.safe_load((REPO / "config/test.yaml").read_text())["model"]["inference"]["chains"]
    assert diag["chains"] == chains and diag["parts"]["hurdle"]["n_draws"] == chains * 400 // 2
    res = tmp_path / "results/model"
    script = f"""
      library(bayeslift)
      fit <- readRDS("{res}/fit.rds")
      parts <- lapply(Sys.glob("{res}/chains/chain_*.rds"), function(p) as.matrix(readRDS(p)$model$fit))
      stacked <- do.call(rbind, parts)  # draws_matrix attributes (chains) differ: compare the values
      cat(brms::nchains(fit$fit), isTRUE(all.equal(as.matrix(fit$fit), stacked, check.attributes = FALSE)), "\\n")
    """
    proc = subprocess.run(["Rscript", "-e", script], env=PROCESS_ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [str(chains), "TRUE"]
    ate = json.loads((tmp_path / "results/counterfactuals/ate.json").read_text())
    rstanarm_ate = json.loads((tiny_pipeline / "results/counterfactuals/ate.json").read_text())
    # Same data, two back-ends: the ATE intervals overlap.
    assert ate["ate_q05"] < rstanarm_ate["ate_q95"] and rstanarm_ate["ate_q05"] < ate["ate_q95"]
    assert len(list((tmp_path / ".cache/brms").glob("brms_*.rds"))) == 1


def test_binary_outcome_end_to_end(tmp_path):
    """outcome_type binary: probabilities in, probability uplift out, through every rule and the server's metadata."""
    from bayeslift.serving import PredictionService

    cfg = tmp_path / "binary.yaml"
    cfg.write_text(yaml.safe_dump({
        "columns": {"outcome": "bought", "outcome_type": "binary"},
        "simulation": {"scenario": "binary", "n_history": BINARY_N_HISTORY},
        "policy": {"cost_per_contact": 0.02, "margin": 1.0},
    }))
    snakemake(tmp_path, "--configfile", str(REPO / "config/test.yaml"), str(cfg))
    truth = pd.read_csv(tmp_path / "data/simulated_truth/history_truth.csv")
    ate = json.loads((tmp_path / "results/counterfactuals/ate.json").read_text())
    assert ate["ate_q05"] <= truth["true_uplift"].mean() <= ate["ate_q95"], ate
    assert 0 < ate["mean_spend_if_control"] < 1 and 0 < ate["mean_spend_if_treated"] < 1
    pred = pd.read_csv(tmp_path / "results/uplift_predictions.csv")
    for col in ("spend_if_treated", "spend_if_control"):
        assert pred[col].between(0, 1, inclusive="neither").all(), col
    assert pred["uplift"].abs().max() < 1
    assert pred["treat"].tolist() == (pred["uplift"] - 0.02 > 0).astype(int).tolist()
    assert (tmp_path / "results/report/index.html").stat().st_size > 0
    meta = PredictionService.load(tmp_path / "results/surrogate").metadata
    assert meta["outcome"] == {"name": "bought", "type": "binary"}


def test_interval_calibration_scales_uplift_intervals_only(tiny_pipeline, tmp_path):
    """model.intervals.calibrate refits the model on outcomes simulated from it and rescales every user's uplift
    interval about its median by one factor; the chains are the tiny pipeline's (same seeds and data), so the
    medians and the ATE must come out exactly as there, and each half-width multiplied by the logged scale."""
    cfg = tmp_path / "calibrate.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"train": str(tiny_pipeline / "data/simulated/history.csv"),
                                            "score": str(tiny_pipeline / "data/simulated/new_users.csv")},
                                   "model": {"intervals": {"calibrate": True}}}))
    snakemake(tmp_path, "results/counterfactuals/ate.json", "--configfile", str(REPO / "config/test.yaml"), str(cfg))
    calibration = json.loads((tmp_path / "results/model/interval_calibration.json").read_text())
    scale = calibration["scale"]
    assert 0 < scale < 10 and calibration["replicates"] == 4 and len(calibration["coverage_before"]) == 4
    assert all(0 <= c <= 1 for c in calibration["coverage_before"])
    assert "interval scale" in (tmp_path / "logs/interval_calibration.log").read_text()
    plain = pd.read_csv(tiny_pipeline / "results/counterfactuals/uplift_summary.csv")
    calibrated = pd.read_csv(tmp_path / "results/counterfactuals/uplift_summary.csv")
    assert calibrated["customer_id"].tolist() == plain["customer_id"].tolist()
    np.testing.assert_allclose(calibrated["uplift_median"], plain["uplift_median"], rtol=1e-9, atol=1e-9)
    expected = {bound: plain["uplift_median"] + scale * (plain[bound] - plain["uplift_median"]) for bound in ("uplift_q05", "uplift_q95")}
    np.testing.assert_allclose(calibrated["uplift_q95"], expected["uplift_q95"], rtol=1e-6, atol=1e-9)
    # A widened interval stops where the treated spend would go below 0: that only raises the lowest uplift draws.
    exact = np.isclose(calibrated["uplift_q05"], expected["uplift_q05"], rtol=1e-6, atol=1e-9)
    assert (calibrated["uplift_q05"][~exact] > expected["uplift_q05"][~exact]).all()
    assert exact.mean() > 0.5, exact.mean()
    # The ATE keeps the posterior's own draws (and says the intervals were calibrated, as the report does);
    # the treated arm's labels carry the calibrated uplift.
    ate = json.loads((tmp_path / "results/counterfactuals/ate.json").read_text())
    plain_ate = json.loads((tiny_pipeline / "results/counterfactuals/ate.json").read_text())
    assert ate.pop("interval_scale") == pytest.approx(scale) and "interval_scale" not in plain_ate
    assert ate == plain_ate
    assert f"multiplied by {scale:.3f}" in "".join(posterior_ate_html({**ate, "interval_scale": scale}))
    labels = pd.read_csv(tmp_path / "results/counterfactuals/surrogate_labels.csv")
    plain_labels = pd.read_csv(tiny_pipeline / "results/counterfactuals/surrogate_labels.csv")
    control = labels["received_campaign"] == 0
    pd.testing.assert_frame_equal(labels[control], plain_labels[control])
