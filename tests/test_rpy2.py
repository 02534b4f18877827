"""Cross-language tests: R's model functions called from Python through rpy2."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayeslift.boundary import SCHEMA_PATH, check_table
from bayeslift.data import DataValidationError, FeatureSpec
from bayeslift.prepare import read_prepared
from bayeslift.scoring import UpliftScorer
from bayeslift.surrogate.train import r_squared

from conftest import REPO
from constants import R_RECOMPUTE_RTOL, TINY_SURROGATE_R2

pytestmark = pytest.mark.rpy2
ro = pytest.importorskip("rpy2.robjects")
from rpy2.robjects import pandas2ri  # noqa: E402
from rpy2.robjects.conversion import localconverter  # noqa: E402


@pytest.fixture(scope="module")
def r():
    ro.r("library(bayeslift)")
    return ro.r


def r_uplift_means(r, fit_path, users_path, spec_path, n=None):
    """Posterior-mean spend per arm computed in R, via rpy2, for the users of a prepared split."""
    out = r(f"""
      local({{
        spec <- read_feature_spec("{spec_path}")
        users <- read_prepared("{users_path}", spec)
        {"" if n is None else f"users <- users[seq_len({n}), ]"}
        draws <- counterfactual_draws(readRDS("{fit_path}"), users)
        list(ids = as.character(users[[spec$id]]), treated = colMeans(draws$treated),
             control = colMeans(draws$control), n_draws = nrow(draws$treated))
      }})""")
    return {"ids": list(out[0]), "treated": np.array(out[1]), "control": np.array(out[2]), "n_draws": int(out[3][0])}


def test_exported_prob_profit_is_the_share_of_draws_with_a_profit(r):
    """export_counterfactuals' prob_profit, chunk by chunk, against P(margin * uplift - cost > 0) from the draws."""
    margin, cost = 0.3, 1.0
    out = r(f"""
      local({{
        set.seed(3)
        n_draws <- 400L; n_users <- 7L
        treated <- matrix(stats::rexp(n_draws * n_users, 0.2), n_draws, n_users)
        control <- matrix(stats::rexp(n_draws * n_users, 0.25), n_draws, n_users)
        # No fit needed: the export reads the draws through counterfactual_draws(), swapped for fixed ones.
        fixed_draws <- function(model, users) list(treated = treated[, users$customer_id, drop = FALSE],
                                                   control = control[, users$customer_id, drop = FALSE])
        export <- export_counterfactuals
        environment(export) <- list2env(list(counterfactual_draws = fixed_draws), parent = environment(export))
        spec <- list(id = "customer_id", numeric = "x", categorical = character(0))
        users <- data.frame(customer_id = seq_len(n_users), x = 0, split = "holdout")
        up <- export(list(spec = spec), users, chunk_size = 3L, margin = {margin}, cost = {cost})$uplift
        list(prob_profit = up$prob_profit, prob_positive = up$prob_positive, treated = treated, control = control)
      }})""")
    uplift = np.array(out[2]) - np.array(out[3])
    np.testing.assert_array_equal(np.array(out[0]), np.mean(margin * uplift - cost > 0, axis=0))
    np.testing.assert_array_equal(np.array(out[1]), np.mean(uplift > 0, axis=0))
    assert 0 < np.array(out[0]).min() and np.array(out[0]).max() < 1  # the check is not vacuous


def test_r_recomputes_what_the_counterfactuals_rule_wrote(r, tiny_pipeline):
    res = tiny_pipeline / "results"
    got = r_uplift_means(r, res / "model/fit.rds", res / "prepared/holdout.csv", res / "prepared/feature_spec.json", n=25)
    labels = pd.read_csv(res / "counterfactuals/surrogate_labels.csv", dtype={"customer_id": str})
    by_arm = labels.pivot(index="customer_id", columns="received_campaign", values="spend_mean").loc[got["ids"]]
    np.testing.assert_allclose(got["treated"], by_arm[1], rtol=R_RECOMPUTE_RTOL)
    np.testing.assert_allclose(got["control"], by_arm[0], rtol=R_RECOMPUTE_RTOL)
    assert got["n_draws"] == 500  # 2 chains x (500 iter - 250 warmup)


