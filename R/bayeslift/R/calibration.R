# Calibrated per-user uplift intervals by parametric bootstrap (`model.intervals.calibrate`).
#
# Shrinkage posteriors keep wide intervals for terms that are truly 0 while their mean sits at 0, so with
# sparse heterogeneity the horseshoe's 90% intervals cover every user (docs/benchmarks.md). The fix follows
# Syring & Martin (2019, "Calibrating general posterior credible regions"): make a world where the truth is
# known, the fitted model's posterior-mean parameters; simulate the training outcomes from it; refit the
# same model; and find the factor by which the refit's intervals must be scaled (about each user's
# posterior median) to cover 90% of that known uplift. The factor is then applied to the real posterior's
# uplift draws. It repairs the interval width, not the bias of a misspecified model (a model that cannot
# represent the truth cannot see that in its own simulated world).

# point_outcome_parts() (generics.R): each back-end's posterior-mean parameters of the outcome model per user,
# list(type, p = P(outcome > 0) or P(1), mu = log-scale mean of a buyer's spend or the Gaussian mean, sigma).

# Expected outcome of point_outcome_parts(): P(buy) exp(mu + sigma^2 / 2) for spend, p, or mu.
point_expected_outcome <- function(parts) {
  switch(parts$type, spend = parts$p * exp(parts$mu + parts$sigma^2 / 2), binary = parts$p, gaussian = parts$mu)
}

# One outcome per user drawn from point_outcome_parts() (the caller sets the seed).
simulate_point_outcome <- function(parts) {
  n <- max(length(parts$p), length(parts$mu))
  switch(parts$type,
         spend = ifelse(stats::rbinom(n, 1, parts$p) == 1, exp(stats::rnorm(n, parts$mu, parts$sigma)), 0),
         binary = as.numeric(stats::rbinom(n, 1, parts$p)),
         gaussian = stats::rnorm(n, parts$mu, parts$sigma))
}

# Per user, the factor the 90% interval's half-width (on the side of the truth, about the median) must be
# multiplied by to reach the true uplift: <= 1 means covered. `uplift`: draws x users; `truth`: per user.
interval_scale_needed <- function(uplift, truth) {
  q <- matrixStats::colQuantiles(uplift, probs = c(0.05, 0.5, 0.95), drop = FALSE)
  up <- truth >= q[, 2]
  gap <- ifelse(up, truth - q[, 2], q[, 2] - truth)
  half <- ifelse(up, q[, 3] - q[, 2], q[, 2] - q[, 1])
  ifelse(gap <= 0, 0, gap / pmax(half, .Machine$double.eps))
}

# Scale uplift draws (draws x users) about each user's posterior median: every quantile interval's half-widths
# are multiplied by `scale` (one positive number); the median stays.
scale_uplift_draws <- function(uplift, scale) {
  med <- matrixStats::colMedians(uplift)
  sweep(sweep(uplift, 2, med) * scale, 2, med, `+`)
}

#' Calibrate the model's 90% per-user uplift intervals by parametric bootstrap
#'
#' @param model the fitted model or stack.
#' @param data the data it was fitted on (raw scale, with the outcome).
#' @param refit function(data) -> a model fitted exactly as `model` was (e.g. `function(d) fit_configured_model(d, spec, model_config)`).
#' @param replicates bootstrap data sets (each costs one refit). One is not enough: per-user coverage within one
#'   data set moves with that set's shared (ATE) error, so the scale one replicate asks for varies widely (0.37
#'   to 1.51 over 4 replicates of the horseshoe on 3,000 linear users); the needed scales are pooled, which
#'   targets 90% coverage on average over data sets.
#' @param max_users users whose uplift is checked in each replicate (a seeded subsample when more).
#' @param seed seed of the simulated outcomes and the subsample.
#' @param level interval level to calibrate.
#' @return a list: `scale` (multiply each user's uplift half-widths by it), `level`, `replicates`,
#'   `coverage_before` (of the refits' uplift intervals, per replicate), `scale_per_replicate`, `users`,
#'   `seconds`.
#' @export
calibrate_uplift_intervals <- function(model, data, refit, replicates = 4L, max_users = 2000L, seed = 1L, level = 0.9) {
  if (!identical(level, 0.9)) stop("calibrate_uplift_intervals: only the 90% interval is exported, so level must be 0.9", call. = FALSE)
  replicates <- as.integer(replicates)
  if (is.na(replicates) || replicates < 1L) stop("calibrate_uplift_intervals: replicates must be a positive integer", call. = FALSE)
  if (!is.function(refit)) stop("calibrate_uplift_intervals: refit must be a function(data) returning a fitted model", call. = FALSE)
  started <- Sys.time()
  spec <- model$spec
  if (n_campaign_arms(spec) > 1)
    stop("calibrate_uplift_intervals: interval calibration is for one campaign arm; with several set ",
         "model.intervals.calibrate: false", call. = FALSE)
  arm <- function(frame, t) { frame[[spec$treatment]] <- t; frame }
  users <- if (nrow(data) > max_users) data[sort(with_seed(seed, sample.int(nrow(data), max_users))), , drop = FALSE] else data
  truth <- point_expected_outcome(point_outcome_parts(model, arm(users, 1L))) -
    point_expected_outcome(point_outcome_parts(model, arm(users, 0L)))
  parts <- point_outcome_parts(model, data)  # each user under the arm they had
  needed <- coverage <- per_replicate <- numeric(0)
  for (b in seq_len(replicates)) {
    simulated <- data
    simulated[[spec$outcome]] <- with_seed(seed + b, simulate_point_outcome(parts))
    draws <- counterfactual_draws(refit(simulated), users)
    s <- interval_scale_needed(draws$treated - draws$control, truth)
    coverage <- c(coverage, mean(s <= 1))
    per_replicate <- c(per_replicate, unname(stats::quantile(s, level)))
    needed <- c(needed, s)
    message(sprintf("calibration replicate %d: refit's %.0f%% uplift intervals cover %.3f of the known uplift; scale for %.0f%%: %.3f",
                    b, 100 * level, mean(s <= 1), 100 * level, per_replicate[b]))
  }
  list(scale = unname(stats::quantile(needed, level)), level = level, replicates = replicates,
       coverage_before = coverage, scale_per_replicate = per_replicate, users = nrow(users),
       seconds = as.numeric(difftime(Sys.time(), started, units = "secs")))
}
