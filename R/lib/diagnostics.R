# MCMC diagnostics: R-hat, bulk and tail ESS (posterior package) and divergent transitions (Stan).

# The rstanarm parts of a bayeslift_model: buy and amount (spend), or outcome (binary, Gaussian).
stanreg_parts <- function(model) intersect(c("buy", "amount", "outcome"), names(model))

# The stanfit objects behind a bayeslift_model, named by model part.
model_stanfits <- function(model) {
  if (model$backend == "brms") return(stats::setNames(list(model$fit$fit), if (outcome_type(model$spec) == "spend") "hurdle" else "outcome"))
  lapply(model[stanreg_parts(model)], function(part) part$stanfit)
}

#' Diagnostics of every member of a `bayeslift_stack` that carries weight (each must have converged), with
#' parts and parameter rows named `member:part`.
#'
#' @param stack a `bayeslift_stack`. @param diagnose `model_diagnostics` or `variational_diagnostics`.
#' @return a list like `diagnose()`'s: `parameters` and `parts`.
stack_diagnostics <- function(stack, diagnose) {
  each <- lapply(stack$members, diagnose)
  params <- Map(function(d, nm) transform(d$parameters, part = paste0(nm, ":", part)), each, names(each))
  parts <- do.call(c, unname(Map(function(d, nm) stats::setNames(d$parts, paste0(nm, ":", names(d$parts))),
                                 each, names(each))))
  list(parameters = do.call(rbind, unname(params)), parts = parts)
}

#' Convergence diagnostics of every model part.
#'
#' @param model a `bayeslift_model` or a `bayeslift_stack` (parts named member:part).
#' @return a list: `parameters` (a data.frame, one row per parameter and part: part, variable, rhat,
#'   ess_bulk, ess_tail) and `parts` (per part: rhat_max, ess_bulk_min, ess_tail_min, divergences,
#'   n_draws).
model_diagnostics <- function(model) {
  if (inherits(model, "bayeslift_stack")) return(stack_diagnostics(model, model_diagnostics))
  fits <- model_stanfits(model)
  params <- list()
  parts <- list()
  for (part in names(fits)) {
    sf <- fits[[part]]
    arr <- posterior::as_draws_array(as.array(sf))
    arr <- posterior::subset_draws(arr, variable = setdiff(posterior::variables(arr), c("lp__", "log-posterior")))
    s <- posterior::summarise_draws(arr, "rhat", "ess_bulk", "ess_tail")
    s <- as.data.frame(s)
    for (col in c("rhat", "ess_bulk", "ess_tail")) s[[col]] <- as.numeric(s[[col]])  # drop tibble attributes
    s <- s[!grepl("^(mean_PPD|log-fit_ratio)", s$variable), , drop = FALSE]
    sampler <- rstan::get_sampler_params(sf, inc_warmup = FALSE)
    divergences <- sum(vapply(sampler, function(x) sum(x[, "divergent__"]), numeric(1)))
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

#' Compare diagnostics with thresholds.
#'
#' @param diagnostics output of `model_diagnostics()`.
#' @param rhat_max,ess_bulk_min,ess_tail_min,divergences_max thresholds.
#' @return a character vector of problems (empty when all pass).
diagnostic_problems <- function(diagnostics, rhat_max = 1.01, ess_bulk_min = 400, ess_tail_min = 400,
                                divergences_max = 0) {
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
