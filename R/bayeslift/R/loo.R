# Model choice by approximate leave-one-out cross-validation (PSIS-LOO, package `loo`); each back-end's
# model_loo() method gives the per-user elpd.

# model_loo() of every candidate (candidates may already be model_loo() results).
candidate_loos <- function(candidates) lapply(candidates, function(m) if (is_loo_result(m)) m else model_loo(m))

is_loo_result <- function(x) identical(class(x), "list") && !is.null(x$pointwise)

# Users x models matrix of per-user LOO elpd from a list of model_loo() results.
pointwise_elpd <- function(loos) do.call(cbind, lapply(loos, `[[`, "pointwise"))

#' Pick among candidate fits by PSIS-LOO (`model: auto`)
#'
#' Candidates are listed simplest first. The best elpd wins unless a simpler candidate is not credibly
#' worse: elpd difference below max(`min_diff`, `se_mult` x SE of the difference); then the simplest such
#' candidate is chosen (parsimony when LOO cannot tell them apart).
#'
#' @param candidates a named list of fitted models, simplest first (or of [model_loo()] results).
#' @param se_mult,min_diff how much worse than the best a candidate must be to be credibly worse.
#' @return a list: `chosen` (a name), `table` (a data.frame, one row per candidate: model, elpd, se, p_loo,
#'   elpd_diff, se_diff, n_high_k, credibly_worse) and `loos` (the [model_loo()] results).
#' @export
select_model_by_loo <- function(candidates, se_mult = 2, min_diff = 4) {
  if (!is.list(candidates) || is.null(names(candidates)) || any(names(candidates) == ""))
    stop("select_model_by_loo: name every candidate", call. = FALSE)
  loos <- candidate_loos(candidates)
  elpd <- vapply(loos, function(l) l$elpd, numeric(1))
  best <- which.max(elpd)
  diff <- elpd[best] - elpd
  se_diff <- vapply(loos, function(l) sqrt(length(l$pointwise)) * stats::sd(loos[[best]]$pointwise - l$pointwise),
                    numeric(1))
  worse <- diff > pmax(min_diff, se_mult * se_diff)
  chosen <- names(candidates)[which(!worse)[1]]
  table <- data.frame(model = names(candidates), elpd = elpd, se = vapply(loos, `[[`, numeric(1), "se"),
                      p_loo = vapply(loos, `[[`, numeric(1), "p_loo"), elpd_diff = -diff, se_diff = se_diff,
                      n_high_k = vapply(loos, function(l) as.numeric(l$n_high_k), numeric(1)),
                      credibly_worse = worse, row.names = NULL)
  list(chosen = chosen, table = table, loos = loos)
}
