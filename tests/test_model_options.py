"""Model options of the causal hurdle model (issue 7), recovered on simulated scenarios with known truth.

The R package bayeslift's functions are called through rpy2 on small rstanarm fits, reused across tests
through module-scoped fixtures (about 2-3 minutes in all on 2 cores). Tolerances: tests/model_constants.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from bayeslift.data import FeatureSpec
from bayeslift.simulate import CHANNELS, COLUMNS, SCENARIOS, simulate_history

from conftest import REPO
from model_constants import (ATE_ABS_TOL, CHAINS, FLEXIBLE_RMSE_SHARE, HORSESHOE_ITER, HORSESHOE_RMSE_SHARE, ITER,
                             LOO_MIN_DIFF, LOO_SE_MULT, MAX_OUTSIDE_SUPPORT, N_USERS, NO_EFFECT_HALF_WIDTH, PPC_P_BOUNDS,
                             CALIBRATION_BAND, OVER_COVERAGE_MIN, PSEUDO_BMA_NULL_WEIGHT_WITH_EFFECT, PSEUDO_BMA_NULL_WEIGHT_WITHOUT_EFFECT,
                             STACK_NULL_WEIGHT_WITH_EFFECT, STACK_NULL_WEIGHT_WITHOUT_EFFECT, SUBSAMPLE_N,
                             VARIATIONAL_DRAWS, NORMAL_SCALE_SPREAD_SHARE)

pytestmark = pytest.mark.rpy2
ro = pytest.importorskip("rpy2.robjects")

# Seeds of the simulated data sets (fixed: the checks are deterministic given the seed).
SEEDS = {"linear": 7, "nonlinear": 7, "no_effect": 3, "confounded": 5}


@pytest.fixture(scope="module")
def r(tmp_path_factory):
    ro.r("library(bayeslift)")  # internals as bayeslift:::name
    tmp = tmp_path_factory.mktemp("model_options")
    spec = FeatureSpec.from_columns(COLUMNS)
    spec.levels = {"channel": sorted(CHANNELS)}
    spec.to_json(tmp / "spec.json")
    truths = {}
    for name, seed in SEEDS.items():
        history, truth = simulate_history(N_USERS, seed=seed, scenario=name)
        history.to_csv(tmp / f"{name}.csv", index=False)
        truths[name] = truth
    ro.r(f"""
      mo_spec <- read_feature_spec("{tmp / 'spec.json'}")
      mo_data <- list()
      for (sc in c({", ".join(f'"{s}"' for s in SEEDS)})) mo_data[[sc]] <- read_prepared(file.path("{tmp}", paste0(sc, ".csv")), mo_spec)
      mo_fits <- list()
      mo_fit <- function(key, scenario, ..., fit_rows = NULL, iter = {ITER}) {{
        d <- mo_data[[scenario]]
        if (!is.null(fit_rows)) d <- d[fit_rows, , drop = FALSE]
        if (is.null(mo_fits[[key]]))
          mo_fits[[key]] <<- suppressWarnings(fit_causal_model(d, mo_spec, "rstanarm", chains = {CHAINS},
                                                               iter = iter, seed = 1, cores = 2, ...))
        mo_fits[[key]]
      }}
      mo_ate <- function(key, scenario) {{
        a <- ate_posterior(mo_fits[[key]], mo_data[[scenario]])
        list(mean = a$mean, q05 = a$q05, q95 = a$q95, uplift = a$uplift_mean, lower = a$uplift_q05, upper = a$uplift_q95)
      }}
    """)
    ro.r.mo_truths = truths  # keep a reference for debugging
    return {"r": ro.r, "truth": truths}


def fit(env, key, scenario, options=""):
    # np.array copies: np.asarray of an rpy2 vector is a view of R memory that R may collect and reuse.
    env["r"](f'invisible(mo_fit("{key}", "{scenario}"{", " + options if options else ""}))')
    out = env["r"](f'mo_ate("{key}", "{scenario}")')
    return {"mean": out[0][0], "q05": out[1][0], "q95": out[2][0], "uplift": np.array(out[3]),
            "lower": np.array(out[4]), "upper": np.array(out[5])}


def coverage(ate, true):
    """Share of users whose 90% uplift interval covers their true uplift."""
    return float(np.mean((ate["lower"] <= true) & (true <= ate["upper"])))


def check_ate(ate, truth):
    true_ate = truth["true_uplift"].mean()
    assert abs(ate["mean"] - true_ate) < ATE_ABS_TOL, (ate["mean"], true_ate)
    assert ate["q05"] <= true_ate <= ate["q95"], (ate["q05"], ate["q95"], true_ate)


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


@pytest.fixture(scope="module")
def linear_fits(r):
    return {"default": fit(r, "lin_default", "linear"), "flexible": fit(r, "lin_flexible", "linear", "flexible = TRUE")}


@pytest.fixture(scope="module")
def nonlinear_fits(r):
    return {"default": fit(r, "nl_default", "nonlinear"), "flexible": fit(r, "nl_flexible", "nonlinear", "flexible = TRUE")}


def test_default_model_recovers_linear_ate(r, linear_fits):
    check_ate(linear_fits["default"], r["truth"]["linear"])


def test_flexible_model_recovers_nonlinear_effect(r, nonlinear_fits):
    truth = r["truth"]["nonlinear"]
    check_ate(nonlinear_fits["flexible"], truth)
    flexible = rmse(nonlinear_fits["flexible"]["uplift"], truth["true_uplift"])
    linear = rmse(nonlinear_fits["default"]["uplift"], truth["true_uplift"])
    assert flexible <= FLEXIBLE_RMSE_SHARE * linear, (flexible, linear)


def select(r, scenario):
    out = r["r"](f"""local({{
      s <- select_model_by_loo(list(default = mo_fits[["{scenario}_default"]], flexible = mo_fits[["{scenario}_flexible"]]),
                               se_mult = {LOO_SE_MULT}, min_diff = {LOO_MIN_DIFF})
      list(chosen = s$chosen, diff = s$table$elpd_diff, se_diff = s$table$se_diff)
    }})""")
    return out[0][0], list(out[1]), list(out[2])


def test_loo_picks_flexible_model_on_nonlinear_scenario(r, nonlinear_fits):
    chosen, diff, se = select(r, "nl")
    assert chosen == "flexible", (diff, se)


def test_loo_picks_simple_model_on_linear_scenario(r, linear_fits):
    chosen, diff, se = select(r, "lin")
    assert chosen == "default", (diff, se)


def test_normal_shrinkage_of_interactions_recovers_ate(r):
    check_ate(fit(r, "lin_normal", "linear", 'shrinkage = "normal"'), r["truth"]["linear"])


def test_tighter_normal_shrinkage_scale_pulls_users_toward_the_average_effect(r):
    # No true heterogeneity: a smaller prior sd of the treatment x feature terms (model.effect.shrinkage_scale)
    # must shrink the spread of per-user uplift and its error, and leave the average effect alone.
    truth = r["truth"]["no_effect"]["true_uplift"]
    wide = fit(r, "none_normal_wide", "no_effect", 'shrinkage = "normal", shrinkage_scale = 0.5')
    tight = fit(r, "none_normal_tight", "no_effect", 'shrinkage = "normal", shrinkage_scale = 0.1')
    check_ate(tight, r["truth"]["no_effect"])
    spread = [float(np.std(a["uplift"] - a["mean"])) for a in (wide, tight)]
    assert spread[1] < NORMAL_SCALE_SPREAD_SHARE * spread[0], spread
    assert rmse(tight["uplift"], truth) < rmse(wide["uplift"], truth), (rmse(tight["uplift"], truth), rmse(wide["uplift"], truth))


@pytest.mark.parametrize("configured, expected", [("0.05", 0.05), ("NULL", 0.1)])
def test_config_shrinkage_scale_sets_the_interaction_prior(r, configured, expected):
    # model.effect.shrinkage_scale goes from the config's model section to the prior of every treatment x feature
    # term of both parts, main effects keeping 2.5; null leaves rstanarm's default, 0.1.
    out = r["r"](f"""local({{
      m <- list(backend = "rstanarm", inference = list(seed = 1, iter = 200, adapt_delta = 0.95, algorithm = "sampling"),
                effect = list(shape = "linear", shrinkage = "normal", shrinkage_scale = {configured}))
      fit <- suppressWarnings(fit_candidates(mo_data[["no_effect"]][1:600, ], mo_spec, m, chain = 1))$model
      lapply(list(fit$buy, fit$amount), function(part)
        split(rstanarm::prior_summary(part)$prior$scale, grepl(":", names(part$coefficients)[-1], fixed = TRUE)))
    }})""")
    for part in out:  # per part: prior sds of main effects (FALSE) and of interactions (TRUE)
        assert set(np.array(part.rx2("FALSE"))) == {2.5}
        assert len(part.rx2("TRUE")) == 6 and set(np.array(part.rx2("TRUE"))) == {expected}


@pytest.mark.parametrize("configured, expected_df", [("5", 5), ("NULL", 3)])
def test_config_spline_df_sizes_the_flexible_candidate_only(r, configured, expected_df):
    # model.effect.spline_df reaches the splines of shape auto's flexible candidate (null: fit_causal_model()'s 3);
    # the plain candidate stays linear. Per numeric feature with splines: df columns, and as many again
    # interacting with the treatment, in each part.
    out = r["r"](f"""local({{
      m <- list(backend = "rstanarm", inference = list(seed = 1, iter = 200, adapt_delta = 0.95, algorithm = "sampling"),
                effect = list(shape = "auto", spline_df = {configured}), combine = "pick")
      fits <- suppressWarnings(fit_candidates(mo_data[["nonlinear"]][1:600, ], mo_spec, m, chain = 1))
      n_spline <- function(part) sum(grepl("splines::ns(", names(part$coefficients), fixed = TRUE))
      list(smooth = length(bayeslift:::spline_features(mo_data[["nonlinear"]][1:600, ], mo_spec)),
           flexible = sapply(list(fits$flexible$buy, fits$flexible$amount), n_spline),
           default = sapply(list(fits$default$buy, fits$default$amount), n_spline))
    }})""")
    smooth = int(out.rx2("smooth")[0])
    assert smooth >= 2
    assert list(np.array(out.rx2("flexible"))) == [2 * smooth * expected_df] * 2
    assert list(np.array(out.rx2("default"))) == [0, 0]


def test_horseshoe_on_no_effect_scenario_covers_zero(r):
    ate = fit(r, "none_hs", "no_effect", f'shrinkage = "horseshoe", iter = {HORSESHOE_ITER}')
    assert ate["q05"] <= 0.0 <= ate["q95"], ate
    assert (ate["q95"] - ate["q05"]) / 2 < NO_EFFECT_HALF_WIDTH, ate
    assert abs(ate["mean"]) < ATE_ABS_TOL


def test_horseshoe_shrinks_heterogeneity_but_not_the_average_effect(r, linear_fits):
    truth = r["truth"]["linear"]
    hs = fit(r, "lin_hs", "linear", f'shrinkage = "horseshoe", iter = {HORSESHOE_ITER}')
    check_ate(hs, truth)  # arm intercepts carry the ATE outside the horseshoe
    buy_terms = r["r"]('rownames(mo_fits[["lin_hs"]]$buy$stan_summary)')
    assert {"b[(Intercept) campaign:0]", "b[(Intercept) campaign:1]"} <= set(buy_terms), list(buy_terms)
    per_user = rmse(hs["uplift"], truth["true_uplift"])
    default = rmse(linear_fits["default"]["uplift"], truth["true_uplift"])
    assert per_user <= HORSESHOE_RMSE_SHARE * default, (per_user, default)


def test_propensity_covariate_recovers_ate_on_confounded_data(r):
    truth = r["truth"]["confounded"]
    assert "true_propensity" in truth
    ate = fit(r, "conf_ps", "confounded", "propensity = TRUE")
    check_ate(ate, truth)
    out = r["r"]("""local({ o <- mo_fits[["conf_ps"]]$overlap
      c(o$share_outside_support, o$std_mean_diff_logit, o$treated$min, o$control$max, length(o$warnings)) })""")
    outside, smd, _, _, n_warnings = list(out)
    assert outside < MAX_OUTSIDE_SUPPORT and n_warnings == 0
    assert smd > 0.3  # treated users have clearly higher scores: the confounding is seen


def test_overlap_diagnostics_warn_without_overlap(r):
    out = r["r"]("""local({
      set.seed(1); t <- rep(0:1, each = 200)
      ps <- ifelse(t == 1, runif(400, 0.9, 0.999), runif(400, 0.001, 0.1))
      w <- NULL
      o <- withCallingHandlers(bayeslift:::propensity_overlap(ps, t), warning = function(w_) { w <<- conditionMessage(w_); invokeRestart("muffleWarning") })
      list(o$share_outside_support, o$share_extreme, length(o$warnings), w)
    })""")
    assert out[0][0] > 0.5 and out[1][0] > 0.3 and out[2][0] == 2
    assert "propensity overlap" in out[3][0]


def test_posterior_predictive_checks_pass_on_a_well_specified_fit(r, linear_fits):
    out = r["r"]('bayeslift:::posterior_predictive_checks(mo_fits[["lin_default"]], mo_data[["linear"]], ndraws = 100)')
    stats = list(out.rx2("stat"))
    p = np.array(out.rx2("p_value"))
    observed = np.array(out.rx2("observed"))
    assert {"share_zero", "mean", "buyer_q90", "q99"} <= set(stats)
    assert observed[stats.index("share_zero")] == pytest.approx(0.857, abs=0.05)
    assert np.all((p >= PPC_P_BOUNDS[0]) & (p <= PPC_P_BOUNDS[1])), dict(zip(stats, p))


def test_default_fit_has_every_option_off_and_predicts_draws_by_users(r, linear_fits):
    out = r["r"]("""local({
      m <- mo_fits[["lin_default"]]
      c(identical(m$options, list(flexible = FALSE, shrinkage = "none", propensity = FALSE, effect = TRUE)),
        is.null(m$propensity_model), all(dim(expected_outcome(m, mo_data$linear[1:5, ])) == c(500, 5)))
    })""")
    assert all(out)


def test_variational_fit_recovers_linear_ate_and_reports_pareto_k(r, linear_fits):
    check_ate(fit(r, "lin_fullrank", "linear", 'algorithm = "fullrank"'), r["truth"]["linear"])
    out = r["r"]("""local({ m <- mo_fits[["lin_fullrank"]]; v <- bayeslift:::variational_diagnostics(m)
      list(bayeslift:::is_variational(m), v$parts$buy$pareto_k, v$parts$amount$pareto_k, v$parts$buy$n_draws,
           length(bayeslift:::variational_problems(v, pareto_k_max = Inf)), length(bayeslift:::variational_problems(v, pareto_k_max = 0)),
           bayeslift:::is_variational(mo_fits[["lin_default"]])) })""")
    variational, k_buy, k_amount, n_draws, none, every, default_variational = (x[0] for x in out)
    assert variational and not default_variational
    assert np.isfinite(k_buy) and np.isfinite(k_amount) and n_draws == VARIATIONAL_DRAWS
    assert none == 0 and every == 2


def test_fit_on_stratified_subsample_recovers_ate_of_every_user(r):
    out = r["r"](f"""local({{
      d <- mo_data[["linear"]]
      rows <- bayeslift:::stratified_subsample(cbind(d, bl_row = seq_len(nrow(d))), mo_spec, {SUBSAMPLE_N}, seed = 1)$bl_row
      set.seed(42); before <- .Random.seed
      again <- bayeslift:::stratified_subsample(cbind(d, bl_row = seq_len(nrow(d))), mo_spec, {SUBSAMPLE_N}, seed = 1)$bl_row
      key <- function(x) paste(x[[mo_spec$treatment]], x[[mo_spec$outcome]] > 0)
      list(rows = rows, same = identical(rows, again), rng_kept = identical(before, .Random.seed),
           full = as.numeric(table(key(d))), sub = as.numeric(table(key(d[rows, ]))))
    }})""")
    rows = np.array(out.rx2("rows"), dtype=int)
    assert len(rows) == SUBSAMPLE_N and len(set(rows)) == SUBSAMPLE_N and np.all(np.diff(rows) > 0)
    assert out.rx2("same")[0] and out.rx2("rng_kept")[0]
    full, sub = np.array(out.rx2("full")), np.array(out.rx2("sub"))
    assert np.all(np.abs(sub - full * SUBSAMPLE_N / N_USERS) < 1)  # proportional: arm x buying strata
    ro.globalenv["mo_sub_rows"] = ro.IntVector(rows.tolist())
    ate = fit(r, "lin_sub", "linear", "fit_rows = mo_sub_rows")  # ATE over all users (mo_ate)
    check_ate(ate, r["truth"]["linear"])
    assert len(ate["uplift"]) == N_USERS


def test_scenarios_are_all_named():
    assert set(SCENARIOS) == {"linear", "nonlinear", "no_effect", "probability_only", "amount_only", "confounded",
                              "heavy_tail"}


def test_stack_draw_rows_split_draws_by_weight(r):
    sizes = r["r"]("lengths(bayeslift:::stack_draw_rows(1000, c(0.5, 0.3, 0.2), c(1000, 1000, 1000)))")
    assert list(sizes) == [500, 300, 200]
    sizes = r["r"]("lengths(bayeslift:::stack_draw_rows(10, c(0.26, 0.26, 0.48), c(10, 10, 10)))")  # largest remainders
    assert list(sizes) == [3, 2, 5]
    rows = r["r"]("bayeslift:::stack_draw_rows(4, c(0.5, 0.5), c(400, 400))")
    assert list(rows[0]) == [1, 400] and list(rows[1]) == [1, 400]  # spread over every chain's draws


def stack(r, key, members, scenario):
    """Stack fitted models by LOO; the weights and the stack's ATE, and the share of uplift draws that are
    exactly 0 (those come from the no-effect member)."""
    out = r["r"](f"""local({{
      s <- stack_models(mo_fits[c({", ".join(f'"{m}"' for m in members)})])
      mo_fits[["{key}"]] <<- s
      d <- counterfactual_draws(s, mo_data[["{scenario}"]])
      list(s$all_weights, mean(apply(d$treated - d$control, 1, function(u) all(u == 0))))
    }})""")
    out_ate = r["r"](f'mo_ate("{key}", "{scenario}")')
    ate = {"mean": out_ate[0][0], "q05": out_ate[1][0], "q95": out_ate[2][0], "uplift": np.array(out_ate[3])}
    return dict(zip(members, np.array(out[0]))), float(out[1][0]), ate


def test_stack_with_no_effect_model_recovers_a_real_effect(r, linear_fits):
    fit(r, "lin_null", "linear", "effect = FALSE")
    weights, zero_share, ate = stack(r, "lin_stack", ["lin_null", "lin_default"], "linear")
    assert weights["lin_null"] < STACK_NULL_WEIGHT_WITH_EFFECT, weights
    assert zero_share == pytest.approx(weights["lin_null"] if weights["lin_null"] >= 0.01 else 0.0, abs=0.01)
    check_ate(ate, r["truth"]["linear"])


def test_stack_with_no_effect_model_covers_zero_without_effect(r):
    fit(r, "none_null", "no_effect", "effect = FALSE")
    default = fit(r, "none_default", "no_effect")
    weights, zero_share, ate = stack(r, "none_stack", ["none_null", "none_default"], "no_effect")
    assert weights["none_null"] > STACK_NULL_WEIGHT_WITHOUT_EFFECT, weights
    assert zero_share == pytest.approx(weights["none_null"], abs=0.01)  # the mixture really mixes
    assert ate["q05"] <= 0.0 <= ate["q95"], ate
    # per-user error against the true uplift (0) falls with the no-effect member's weight
    assert rmse(ate["uplift"], 0) < rmse(default["uplift"], 0), (rmse(ate["uplift"], 0), rmse(default["uplift"], 0))


def test_pseudo_bma_weighs_whole_model_evidence(r, linear_fits):
    """Pseudo-BMA+ weights of the no-effect and default models: near 0 for the no-effect model where the effect is
    real (below stacking's weight), most of the weight where there is none; reproducible without touching the
    session's RNG; the mixture's ATE recovers the truth."""
    fit(r, "lin_null", "linear", "effect = FALSE")
    fit(r, "none_null", "no_effect", "effect = FALSE")
    fit(r, "none_default", "no_effect")
    out = r["r"]("""local({
      w <- function(m, method) stack_weights_by_loo(mo_fits[m], method)
      set.seed(5); before <- .Random.seed
      lin <- w(c("lin_null", "lin_default"), "pseudo_bma"); again <- w(c("lin_null", "lin_default"), "pseudo_bma")
      kept <- identical(before, .Random.seed)
      mo_fits[["lin_bma"]] <<- stack_models(mo_fits[c("lin_null", "lin_default")], lin)
      none <- w(c("none_null", "none_default"), "pseudo_bma")
      mo_fits[["none_bma"]] <<- stack_models(mo_fits[c("none_null", "none_default")], none)
      list(lin[["lin_null"]], w(c("lin_null", "lin_default"), "stack")[["lin_null"]], identical(lin, again), kept,
           none[["none_null"]])
    })""")
    lin_null, lin_null_stacking, same, rng_kept, none_null = (x[0] for x in out)
    assert same and rng_kept
    assert lin_null < min(PSEUDO_BMA_NULL_WEIGHT_WITH_EFFECT, lin_null_stacking), (lin_null, lin_null_stacking)
    assert none_null > PSEUDO_BMA_NULL_WEIGHT_WITHOUT_EFFECT, none_null
    check_ate(fit(r, "lin_bma", "linear"), r["truth"]["linear"])  # cached: the mixture's ATE
    none = fit(r, "none_bma", "no_effect")
    assert none["q05"] <= 0.0 <= none["q95"], none


def test_interval_calibration_narrows_horseshoe_intervals_to_the_nominal_level(r):
    """The horseshoe keeps wide per-user intervals where the true heterogeneity is sparse (linear scenario): they
    cover nearly every user. The parametric-bootstrap calibration (refit on outcomes simulated from the fitted
    model) must find a scale below 1 and bring the coverage of the true per-user uplift into the band; medians
    stay, half-widths are multiplied by the scale, and the ATE interval is the posterior's."""
    hs = fit(r, "lin_hs", "linear", f'shrinkage = "horseshoe", iter = {HORSESHOE_ITER}')
    scale = r["r"](f"""local({{
      refit <- function(d) suppressWarnings(fit_causal_model(d, mo_spec, "rstanarm", chains = {CHAINS},
                                                             iter = {HORSESHOE_ITER}, seed = 1, cores = 2, shrinkage = "horseshoe"))
      cal <- calibrate_uplift_intervals(mo_fits[["lin_hs"]], mo_data[["linear"]], refit, replicates = 1, seed = 3)
      mo_fits[["lin_hs_cal"]] <<- mo_fits[["lin_hs"]]
      mo_fits[["lin_hs_cal"]]$interval_calibration <<- cal
      cal$scale
    }})""")[0]
    cal = fit(r, "lin_hs_cal", "linear")
    truth = r["truth"]["linear"]["true_uplift"].to_numpy()
    before, after = coverage(hs, truth), coverage(cal, truth)
    # One seed's coverage before calibration differs by machine (0.952 on one, above 0.97 on another), so the
    # over-coverage is asserted against the nominal 0.90 with that spread as margin; the rest holds by construction
    # (scaling half-widths by a scale below 1 around fixed medians can only lower coverage).
    assert before > OVER_COVERAGE_MIN and scale < 1, (before, scale)
    assert after <= before, (before, after, scale)
    assert CALIBRATION_BAND[0] <= after <= CALIBRATION_BAND[1], (before, after, scale)
    assert (hs["q05"], hs["q95"]) == (cal["q05"], cal["q95"])  # the ATE is not calibrated
