# Weights of candidate fits from their pointwise PSIS-LOO: the mixture backend_stack.R predicts with.

#' Weights of candidate fits from their pointwise PSIS-LOO
#'
#' "stack" (LOO stacking; Yao, Vehtari, Simpson & Gelman 2018) maximises the summed leave-one-out log density
#' of the mixture, so a candidate gets weight for the users it predicts better, not for winning overall; a
#' near-tie splits the weight rather than betting on one model. "pseudo_bma" (pseudo-BMA+: exp(elpd) weights,
#' regularised by the Bayesian bootstrap) weighs whole-model evidence instead: close to a pick when one
#' candidate is credibly better. Its bootstrap uses a fixed seed (the session's RNG state is restored).
#'
#' @param candidates a named list of fitted models on the same users (or of [model_loo()] results).
#' @param method "stack" or "pseudo_bma" (the `model.combine` values that mix).
#' @return a named numeric vector of weights, one per candidate, summing to 1.
#' @export
stack_weights_by_loo <- function(candidates, method = c("stack", "pseudo_bma")) {
  method <- match.arg(method)
  if (!is.list(candidates) || is.null(names(candidates)) || any(names(candidates) == ""))
    stop("stack_weights_by_loo: name every candidate", call. = FALSE)
  lpd <- pointwise_elpd(candidate_loos(candidates))
  w <- if (method == "stack") loo::stacking_weights(lpd) else with_seed(1L, loo::pseudobma_weights(lpd, BB = TRUE))
  stats::setNames(as.numeric(w), names(candidates))
}

# Evaluate `expr` with the RNG seeded, restoring the caller's RNG state afterwards.
with_seed <- function(seed, expr) {
  had <- exists(".Random.seed", envir = globalenv(), inherits = FALSE)
  if (had) old <- get(".Random.seed", envir = globalenv())
  on.exit(if (had) assign(".Random.seed", old, envir = globalenv()) else rm(".Random.seed", envir = globalenv()))
  set.seed(seed)
  expr
}
