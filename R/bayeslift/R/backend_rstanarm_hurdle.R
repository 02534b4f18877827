# Back-end: the two-part hurdle model of spend with rstanarm (the default). A logistic stan_glm for
# P(spend > 0) (`buy`) and a Gaussian stan_glm on a buyer's log-spend (`amount`); E[spend] per draw is
# p * exp(mu + sigma^2 / 2). Class c("bayeslift_rstanarm_hurdle", "bayeslift_rstanarm", "bayeslift_model").

# Fitter registered for rstanarm x spend (backend_fitter()): `d` is the model-scale training data with the
# options' covariates, `extra` their names.
fit_rstanarm_hurdle <- function(d, spec, options, extra, settings) {
  rhs <- rstanarm_rhs(d, spec, options, extra, settings$spline_df)
  d$bl_buy <- as.integer(d[[spec$outcome]] > 0)
  buyers <- d[d$bl_buy == 1, , drop = FALSE]
  buyers$bl_log_spend <- log(buyers[[spec$outcome]])
  buy <- fit_rstanarm_part(stats::as.formula(paste("bl_buy ~", rhs)), stats::binomial(), d, spec, options,
                           settings, settings$seed)
  amount <- fit_rstanarm_part(stats::as.formula(paste("bl_log_spend ~", rhs)), stats::gaussian(), buyers, spec,
                              options, settings, settings$seed + 1L)
  structure(list(backend = "rstanarm", buy = buy, amount = amount, options = options),
            class = c("bayeslift_rstanarm_hurdle", "bayeslift_rstanarm", "bayeslift_model"))
}

#' @export
expected_outcome.bayeslift_rstanarm_hurdle <- function(model, newdata) {
  nd <- model_newdata(model, newdata)
  p_buy <- rstanarm::posterior_epred(model$buy, newdata = nd)
  mu <- rstanarm::posterior_linpred(model$amount, newdata = nd)
  sigma <- as.matrix(model$amount, pars = "sigma")[, 1]
  # The two parts have separate likelihoods and priors, so their posteriors are independent and
  # pairing draws by index is a valid joint draw.
  p_buy * exp(mu + sigma^2 / 2)
}

#' @export
model_stanfits.bayeslift_rstanarm_hurdle <- function(model) list(buy = model$buy$stanfit, amount = model$amount$stanfit)

# The two parts have separate likelihoods, so the hurdle's log predictive density of user i is
# log p(buy_i) + [buyer] (log p(log spend_i) - log spend_i): the logistic part's pointwise elpd on every user
# plus, for buyers, the Gaussian part's on log-spend with the Jacobian of the log (a density of spend itself,
# comparable with brms's hurdle_lognormal). Summing per user keeps pointwise differences between models.
#' @export
model_loo.bayeslift_rstanarm_hurdle <- function(model) {
  lb <- stanreg_loo(model$buy)
  la <- stanreg_loo(model$amount)
  pw <- lb$pointwise[, "elpd_loo"]
  buyers <- which(model$buy$y == 1)
  pw[buyers] <- pw[buyers] + la$pointwise[, "elpd_loo"] - model$amount$y
  loo_summary(pw, lb$estimates["p_loo", "Estimate"] + la$estimates["p_loo", "Estimate"],
              sum(lb$diagnostics$pareto_k > 0.7) + sum(la$diagnostics$pareto_k > 0.7),
              list(buy = lb$estimates, amount = la$estimates))
}

#' @export
replicate_outcome.bayeslift_rstanarm_hurdle <- function(model, data, ndraws, seed) {
  nd <- model_newdata(model, data)
  set.seed(seed)
  buy <- rstanarm::posterior_predict(model$buy, newdata = nd, draws = ndraws, seed = seed)
  amount <- rstanarm::posterior_predict(model$amount, newdata = nd, draws = ndraws, seed = seed + 1L)
  buy * exp(amount)
}

# The linear predictor is linear in the coefficients: its posterior mean is the posterior-mean model's.
#' @export
point_outcome_parts.bayeslift_rstanarm_hurdle <- function(model, newdata) {
  nd <- model_newdata(model, newdata)
  list(type = "spend", p = stats::plogis(colMeans(rstanarm::posterior_linpred(model$buy, newdata = nd))),
       mu = colMeans(rstanarm::posterior_linpred(model$amount, newdata = nd)),
       sigma = mean(as.matrix(model$amount, pars = "sigma")[, 1]))
}
