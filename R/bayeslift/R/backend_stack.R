# Back-end: a stack, the mixture of fitted models by LOO stacking or pseudo-BMA+ weights (stacking.R). Its
# draws come from each member in proportion to its weight (stack_draw_rows()), so every summary (means,
# intervals, P(uplift > 0)) is the mixture's. Class "bayeslift_stack"; built by stack_models(), never fitted.

#' Stack fitted models into one posterior
#'
#' @param candidates a named list of fitted models (from [fit_causal_model()]) fitted on the same data
#'   with the same spec.
#' @param weights named weights, one per candidate (default: [stack_weights_by_loo()]).
#' @param min_weight members below this weight are dropped (and the rest renormalised): they would
#'   contribute a handful of draws at the cost of computing all of theirs.
#' @return a `bayeslift_stack` list: `members` (the kept models), `weights` (of the kept members, summing to 1),
#'   `all_weights` (of every candidate), `spec`, `scaling`, `backend`.
#' @export
stack_models <- function(candidates, weights = stack_weights_by_loo(candidates), min_weight = 0.01) {
  if (!is.list(candidates) || !length(candidates) || is.null(names(candidates)) || any(names(candidates) == ""))
    stop("stack_models: candidates must be a named list of fitted models", call. = FALSE)
  if (!identical(sort(names(weights)), sort(names(candidates)))) stop("stack_models: one weight per named candidate", call. = FALSE)
  for (m in candidates[-1]) if (!identical(m$spec, candidates[[1]]$spec) || !identical(m$scaling, candidates[[1]]$scaling))
    stop("stack_models: candidates were fitted on different data or feature specs", call. = FALSE)
  weights <- weights[names(candidates)]
  kept <- weights >= min_weight
  structure(list(members = candidates[kept], weights = weights[kept] / sum(weights[kept]), all_weights = weights,
                 spec = candidates[[1]]$spec, scaling = candidates[[1]]$scaling, backend = candidates[[1]]$backend),
            class = "bayeslift_stack")
}

# Which draws of each member a stack uses: n_k = the largest-remainder share of `n_draws` for weight w_k,
# taken evenly spaced through the member's draws (so from every chain). Deterministic, so the treated and
# control predictions of a user, and every chunk of users, use the same draws. A list of row indices, one
# per member (empty for a zero share).
stack_draw_rows <- function(n_draws, weights, member_draws) {
  share <- weights * n_draws
  n <- floor(share)
  extra <- n_draws - sum(n)
  if (extra > 0) {
    top <- order(share - n, decreasing = TRUE)[seq_len(extra)]
    n[top] <- n[top] + 1
  }
  Map(function(k, total) if (k == 0) integer(0) else unique(round(seq(1, total, length.out = k))), n, member_draws)
}

# The rows of each member's draws the stack's draws are made of.
stack_rows <- function(stack) {
  sizes <- vapply(stack$members, model_n_draws, numeric(1))
  stack_draw_rows(min(sizes), stack$weights, sizes)
}

#' @export
expected_outcome.bayeslift_stack <- function(model, newdata) {
  parts <- Map(function(m, r) if (length(r)) expected_outcome(m, newdata)[r, , drop = FALSE], model$members, stack_rows(model))
  do.call(rbind, parts)
}

# Every member's stanfits, named member:part.
#' @export
model_stanfits.bayeslift_stack <- function(model) {
  do.call(c, unname(Map(function(m, nm) stats::setNames(model_stanfits(m), paste0(nm, ":", names(model_stanfits(m)))),
                        model$members, names(model$members))))
}

#' @export
model_n_users.bayeslift_stack <- function(model) model_n_users(model$members[[1]])

#' @export
model_n_draws.bayeslift_stack <- function(model) sum(lengths(stack_rows(model)))

# Per user, the log of the weighted mixture of the members' LOO predictive densities (the quantity stacking
# maximises). p_loo is the weighted mean of the members' and n_high_k their sum.
#' @export
model_loo.bayeslift_stack <- function(model) {
  loos <- lapply(model$members, model_loo)
  lpd <- pointwise_elpd(loos)
  top <- apply(lpd, 1, max)
  pw <- top + log(as.vector(exp(lpd - top) %*% model$weights))
  loo_summary(pw, sum(model$weights * vapply(loos, `[[`, numeric(1), "p_loo")),
              sum(vapply(loos, function(l) as.numeric(l$n_high_k), numeric(1))), lapply(loos, `[[`, "parts"))
}

# A stack's replications come from its members in proportion to their weights.
#' @export
replicate_outcome.bayeslift_stack <- function(model, data, ndraws, seed) {
  n <- lengths(stack_draw_rows(ndraws, model$weights, rep(ndraws, length(model$members))))
  parts <- Map(function(m, k, i) if (k > 0) replicate_outcome(m, data, k, seed + 10L * i), model$members, n, seq_along(n))
  do.call(rbind, parts)
}

# The members' posterior-mean parameters averaged by weight.
#' @export
point_outcome_parts.bayeslift_stack <- function(model, newdata) {
  parts <- lapply(model$members, point_outcome_parts, newdata = newdata)
  mix <- function(key) Reduce(`+`, Map(function(p, w) if (is.null(p[[key]])) NULL else w * p[[key]], parts, model$weights))
  list(type = outcome_type(model$spec), p = mix("p"), mu = mix("mu"), sigma = mix("sigma"))
}

#' @export
combine_chain_draws.bayeslift_stack <- function(model, fits) {
  stop("combine_chain_fits: a stack is built from combined chains (choose_model()), not combined itself", call. = FALSE)
}

#' @export
is_variational.bayeslift_stack <- function(model) is_variational(model$members[[1]])

# Diagnostics of every member that carries weight (each must have converged), parts named member:part.
stack_diagnostics <- function(stack, diagnose) {
  each <- lapply(stack$members, diagnose)
  params <- Map(function(d, nm) { d$parameters$part <- paste0(nm, ":", d$parameters$part); d$parameters }, each, names(each))
  parts <- do.call(c, unname(Map(function(d, nm) stats::setNames(d$parts, paste0(nm, ":", names(d$parts))),
                                 each, names(each))))
  list(parameters = do.call(rbind, unname(params)), parts = parts)
}

#' @export
model_diagnostics.bayeslift_stack <- function(model) stack_diagnostics(model, model_diagnostics)

#' @export
variational_diagnostics.bayeslift_stack <- function(model) stack_diagnostics(model, variational_diagnostics)
