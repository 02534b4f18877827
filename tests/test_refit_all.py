"""Issue 23.2: with split.refit_all the holdout evaluation scores the fit on the train split, out-of-sample, and
the delivered model (counterfactuals, surrogate, scoring) is that model fitted again on every row."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from bayeslift.data import FeatureSpec
from bayeslift.prepare import read_prepared
from bayeslift.scoring import UpliftScorer

from conftest import REPO, snakemake

pytestmark = pytest.mark.e2e
CAP = 500  # model.effect.shape_subsample below the tiny history's 560 train users


def test_refit_on_every_row_is_delivered_and_the_evaluation_stays_out_of_sample(tiny_pipeline, tmp_path):
    # The tiny pipeline (refit_all false: one fit, the train split's) again with the defaults refit_all and shape
    # auto, its subsample cap below the train split's size: rule shape_choice compares linear and flexible by LOO
    # on a subsample, the train split's fit and the refit on every row fit only the one kept, and the evaluation
    # gets its own surrogate.
    work = tmp_path / "run"
    shutil.copytree(tiny_pipeline, work, symlinks=True)
    cfg = tmp_path / "refit.yaml"
    cfg.write_text(yaml.safe_dump({"split": {"refit_all": True},
                                   "model": {"effect": {"shape": "auto", "shape_subsample": CAP}}}))
    snakemake(work, "--configfile", str(REPO / "config" / "test.yaml"), str(cfg))
    res = work / "results"
    n_train = len(pd.read_csv(res / "prepared/train.csv"))
    holdout = read_prepared(res / "prepared/holdout.csv", FeatureSpec.from_json(res / "prepared/feature_spec.json"))
    n_all = n_train + len(holdout)

    # The delivered fit saw every row, with the candidate LOO kept for the train split's fit (evaluated below).
    delivered = json.loads((res / "delivered/model/diagnostics.json").read_text())
    assert (delivered["fitted_on"], delivered["n_rows"], delivered["n_users"], delivered["passed"]) == ("all", n_all, n_all, True)
    evaluated = json.loads((res / "model/diagnostics.json").read_text())
    assert (evaluated["fitted_on"], evaluated["n_users"]) == ("train", n_train)
    choice = json.loads((res / "model/shape_choice.json").read_text())
    assert (choice["n_users"], choice["of_users"]) == (CAP, n_train) and choice["seconds"] > 0
    kept = choice["selection"]["chosen"]
    assert evaluated["selection"] == {"method": "pick", "chosen": kept, "kept_from": "results/model/shape_choice.json"}
    compared = evaluated["model_checks"]["selection"]
    assert [row["model"] for row in compared["table"]] == ["default", "flexible"] and compared["n_users"] == CAP
    for chain_log in ("bayesian_chain_1", "delivered/bayesian_chain_1"):  # one candidate on all the fit's rows
        log = (work / f"logs/{chain_log}.log").read_text()
        assert f"candidate '{kept}' only" in log and "fitting stan chain 1 of model on" in log, log[-2000:]
    assert delivered["selection"] == {"method": "pick", "chosen": kept, "kept_from": "results/model/diagnostics.json"}
    # LOO and the predictive checks are the evaluated fit's (the report shows those); the refit does not repeat them
    assert "model_checks" not in delivered and evaluated["model_checks"]["loo"]["n_users"] == n_train
    assert "not repeated for the refit" in (work / "logs/delivered/bayesian_model.log").read_text()
    assert json.loads((res / "delivered/counterfactuals/ate.json").read_text())["n_users"] == n_all

    # The evaluation scored the train split's posterior and a surrogate of it (results/evaluation/surrogate).
    pred = pd.read_csv(res / "evaluation/predictions.csv").set_index("id")
    posterior = {name: pd.read_csv(res / folder / "uplift_summary.csv").set_index("customer_id")["uplift_mean"]
                 for name, folder in (("train", "counterfactuals"), ("all", "delivered/counterfactuals"))}
    np.testing.assert_allclose(pred["bayesian"], posterior["train"].loc[pred.index], rtol=1e-9)
    assert not np.allclose(pred["bayesian"], posterior["all"].loc[pred.index], rtol=1e-6)
    surrogate = UpliftScorer.load(res / "evaluation/surrogate").score_frame(holdout, "holdout")
    np.testing.assert_allclose(pred["surrogate"], surrogate["uplift"].to_numpy(), rtol=1e-6)

    # The delivered surrogate learned the refit (gated on holdout users it did not train on) and scored the users.
    manifest = json.loads((res / "surrogate/manifest.json").read_text())
    assert manifest["fidelity"]["holdout"]["n_users"] == len(holdout)
    scored = pd.read_csv(res / "uplift_predictions.csv")
    served = UpliftScorer.load(res / "surrogate").score_frame(pd.read_csv(work / "data/simulated/new_users.csv"), "users")
    np.testing.assert_allclose(scored["uplift"], served["uplift"].to_numpy(), rtol=1e-6)
    assert not scored.equals(pd.read_csv(tiny_pipeline / "results/uplift_predictions.csv"))

    # summary.json and the report say which fit is delivered and what the holdout numbers are of.
    summary = json.loads((res / "summary.json").read_text())["delivered"]
    assert summary["fitted_on"] == "all" and summary["n_users"] == n_all and summary["refit_all"] is True
    assert summary["evaluated_fit"] == {"fitted_on": "train", "n_users": n_train}
    assert summary["holdout_metrics_out_of_sample"] is False and f"refit on all {n_all} rows" in summary["note"]
    report = (res / "report/index.html").read_text()
    assert f"refit on all {n_all:,} customers" in report and "out-of-sample" in report
    assert f"with the candidate <b>{kept}</b> that PSIS-LOO kept" in report
    assert f"on a stratified subsample of {CAP:,} of the {n_train:,} customers" in report
    assert "Of the fit on the train split, evaluated above." in report
    tiny = json.loads((tiny_pipeline / "results/summary.json").read_text())["delivered"]
    assert (tiny["fitted_on"], tiny["n_users"], tiny["holdout_metrics_out_of_sample"]) == ("train", n_train, True)


def planned_inputs(proc_stdout: str, rule: str) -> dict[str, str]:
    """Each planned job of ``rule`` in a dry run's listing: its output line -> its input line."""
    jobs = {}
    for block in proc_stdout.split("\n\n"):
        lines = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines()[1:])}
        if block.startswith(f"rule {rule}:") or f"\nrule {rule}:" in block:
            jobs[lines.get("output", "")] = lines.get("input", "")
    return jobs


