# An estimated propensity score as a covariate (observational data), with overlap diagnostics. Derived
# covariates are recomputed for new users by add_option_covariates(), which every prediction goes through
# (model_newdata()), so counterfactuals and scoring stay consistent with the fit.

# Estimate P(treated | features) by logistic regression on model-scale data. Returns list(coef, terms (without
# data; environment reset so the model saves small), xlevels, fitted (the propensity of every row of `data`)).
fit_propensity <- function(data, spec) {
  f <- stats::as.formula(paste(spec$treatment, "~", paste(c(spec$numeric, spec$categorical), collapse = " + ")))
  g <- suppressWarnings(stats::glm(f, family = stats::binomial(), data = data))
  tt <- stats::delete.response(stats::terms(g))
  attr(tt, ".Environment") <- globalenv()
  list(coef = stats::coef(g), terms = tt, xlevels = g$xlevels, fitted = unname(stats::fitted(g)))
}

# Propensity of new rows from fit_propensity()'s result.
predict_propensity <- function(ps_model, data) {
  X <- stats::model.matrix(ps_model$terms, stats::model.frame(ps_model$terms, data, xlev = ps_model$xlevels))
  b <- ps_model$coef
  b[is.na(b)] <- 0
  as.vector(stats::plogis(X[, names(b), drop = FALSE] %*% b))
}

# Overlap (common support) diagnostics of estimated propensity scores `ps` of users with 0/1 `treatment`.
# Scores outside `bounds` are "extreme"; more than `max_extreme_share` extreme or outside the other arm's range
# is warned about. Returns per arm n, min, q01, median, q99, max; common_support, share_outside_support,
# share_extreme, std_mean_diff_logit and the warnings (character).
propensity_overlap <- function(ps, treatment, bounds = c(0.05, 0.95), max_extreme_share = 0.05, warn = TRUE) {
  t <- as.integer(treatment)
  arm <- function(v) c(n = length(v), min = min(v), q01 = unname(stats::quantile(v, 0.01)),
                       median = stats::median(v), q99 = unname(stats::quantile(v, 0.99)), max = max(v))
  treated <- arm(ps[t == 1])
  control <- arm(ps[t == 0])
  support <- c(max(treated[["min"]], control[["min"]]), min(treated[["max"]], control[["max"]]))
  outside <- ps < support[1] | ps > support[2]
  extreme <- ps < bounds[1] | ps > bounds[2]
  lg <- stats::qlogis(pmin(pmax(ps, 1e-6), 1 - 1e-6))
  smd <- (mean(lg[t == 1]) - mean(lg[t == 0])) / sqrt((stats::var(lg[t == 1]) + stats::var(lg[t == 0])) / 2)
  warnings <- character(0)
  if (mean(extreme) > max_extreme_share)
    warnings <- c(warnings, sprintf("%.1f%% of users have a propensity outside [%.2f, %.2f]: the arms barely overlap there",
                                    100 * mean(extreme), bounds[1], bounds[2]))
  if (mean(outside) > max_extreme_share)
    warnings <- c(warnings, sprintf("%.1f%% of users lie outside the common support [%.3f, %.3f] of the two arms",
                                    100 * mean(outside), support[1], support[2]))
  if (warn) for (w in warnings) warning("propensity overlap: ", w, call. = FALSE)
  list(treated = as.list(treated), control = as.list(control), common_support = support,
       share_outside_support = mean(outside), share_extreme = mean(extreme), std_mean_diff_logit = smd,
       warnings = warnings)
}

# Add the covariates a model's options derive from the features: the propensity score (logit) and the arm
# factor. A no-op for a model without options.
add_option_covariates <- function(model, data) {
  opts <- model$options
  if (is.null(opts)) return(data)
  if (isTRUE(opts$propensity)) {
    ps <- predict_propensity(model$propensity_model, data)
    data[[OPTION_PSCORE]] <- stats::qlogis(pmin(pmax(ps, 0.01), 0.99))
  }
  if (isTRUE(opts$arm_factor)) data[[OPTION_ARM]] <- factor(as.integer(data[[model$spec$treatment]]), levels = c(0L, 1L))
  data
}
