# Faster, approximate inference for histories too large for NUTS in the time at hand (issue 6):
#   - a stratified subsample of the users for fitting (`model.fit_subsample`); counterfactuals are still
#     exported for every user;
#   - variational inference (`model.algorithm: meanfield | fullrank`, Stan's ADVI), checked by the Pareto k
#     of its importance ratios instead of R-hat / ESS, which need MCMC chains.

#' A proportionally stratified subsample of users: arm x (outcome > 0).
#'
#' Each of the (up to) four strata keeps its share of `data` (largest remainders make the sizes add up to
#' `n`), so the arms' sizes and buying rates are those of the full history. Rows keep their order. The
#' caller's random-number state is left as it was.
#'
#' @param data training data.frame (treatment 0/1, outcome >= 0).
#' @param spec feature spec (for the treatment and outcome columns).
#' @param n users to keep; `data` itself is returned when it has no more than `n` rows.
#' @param seed seed of the draw (the same subsample for every chain job).
#' @return a data.frame of `min(n, nrow(data))` rows of `data`.
stratified_subsample <- function(data, spec, n, seed = 1L) {
  n <- as.integer(n)
  if (is.na(n) || n < 1L) stop("stratified_subsample: n must be a positive integer")
  if (nrow(data) <= n) return(data)
  strata <- split(seq_len(nrow(data)), list(data[[spec$treatment]], data[[spec$outcome]] > 0), drop = TRUE)
  quota <- n * lengths(strata) / nrow(data)
  size <- floor(quota)
  extra <- n - sum(size)
  if (extra > 0) {
    top <- order(quota - size, decreasing = TRUE)[seq_len(extra)]
    size[top] <- size[top] + 1
  }
  # sample.int, not sample(): a stratum of one row would be taken for 1:row; with_seed(): R/lib/model_options.R
  keep <- with_seed(seed, unlist(Map(function(rows, k) rows[sample.int(length(rows), k)], strata, size), use.names = FALSE))
  out <- data[sort(keep), , drop = FALSE]
  rownames(out) <- NULL
  out
}

#' Whether a `bayeslift_model` was fitted by variational inference (ADVI) rather than MCMC.
#'
#' @param model a `bayeslift_model`.
#' @return TRUE or FALSE.
is_variational <- function(model) {
  if (inherits(model, "bayeslift_stack")) return(is_variational(model$members[[1]]))
  sf <- model_stanfits(model)[[1]]
  !identical(sf@stan_args[[1]]$method, "sampling")
}

#' Diagnostics of a variational fit: Pareto k of the importance ratios p(theta | y) / q(theta).
#'
#' Stan computes k from the 1,000 draws of the approximation (Yao et al. 2018, "Yes, but did it work?"):
#' below 0.5 the approximation is close to the posterior, 0.5-0.7 usable for point estimates, above 0.7
#' unreliable. R-hat, ESS and divergences do not exist for ADVI.
#'
#' @param model a `bayeslift_model` fitted with algorithm "meanfield" or "fullrank" (or a stack of them).
#' @return a list like `model_diagnostics()`: `parameters` (part, variable, mean, sd, pareto_k of each
#'   parameter's marginal) and `parts` (per part: algorithm, pareto_k, n_draws).
variational_diagnostics <- function(model) {
  if (inherits(model, "bayeslift_stack")) return(stack_diagnostics(model, variational_diagnostics))
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

#' Compare variational diagnostics with a Pareto k threshold.
#'
#' @param diagnostics output of `variational_diagnostics()`.
#' @param pareto_k_max largest Pareto k allowed (a missing k is a problem too).
#' @return a character vector of problems (empty when all pass).
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