@pytest.mark.parametrize("shape, combine, pinned", [("auto", "pick", True), ("auto", "stack", False),
                                                    ("linear", "pick", False)])
def test_delivered_refit_plans_the_train_splits_pick(tmp_path, shape, combine, pinned):
    # shape auto with combine pick: the train split's jobs wait for rule shape_choice and the refit's for the
    # train split's diagnostics, and fit only the candidate LOO kept there (R kept_model_config, tested in
    # testthat); a mixture needs every candidate.
    cfg = tmp_path / "auto.yaml"
    cfg.write_text(yaml.safe_dump({"split": {"refit_all": True}, "model": {"effect": {"shape": shape}, "combine": combine}}))
    proc = snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "test.yaml"), str(cfg))
    for rule in ("bayesian_chain", "bayesian_model"):
        jobs = planned_inputs(proc.stdout, rule)
        delivered = [inp for out, inp in jobs.items() if out.startswith("results/delivered/")]
        train = [inp for out, inp in jobs.items() if not out.startswith("results/delivered/")]
        assert delivered and train, (rule, jobs)
        assert all(("results/model/diagnostics.json" in inp.split(", ")) == pinned for inp in delivered), delivered
        assert not any("results/model/diagnostics.json" in inp.split(", ") for inp in train), train
        assert all(("results/model/shape_choice.json" in inp.split(", ")) == pinned for inp in train), train
