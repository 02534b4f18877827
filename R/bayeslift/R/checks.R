# Model checks for diagnostics.json and the report: PSIS-LOO of the fit and posterior predictive checks.

# Posterior predictive checks of spend: observed statistics of `data` (the training data, raw scale) vs their
# distribution over `ndraws` replicated data sets. Returns a data.frame: stat (share_zero, mean, mean_treated, mean_control, buyer_median, buyer_q90,
#   q99), observed, rep_mean, rep_q05, rep_q95, p_value (share of replications >= observed; values near
#   0 or 1 flag misfit).
posterior_predictive_checks <- function(model, data, ndraws = 200L, seed = 1L) {
  spec <- model$spec
  if (outcome_type(spec) != "spend") stop("posterior_predictive_checks: its statistics are of spend outcomes", call. = FALSE)
  rep <- replicate_outcome(model, data, ndraws, seed)
  t <- data[[spec$treatment]] > 0  # any campaign arm
  stats_of <- function(y) {
    b <- y[y > 0]
    c(share_zero = mean(y == 0), mean = mean(y), mean_treated = mean(y[t]), mean_control = mean(y[!t]),
      buyer_median = if (length(b)) stats::median(b) else NA, buyer_q90 = if (length(b)) unname(stats::quantile(b, 0.9)) else NA,
      q99 = unname(stats::quantile(y, 0.99)))
  }
  obs <- stats_of(data[[spec$outcome]])
  reps <- t(apply(rep, 1, stats_of))
  data.frame(stat = names(obs), observed = unname(obs), rep_mean = colMeans(reps, na.rm = TRUE),
             rep_q05 = apply(reps, 2, stats::quantile, 0.05, na.rm = TRUE),
             rep_q95 = apply(reps, 2, stats::quantile, 0.95, na.rm = TRUE),
             p_value = colMeans(sweep(reps, 2, obs, ">="), na.rm = TRUE), row.names = NULL)
}

#' PSIS-LOO and posterior predictive checks of a fitted model
#'
#' What diagnostics.json and the report show.
#'
#' @param model a fitted model or stack (with `selection` when `model: auto` chose it).
#' @param data the training data (raw scale, with the outcome).
#' @param ppc_draws replicated data sets for the posterior predictive checks (spend outcomes only).
#' @param seed RNG seed of the replications.
#' @return a list: `loo` (elpd, se, p_loo, n_high_k, n_users), `ppc` (a data.frame, spend only) and
#'   `selection` (the LOO table of the candidates and the chosen name, `model: auto` only).
#' @export
model_checks <- function(model, data, ppc_draws = 200L, seed = 1L) {
  l <- model_loo(model)
  out <- list(loo = list(elpd = l$elpd, se = l$se, p_loo = l$p_loo, n_high_k = l$n_high_k,
                         n_users = length(l$pointwise)))
  if (outcome_type(model$spec) == "spend")
    out$ppc <- posterior_predictive_checks(model, data, ndraws = ppc_draws, seed = seed)
  if (!is.null(model$selection)) out$selection <- model$selection
  out
}
