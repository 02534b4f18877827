# Back-end: a one-part rstanarm model of a binary outcome (logistic: expected outcomes are probabilities,
# uplift a difference in probabilities) or a Gaussian one (linear), with the right-hand side and prior a
# hurdle part would get. Class c("bayeslift_rstanarm_outcome", "bayeslift_rstanarm", "bayeslift_model").

# Fitter registered for rstanarm x binary and rstanarm x gaussian (backend_fitter()).
fit_rstanarm_outcome <- function(d, spec, options, extra, settings) {
  f <- stats::as.formula(paste(spec$outcome, "~", rstanarm_rhs(d, spec, options, extra, settings$spline_df)))
  family <- if (outcome_type(spec) == "binary") stats::binomial() else stats::gaussian()
  outcome <- fit_rstanarm_part(f, family, d, spec, options, settings, settings$seed)
  structure(list(backend = "rstanarm", outcome = outcome, options = options),
            class = c("bayeslift_rstanarm_outcome", "bayeslift_rstanarm", "bayeslift_model"))
}

#' @export
expected_outcome.bayeslift_rstanarm_outcome <- function(model, newdata) {
  rstanarm::posterior_epred(model$outcome, newdata = model_newdata(model, newdata))
}

#' @export
model_stanfits.bayeslift_rstanarm_outcome <- function(model) list(outcome = model$outcome$stanfit)

#' @export
model_loo.bayeslift_rstanarm_outcome <- function(model) {
  l <- stanreg_loo(model$outcome)
  loo_summary(l$pointwise[, "elpd_loo"], l$estimates["p_loo", "Estimate"], sum(l$diagnostics$pareto_k > 0.7),
              list(outcome = l$estimates))
}

#' @export
replicate_outcome.bayeslift_rstanarm_outcome <- function(model, data, ndraws, seed) {
  set.seed(seed)
  rstanarm::posterior_predict(model$outcome, newdata = model_newdata(model, data), draws = ndraws, seed = seed)
}

#' @export
point_outcome_parts.bayeslift_rstanarm_outcome <- function(model, newdata) {
  type <- outcome_type(model$spec)
  lin <- colMeans(rstanarm::posterior_linpred(model$outcome, newdata = model_newdata(model, newdata)))
  if (type == "binary") return(list(type = type, p = stats::plogis(lin)))
  list(type = type, mu = lin, sigma = mean(as.matrix(model$outcome, pars = "sigma")[, 1]))
}
