"""Binary and Gaussian outcomes (issue 7): R recovers the true effect, the surrogate follows the type.

Each type runs the pipeline's own functions on a small simulated history with known truth: Python
prepares it (spec with ``outcome_type``), R fits rstanarm (logistic / linear regression with treatment
interactions) and exports the counterfactual tables (checked against the boundary schema), then the
package trains the surrogate on them. Tolerances are in tests/model_constants.py.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayeslift.prepare import prepare_training_data
from bayeslift.scoring import UpliftScorer
from bayeslift.simulate import columns_for, simulate_history, simulate_new_users
from bayeslift.surrogate import SurrogateConfig, train_surrogate_model

from conftest import REPO
from model_constants import CHAINS, ITER, N_USERS, OUTCOME_ATE_ABS_TOL, OUTCOME_SURROGATE_R2

pytestmark = pytest.mark.rpy2
ro = pytest.importorskip("rpy2.robjects")

SEED = 11


@pytest.fixture(scope="module", params=["binary", "gaussian"])
def fitted(request, tmp_path_factory):
    kind = request.param
    tmp = tmp_path_factory.mktemp(kind)
    history, truth = simulate_history(N_USERS, seed=SEED, scenario=kind)
    history.to_csv(tmp / "history.csv", index=False)
    spec = prepare_training_data(tmp / "history.csv", columns_for(kind), 0.3, 1, tmp / "train.csv",
                                 tmp / "holdout.csv", tmp / "spec.json")
    ro.r('options(browser = "false")')
    ro.r("library(bayeslift)")
    out = ro.r(f"""
      local({{
        spec <- read_feature_spec("{tmp / 'spec.json'}")
        train <- read_prepared("{tmp / 'train.csv'}", spec); train$split <- "train"
        holdout <- read_prepared("{tmp / 'holdout.csv'}", spec); holdout$split <- "holdout"
        model <- suppressWarnings(fit_causal_model(train, spec, "rstanarm", chains = {CHAINS}, iter = {ITER},
                                                   seed = 1, cores = 2))
        users <- rbind(train, holdout)
        cf <- export_counterfactuals(model, users)
        schema <- "{REPO / 'python' / 'bayeslift' / 'boundary.yaml'}"
        check_boundary_table(cf$labels, "surrogate_labels", spec, "labels", schema)
        write_csv_atomic(cf$train_data, "{tmp / 'train_data.csv'}")
        write_csv_atomic(cf$labels, "{tmp / 'labels.csv'}")
        write_csv_atomic(cf$uplift, "{tmp / 'uplift.csv'}")
        a <- ate_posterior(model, users)
        list(ate = c(a$mean, a$q05, a$q95), ids = as.character(users[[spec$id]]),
             problems = diagnostic_problems(model_diagnostics(model), rhat_max = 1.05, ess_bulk_min = 100,
                                            ess_tail_min = 100),
             parts = names(bayeslift:::model_stanfits(model)))
      }})
    """)
    ids = np.array(out.rx2("ids")).astype(np.int64)
    manifest = train_surrogate_model(tmp / "train_data.csv", tmp / "labels.csv", tmp / "uplift.csv", tmp / "spec.json",
                                     tmp / "surrogate", SurrogateConfig(epochs=150), threads=1)
    return {
        "kind": kind, "spec": spec, "truth": truth.set_index("customer_id").loc[ids], "manifest": manifest,
        "ate": list(out.rx2("ate")), "problems": list(out.rx2("problems")), "parts": list(out.rx2("parts")),
        "surrogate": tmp / "surrogate", "dir": tmp,
    }


def test_spec_and_model_follow_the_outcome_type(fitted):
    assert fitted["spec"].outcome_type == fitted["kind"]
    assert fitted["parts"] == ["outcome"]  # one regression, not the two-part hurdle
    assert fitted["problems"] == []


def test_true_ate_recovered_and_covered(fitted):
    mean, q05, q95 = fitted["ate"]
    true_ate = fitted["truth"]["true_uplift"].mean()
    assert abs(mean - true_ate) < OUTCOME_ATE_ABS_TOL[fitted["kind"]], (mean, true_ate)
    assert q05 <= true_ate <= q95, (q05, q95, true_ate)


def test_surrogate_follows_the_type(fitted):
    assert fitted["manifest"]["fidelity"]["holdout"]["r2_uplift"] > OUTCOME_SURROGATE_R2
    users, _ = simulate_new_users(2000, seed=SEED + 1, scenario=fitted["kind"])
    pred = UpliftScorer.load(fitted["surrogate"]).predict(users)
    treated, control = pred["spend_if_treated"].to_numpy(), pred["spend_if_control"].to_numpy()
    np.testing.assert_allclose(pred["uplift"], treated - control, atol=1e-12)
    if fitted["kind"] == "binary":  # probabilities, and uplift a difference of probabilities
        assert ((treated > 0) & (treated < 1) & (control > 0) & (control < 1)).all()
    else:  # an unbounded outcome: the surrogate is not tied to positive values
        assert pd.Series(treated).between(-50, 50).all()


def test_model_options_fit_the_type(fitted):
    # The pipeline's options on a binary / Gaussian outcome: effect shape auto (PSIS-LOO between the linear model
    # and the same with splines), shrinkage: normal, spline_df 5, through fit_configured_model() as the
    # pipeline's rules call it. One regression, the interaction prior in place, the true ATE recovered.
    tmp = fitted["dir"]
    out = ro.r(f"""
      local({{
        spec <- read_feature_spec("{tmp / 'spec.json'}")
        train <- read_prepared("{tmp / 'train.csv'}", spec)
        users <- rbind(train, read_prepared("{tmp / 'holdout.csv'}", spec))
        m <- list(backend = "rstanarm", inference = list(chains = {CHAINS}, iter = {ITER}, seed = 1, adapt_delta = 0.95,
                  algorithm = "sampling"), effect = list(shape = "auto", shrinkage = "normal", spline_df = 5), combine = "pick")
        model <- suppressWarnings(fit_configured_model(train, spec, m, cores = 2))
        a <- ate_posterior(model, users)
        scales <- rstanarm::prior_summary(model$outcome)$prior$scale
        inter <- grepl(":", names(model$outcome$coefficients)[-1], fixed = TRUE)
        list(ate = c(a$mean, a$q05, a$q95), parts = names(bayeslift:::model_stanfits(model)), chosen = model$selection$chosen,
             interaction_scales = unique(scales[inter]), ids = as.character(users[[spec$id]]),
             problems = diagnostic_problems(model_diagnostics(model), rhat_max = 1.05, ess_bulk_min = 100,
                                            ess_tail_min = 100))
      }})
    """)
    assert list(out.rx2("parts")) == ["outcome"]
    assert out.rx2("chosen")[0] in ("default", "flexible")
    assert list(np.array(out.rx2("interaction_scales"))) == [0.1]
    assert list(out.rx2("problems")) == []
    mean, q05, q95 = np.array(out.rx2("ate"))
    ids = np.array(out.rx2("ids")).astype(np.int64)
    true_ate = fitted["truth"].loc[ids, "true_uplift"].mean()
    assert abs(mean - true_ate) < OUTCOME_ATE_ABS_TOL[fitted["kind"]], (mean, true_ate)
    assert q05 <= true_ate <= q95, (q05, q95, true_ate)
