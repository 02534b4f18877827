# Convergence checks from each part's monitored draws (model_monitored(): a Stan back-end's stanfit parameters):
# R-hat, bulk and tail ESS (package `posterior`) and divergent transitions for MCMC; the Pareto k of the
# importance ratios for variational fits.

#' Convergence diagnostics of every model part
#'
#' @param model a fitted model, or a `bayeslift_stack` (parts named member:part).
#' @return a list: `parameters` (a data.frame, one row per parameter and part: part, variable, rhat, ess_bulk,
#'   ess_tail) and `parts` (a named list, per part: rhat_max, ess_bulk_min, ess_tail_min, divergences,
#'   worst_rhat_variable, n_draws).
#' @export
model_diagnostics <- function(model) UseMethod("model_diagnostics")

#' @export
model_diagnostics.bayeslift_model <- function(model) {
  monitored <- model_monitored(model)
  params <- list()
  parts <- list()
  for (part in names(monitored)) {
    arr <- monitored[[part]]$draws
    arr <- posterior::subset_draws(arr, variable = setdiff(posterior::variables(arr), c("lp__", "log-posterior")))
    s <- as.data.frame(posterior::summarise_draws(arr, "rhat", "ess_bulk", "ess_tail"))
    for (col in c("rhat", "ess_bulk", "ess_tail")) s[[col]] <- as.numeric(s[[col]])  # drop tibble attributes
    s <- s[!grepl("^(mean_PPD|log-fit_ratio)", s$variable), , drop = FALSE]
    divergences <- monitored[[part]]$divergences
    params[[part]] <- data.frame(part = part, s)
    parts[[part]] <- list(
      rhat_max = max(s$rhat, na.rm = TRUE), ess_bulk_min = min(s$ess_bulk, na.rm = TRUE),
      ess_tail_min = min(s$ess_tail, na.rm = TRUE), divergences = divergences,
      worst_rhat_variable = s$variable[which.max(s$rhat)],
      n_draws = posterior::ndraws(arr)
    )
  }
  list(parameters = do.call(rbind, unname(params)), parts = parts)
}

# The Stan-based back-ends' monitored draws: every parameter of each stanfit, and its divergent transitions.
#' @export
model_monitored.bayeslift_model <- function(model) {
  lapply(model_stanfits(model), function(sf) {
    sampler <- rstan::get_sampler_params(sf, inc_warmup = FALSE)
    list(draws = posterior::as_draws_array(as.array(sf)),
         divergences = sum(vapply(sampler, function(x) sum(x[, "divergent__"]), numeric(1))))
  })
}

#' Compare MCMC diagnostics with thresholds
#'
#' @param diagnostics output of [model_diagnostics()].
#' @param rhat_max,ess_bulk_min,ess_tail_min,divergences_max thresholds.
#' @return a character vector of problems, one per failed check (empty when all pass).
#' @export
diagnostic_problems <- function(diagnostics, rhat_max = 1.01, ess_bulk_min = 400, ess_tail_min = 400,
                                divergences_max = 0) {
  if (!is.list(diagnostics) || is.null(diagnostics$parts))
    stop("diagnostic_problems: diagnostics must be model_diagnostics()'s result", call. = FALSE)
  problems <- character(0)
  for (part in names(diagnostics$parts)) {
    d <- diagnostics$parts[[part]]
    if (d$rhat_max > rhat_max)
      problems <- c(problems, sprintf("%s part: R-hat %.3f for %s exceeds %.3f", part, d$rhat_max, d$worst_rhat_variable, rhat_max))
    if (d$ess_bulk_min < ess_bulk_min)
      problems <- c(problems, sprintf("%s part: bulk ESS %.0f below %.0f", part, d$ess_bulk_min, ess_bulk_min))
    if (d$ess_tail_min < ess_tail_min)
      problems <- c(problems, sprintf("%s part: tail ESS %.0f below %.0f", part, d$ess_tail_min, ess_tail_min))
    if (d$divergences > divergences_max)
      problems <- c(problems, sprintf("%s part: %d divergent transitions (allowed %d)", part, as.integer(d$divergences), as.integer(divergences_max)))
  }
  problems
}

#' @export
is_variational.bayeslift_model <- function(model) !identical(model_stanfits(model)[[1]]@stan_args[[1]]$method, "sampling")

