# MCMC that adapts before it refuses: when the convergence checks fall short, sample longer (and, after
# divergences, with a higher target acceptance) within a time budget, and say what was tried.

#' The sampler settings of the next attempt after failed checks
#'
#' ESS grows about linearly with the draws, so a shortfall is met by scaling the iterations by the worst
#' ratio of wanted to reached ESS, with a 1.5 margin; an R-hat or divergence problem at least doubles them,
#' and divergences also raise `adapt_delta` halfway to 1 (smaller steps).
#'
#' @param check a [check_convergence()] result with problems.
#' @param iter,adapt_delta the settings of the attempt that failed.
#' @return list(iter, adapt_delta) of the next attempt.
#' @keywords internal
next_sampler_settings <- function(check, iter, adapt_delta) {
  t <- check$thresholds
  ratio <- 1
  at_least <- 1
  divergent <- FALSE
  for (d in check$diagnostics$parts) {
    ratio <- max(ratio, t$ess_bulk_min / max(d$ess_bulk_min, 1), t$ess_tail_min / max(d$ess_tail_min, 1))
    if (d$rhat_max > t$rhat_max) at_least <- 2
    if (d$divergences > t$divergences_max) { divergent <- TRUE; at_least <- 2 }
  }
  factor <- max(at_least, if (ratio > 1) 1.5 * ratio else 1)
  list(iter = as.integer(ceiling(iter * factor / 2) * 2),
       adapt_delta = if (divergent) 1 - (1 - adapt_delta) / 2 else adapt_delta)
}

#' Refit with longer sampling until the convergence checks pass, within a time budget
#'
#' Each attempt refits every chain with the settings [next_sampler_settings()] proposes (rstanarm and brms
#' cannot resume a chain, so an attempt starts afresh). An attempt is only started when its projected time
#' (the last attempt's seconds scaled by the iterations) fits in what is left of `budget_minutes`.
#' Variational fits are not extended: their check is of the approximation, not of the sampling length.
#'
#' @param model the fitted model whose check failed.
#' @param check its [check_convergence()] result.
#' @param refit `function(iter, adapt_delta)` returning the model refitted with those settings.
#' @param iter,adapt_delta the settings `model` was fitted with.
#' @param seconds the seconds `model`'s fit took (chains side by side: the wall time).
#' @param budget_minutes wall time allowed for all extra attempts; 0 extends nothing.
#' @param max_attempts extra attempts at most.
#' @return list(model, check (of the last attempt), attempts: a data.frame of iter, adapt_delta, seconds, passed
#'   per attempt, the first being `model`'s, and `note`: why extending stopped, or "" when the last passed).
#' @export
extend_until_converged <- function(model, check, refit, iter, adapt_delta, seconds, budget_minutes = 30,
                                   max_attempts = 3L) {
  if (!is.function(refit)) stop("extend_until_converged: refit must be a function(iter, adapt_delta)", call. = FALSE)
  if (!is.numeric(budget_minutes) || length(budget_minutes) != 1 || budget_minutes < 0)
    stop("extend_until_converged: budget_minutes must be one number >= 0", call. = FALSE)
  attempts <- data.frame(iter = iter, adapt_delta = adapt_delta, seconds = seconds, passed = !length(check$problems))
  note <- ""
  left <- budget_minutes * 60
  while (length(check$problems)) {
    if (check$variational) { note <- "a variational fit is not extended"; break }
    if (nrow(attempts) > max_attempts) { note <- sprintf("%d extra attempts made", max_attempts); break }
    s <- next_sampler_settings(check, iter, adapt_delta)
    projected <- seconds * s$iter / iter
    if (projected > left) {
      note <- sprintf("the next attempt (%d iterations, about %.1f min) exceeds the %.1f min left of model.checks.extend_minutes",
                      s$iter, projected / 60, left / 60)
      break
    }
    message(sprintf("checks failed (%s): refitting with %d iterations, adapt_delta %.3f (about %.1f min)",
                    paste(check$problems, collapse = "; "), s$iter, s$adapt_delta, projected / 60))
    started <- Sys.time()
    model <- refit(s$iter, s$adapt_delta)
    seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
    left <- left - seconds
    check <- check_convergence(model, check$thresholds)
    iter <- s$iter
    adapt_delta <- s$adapt_delta
    attempts <- rbind(attempts, data.frame(iter = iter, adapt_delta = adapt_delta, seconds = seconds,
                                           passed = !length(check$problems)))
  }
  list(model = model, check = check, attempts = attempts, note = note)
}