def test_surrogate_matches_r_posterior_on_heldout_users(r, tiny_pipeline):
    res = tiny_pipeline / "results"
    got = r_uplift_means(r, res / "model/fit.rds", res / "prepared/holdout.csv", res / "prepared/feature_spec.json")
    spec = FeatureSpec.from_json(res / "prepared/feature_spec.json")
    holdout = read_prepared(res / "prepared/holdout.csv", spec)
    pred = UpliftScorer.load(res / "surrogate").score_frame(holdout)
    assert pred["customer_id"].astype(str).tolist() == got["ids"]
    r_uplift = got["treated"] - got["control"]
    assert r_squared(r_uplift, pred["uplift"].to_numpy()) >= TINY_SURROGATE_R2


def test_tiny_seeded_fit_through_rpy2_is_reproducible(r, tiny_pipeline):
    res = tiny_pipeline / "results"
    train = pd.read_csv(res / "prepared/train.csv").head(300)
    with localconverter(ro.default_converter + pandas2ri.converter):
        r_train = ro.conversion.get_conversion().py2rpy(train)
    ro.globalenv["py_train"] = r_train
    out = r(f"""
      local({{
        spec <- read_feature_spec("{res / 'prepared/feature_spec.json'}")
        fit <- function() fit_causal_model(py_train, spec, "rstanarm", chains = 2, iter = 300, seed = 5)
        a <- expected_outcome(fit(), py_train[1:10, ])
        b <- expected_outcome(fit(), py_train[1:10, ])
        c(identical(a, b), dim(a), all(a > 0))
      }})""")
    identical, n_draws, n_users, positive = list(out)
    assert identical and positive
    assert (n_draws, n_users) == (300, 10)


BAD_LABEL_EDITS = {
    "good": lambda f: f,
    "missing_value": lambda f: f.assign(spend_mean=f["spend_mean"].where(f.index != 4)),
    "negative_spend": lambda f: f.assign(spend_q05=f["spend_q05"].where(f.index != 6, -1.0)),
    "arm_out_of_range": lambda f: f.assign(received_campaign=f["received_campaign"].where(f.index != 2, 2)),
    "not_a_number": lambda f: f.assign(spend_median=f["spend_median"].astype(object).where(f.index != 8, "abc")),
    "fractional_arm": lambda f: f.assign(received_campaign=f["received_campaign"].astype(float).where(f.index != 3, 0.5)),
    "wrong_order": lambda f: f[["customer_id", "received_campaign", "spend_median", "spend_mean", "spend_q05", "spend_q95"]],
    "missing_column": lambda f: f.drop(columns=["spend_q95"]),
}


@pytest.mark.parametrize("case", sorted(BAD_LABEL_EDITS))
def test_r_and_python_schema_checks_agree(r, tiny_pipeline, tmp_path, case):
    res = tiny_pipeline / "results"
    spec = FeatureSpec.from_json(res / "prepared/feature_spec.json")
    labels = pd.read_csv(res / "counterfactuals/surrogate_labels.csv").head(20)
    path = tmp_path / f"{case}.csv"
    BAD_LABEL_EDITS[case](labels).to_csv(path, index=False)

    py_error = None
    try:
        check_table(pd.read_csv(path), "surrogate_labels", spec, str(path))
    except DataValidationError as exc:
        py_error = str(exc)
    r_error = r(f"""
      tryCatch({{
        spec <- read_feature_spec("{res / 'prepared/feature_spec.json'}")
        frame <- as.data.frame(data.table::fread("{path}"))
        check_boundary_table(frame, "surrogate_labels", spec, "{path}", "{SCHEMA_PATH}")
        ""
      }}, error = function(e) conditionMessage(e))""")[0]
    assert (py_error is None) == (r_error == ""), (py_error, r_error)
    if case == "good":
        return
    # Same verdict, and both name the same column and lines.
    assert py_error.split(" at ")[-1] == r_error.split(" at ")[-1] or "columns must be" in py_error
    column = py_error.split("column '")[1].split("'")[0] if "column '" in py_error else None
    if column:
        assert f"column '{column}'" in r_error