# Diagnostics of a variational fit: Pareto k of the importance ratios p(theta | y) / q(theta), which Stan
# computes from the 1,000 draws of the approximation (Yao et al. 2018, "Yes, but did it work?"): below 0.5 the
# approximation is close to the posterior, 0.5-0.7 usable for point estimates, above 0.7 unreliable. R-hat,
# ESS and divergences do not exist for ADVI. Returns list(parameters = part, variable, mean, sd, pareto_k of
# each parameter's marginal; parts = per part: algorithm, pareto_k, n_draws).
variational_diagnostics <- function(model) UseMethod("variational_diagnostics")

#' @export
variational_diagnostics.bayeslift_model <- function(model) {
  one_part <- function(part, sf) {
    d <- sf@sim$diagnostics
    draws <- as.matrix(sf)
    keep <- !(colnames(draws) %in% c("lp__", "log-posterior") | grepl("^(mean_PPD|log-fit_ratio)", colnames(draws)))
    draws <- draws[, keep, drop = FALSE]
    # Stan's per-parameter k, in the order of the stanfit's parameter names (absent in older rstan).
    k_of <- if (length(d$theta_pareto_k) == length(sf@sim$fnames_oi)) stats::setNames(d$theta_pareto_k, sf@sim$fnames_oi)
    list(parameters = data.frame(part = part, variable = colnames(draws), mean = colMeans(draws),
                                 sd = apply(draws, 2, stats::sd),
                                 pareto_k = if (is.null(k_of)) NA_real_ else unname(k_of[colnames(draws)]),
                                 row.names = NULL),
         summary = list(algorithm = sf@stan_args[[1]]$algorithm,
                        pareto_k = if (is.null(d$psis$pareto_k)) NA_real_ else d$psis$pareto_k,
                        n_draws = nrow(draws)))
  }
  fits <- model_stanfits(model)
  out <- Map(one_part, names(fits), fits)
  list(parameters = do.call(rbind, unname(lapply(out, `[[`, "parameters"))), parts = lapply(out, `[[`, "summary"))
}

# Problems of variational diagnostics against a Pareto k threshold (a missing k is a problem too).
variational_problems <- function(diagnostics, pareto_k_max = 0.7) {
  problems <- character(0)
  for (part in names(diagnostics$parts)) {
    k <- diagnostics$parts[[part]]$pareto_k
    if (is.na(k)) problems <- c(problems, sprintf("%s part: no Pareto k from the variational fit", part))
    else if (k > pareto_k_max)
      problems <- c(problems, sprintf("%s part: variational Pareto k %.2f exceeds %.2f (the approximation is unreliable)",
                                      part, k, pareto_k_max))
  }
  problems
}

#' Convergence check of a fitted model against the config's `diagnostics` thresholds
#'
#' MCMC fits are checked by R-hat, bulk and tail ESS and divergences; variational fits (ADVI has no chains to
#' compare) by the Pareto k of the approximation.
#'
#' @param model a fitted model or stack.
#' @param thresholds a list with `rhat_max`, `ess_bulk_min`, `ess_tail_min`, `divergences_max` and
#'   `pareto_k_max` (the config's `diagnostics` section; missing ones take the defaults 1.01, 400, 400, 0, 0.7).
#' @return a list: `variational` (TRUE/FALSE), `diagnostics` (as [model_diagnostics()] returns, or the
#'   variational parameters and parts), `problems` (a character vector, empty when all pass) and `thresholds`
#'   (the ones applied, a named list).
#' @export
check_convergence <- function(model, thresholds = list()) {
  if (!is.list(thresholds)) stop("check_convergence: thresholds must be a list", call. = FALSE)
  t <- utils::modifyList(list(rhat_max = 1.01, ess_bulk_min = 400, ess_tail_min = 400, divergences_max = 0,
                              pareto_k_max = 0.7), thresholds)
  if (is_variational(model)) {
    diagnostics <- variational_diagnostics(model)
    return(list(variational = TRUE, diagnostics = diagnostics, problems = variational_problems(diagnostics, t$pareto_k_max),
                thresholds = t["pareto_k_max"]))
  }
  diagnostics <- model_diagnostics(model)
  list(variational = FALSE, diagnostics = diagnostics,
       problems = diagnostic_problems(diagnostics, t$rhat_max, t$ess_bulk_min, t$ess_tail_min, t$divergences_max),
       thresholds = t[c("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences_max")])
}
