# Counterfactuals: the expected outcome per posterior draw with the treatment set to 1, then 0, and the
# surrogate's training tables summarised from them.

#' Counterfactual expected outcome for every arm
#'
#' @param model a fitted model ([fit_causal_model()], [choose_model()]) or a `bayeslift_stack`.
#' @param users a data.frame of users (features; the treatment column is overwritten).
#' @return with one campaign arm, a list of two draws x users numeric matrices, `treated` and `control`. When
#'   the model carries an interval calibration (`model$interval_calibration$scale`, [calibrate_uplift_intervals()]), each user's uplift draws
#'   are scaled about their median and `treated` is control + calibrated uplift (kept within the outcome's
#'   range: spend >= 0, probabilities <= 1, which can only raise the lowest uplift draws); the posterior's own treated
#'   draws are kept as `treated_posterior` (the ATE is summarised from them, not calibrated). With K > 1
#'   campaign arms (`spec$arms`), a list of `control` and `arms`, a list of K matrices named by [arm_names()].
#' @export
counterfactual_draws <- function(model, users) {
  if (!is.data.frame(users)) stop("counterfactual_draws: users must be a data.frame", call. = FALSE)
  arm <- function(t) {
    nd <- users
    nd[[model$spec$treatment]] <- t
    expected_outcome(model, nd)
  }
  if (n_campaign_arms(model$spec) > 1) {
    if (!is.null(model$interval_calibration$scale))
      stop("counterfactual_draws: interval calibration is for one campaign arm", call. = FALSE)
    arms <- arm_names(model$spec)
    return(list(control = arm(0L), arms = stats::setNames(lapply(seq_along(arms), arm), arms)))
  }
  out <- list(treated = arm(1L), control = arm(0L))
  scale <- model$interval_calibration$scale
  if (!is.null(scale)) {
    out$treated_posterior <- out$treated
    treated <- out$control + scale_uplift_draws(out$treated - out$control, scale)
    # Widened intervals must not reach impossible outcomes: spend >= 0, probabilities in [0, 1].
    type <- outcome_type(model$spec)
    if (type != "gaussian") treated <- pmax(treated, 0)
    if (type == "binary") treated <- pmin(treated, 1)
    out$treated <- treated
  }
  out
}

#' Column-name suffixes of a spec's campaign arms
#'
#' @param spec a feature spec.
#' @return character: with several campaign arms, each arm level's suffix (`uplift_<suffix>_mean`, as
#'   python/bayeslift/arms.py `arm_slug()` makes it), in arm-index order; "treated" with one arm.
#' @export
arm_names <- function(spec) {
  arms <- spec_arms(spec)
  if (length(arms) <= 1) "treated" else arm_slug(arms)
}

# The draws of each campaign arm, named, from counterfactual_draws() output (one arm: "treated").
campaign_arm_draws <- function(draws) if (is.null(draws$arms)) list(treated = draws$treated) else draws$arms

# The posterior's treated draws of counterfactual_draws(), before any interval calibration.
posterior_treated <- function(draws) if (is.null(draws$treated_posterior)) draws$treated else draws$treated_posterior

#' Posterior of the sample average treatment effect, and per-user uplift summaries
#'
#' @param model a fitted model or stack.
#' @param users a data.frame of users (features; the treatment column is overwritten).
#' @return a list: `mean`, `q05`, `q95` (numbers: the ATE over `users`, never interval-calibrated) and
#'   `uplift_mean`, `uplift_q05`, `uplift_q95` (vectors, one value per user; the 90% interval calibrated when
#'   the model carries an interval calibration).
#' @export
ate_posterior <- function(model, users) {
  if (n_campaign_arms(model$spec) > 1)
    stop("ate_posterior: the model has several campaign arms; export_counterfactuals() summarises each", call. = FALSE)
  d <- counterfactual_draws(model, users)
  u <- d$treated - d$control
  draws <- rowMeans(posterior_treated(d) - d$control)  # the ATE is never interval-calibrated
  list(mean = mean(draws), q05 = unname(stats::quantile(draws, 0.05)), q95 = unname(stats::quantile(draws, 0.95)),
       uplift_mean = colMeans(u), uplift_q05 = matrixStats::colQuantiles(u, probs = 0.05),
       uplift_q95 = matrixStats::colQuantiles(u, probs = 0.95))
}


#' Posterior summaries of counterfactual outcomes and uplift for every user
#'
#' The tables rule `counterfactuals` writes, a chunk of users at a time, so memory holds draws x chunk rather
#' than draws x users.
#'
#' @param model a fitted model or stack.
#' @param users data.frame of users with the id, features and a `split` column ("train"/"holdout").
#' @param chunk_size users per chunk.
#' @param margin,cost the contact policy (`policy.margin`, `policy.cost_per_contact`; one per campaign arm with
#'   several, [arm_policy()]): the uplift summary's `prob_profit` is the posterior P(margin * uplift - cost > 0),
#'   counted over the draws (the defaults make it P(uplift > 0)).
#' @return a list: `train_data` and `labels` (two rows per user, treated first, in the boundary
#'   schema's column order), `uplift` (the uplift summary, one row per user), `ate` (a list summarising the
#'   sample average uplift over draws, plus the mean spend under each arm, and `interval_scale` when the model's
#'   per-user intervals are calibrated), and `draw_sums` (per-draw spend sums over the users under each arm,
#'   which `export_counterfactual_shard()` adds up across chunks).
#' @export
export_counterfactuals <- function(model, users, chunk_size = 2000L, margin = 1, cost = 0) {
  spec <- model$spec
  n_arms <- n_campaign_arms(spec)
  if (!is.numeric(margin) || !length(margin) %in% c(1, n_arms) || !all(margin > 0))
    stop("export_counterfactuals: margin must be one number > 0, or one per campaign arm", call. = FALSE)
  if (!is.numeric(cost) || !length(cost) %in% c(1, n_arms) || !all(cost >= 0))
    stop("export_counterfactuals: cost must be one number >= 0, or one per campaign arm", call. = FALSE)
  margin <- rep_len(margin, n_arms)
  cost <- rep_len(cost, n_arms)
  if (!is.data.frame(users) || is.null(users$split)) stop("export_counterfactuals: users must be a data.frame with a split column", call. = FALSE)
  n <- nrow(users)
  starts <- seq(1L, n, by = chunk_size)
  train_parts <- label_parts <- uplift_parts <- vector("list", length(starts))
  sums <- NULL
  for (k in seq_along(starts)) {
    rows <- starts[k]:min(n, starts[k] + chunk_size - 1L)
    chunk <- users[rows, , drop = FALSE]
    draws <- counterfactual_draws(model, chunk)
    arm_draws <- campaign_arm_draws(draws)
    # per-draw spend sums under each arm (the ATE is never interval-calibrated)
    chunk_sums <- c(lapply(if (is.null(draws$arms)) list(treated = posterior_treated(draws)) else arm_draws, rowSums),
                    list(control = rowSums(draws$control)))
    sums <- if (is.null(sums)) chunk_sums else Map(`+`, sums, chunk_sums)
    features <- chunk[, c(spec$numeric, spec$categorical), drop = FALSE]
    one_arm <- function(t, m) {
      q <- matrixStats::colQuantiles(m, probs = c(0.05, 0.5, 0.95), drop = FALSE)
      list(
        train = data.frame(chunk[[spec$id]], chunk$split, t, features, check.names = FALSE),
        labels = data.frame(chunk[[spec$id]], t, colMeans(m), q[, 2], q[, 1], q[, 3])
      )
    }
    # Each user's rows together: campaign arms 1..K, then control.
    per_arm <- c(lapply(seq_along(arm_draws), function(a) one_arm(a, arm_draws[[a]])), list(one_arm(0L, draws$control)))
    order_rows <- as.vector(t(matrix(seq_len(length(rows) * length(per_arm)), length(rows))))
    train_parts[[k]] <- do.call(rbind, lapply(per_arm, `[[`, "train"))[order_rows, ]
    label_parts[[k]] <- do.call(rbind, lapply(per_arm, `[[`, "labels"))[order_rows, ]
    uplift_stats <- do.call(cbind, lapply(seq_along(arm_draws), function(a) {
      uplift <- arm_draws[[a]] - draws$control
      q <- matrixStats::colQuantiles(uplift, probs = c(0.05, 0.5, 0.95), drop = FALSE)
      unname(cbind(colMeans(uplift), q[, 2], q[, 1], q[, 3], colMeans(uplift > 0),
                   colMeans(margin[a] * uplift - cost[a] > 0)))
    }))
    colnames(uplift_stats) <- uplift_columns(spec)
    uplift_parts[[k]] <- data.frame(chunk[[spec$id]], chunk$split, uplift_stats, check.names = FALSE)
  }
  bind <- function(parts, names) {
    out <- do.call(rbind, parts)
    names(out) <- names
    rownames(out) <- NULL
    out
  }
  train_data <- bind(train_parts, c(spec$id, "split", "received_campaign", spec$numeric, spec$categorical))
  labels <- bind(label_parts, c(spec$id, "received_campaign", "spend_mean", "spend_median", "spend_q05", "spend_q95"))
  uplift_summary <- bind(uplift_parts, c(spec$id, "split", uplift_columns(spec)))
  ate <- ate_of_sums(sums, n, spec)
  ate$interval_scale <- model$interval_calibration$scale  # NULL (absent) unless model.intervals.calibrate
  list(train_data = train_data, labels = labels, uplift = uplift_summary, ate = ate, draw_sums = sums)
}

#' Each campaign arm's margin and contact cost from the config's policy section
#'
#' @param policy a list with `margin`, `cost_per_contact` and optional `arms` (per arm level, a list with
#'   `margin` and/or `cost_per_contact` overriding them; only with several campaign arms).
#' @param spec the feature spec (its `arms`).
#' @return list(margin, cost): numbers, one per campaign arm in arm-index order.
#' @export
arm_policy <- function(policy, spec) {
  levels <- spec_arms(spec)
  over <- if (is.null(policy$arms)) list() else policy$arms
  if (length(over) && length(levels) <= 1)
    stop("arm_policy: policy arms is for several campaign arms; with one, set cost_per_contact and margin", call. = FALSE)
  unknown <- setdiff(names(over), levels)
  if (length(unknown))
    stop(sprintf("arm_policy: policy arms names %s, which are not campaign arms (%s)", paste(unknown, collapse = ", "),
                 paste(levels, collapse = ", ")), call. = FALSE)
  pick <- function(key, default) {
    if (length(levels) <= 1) return(default)
    unname(vapply(levels, function(l) { v <- over[[l]][[key]]; if (is.null(v)) default else as.numeric(v) }, numeric(1)))
  }
  list(margin = pick("margin", policy$margin), cost = pick("cost_per_contact", policy$cost_per_contact))
}

UPLIFT_STATS <- c("uplift_mean", "uplift_median", "uplift_q05", "uplift_q95", "prob_positive", "prob_profit")

# The uplift summary's per-arm columns: UPLIFT_STATS with one arm; with several, each arm's set, named as
# boundary.yaml's `per_arm` patterns say (uplift_<arm>_mean, ..., prob_profit_<arm>).
uplift_columns <- function(spec) {
  if (n_campaign_arms(spec) == 1) return(UPLIFT_STATS)
  as.vector(vapply(arm_names(spec), function(a) sub("^(uplift|prob_positive|prob_profit)", paste0("\\1_", a), UPLIFT_STATS),
                   character(length(UPLIFT_STATS))))
}

# The ATE summary of per-draw spend sums `sums` (named by arm: "treated" or the arm names, and "control"):
# ate_summary() with one arm; with several, one per arm in `arms` plus the users, draws and control spend.
ate_of_sums <- function(sums, n, spec) {
  if (n_campaign_arms(spec) == 1) return(ate_summary(sums$treated, sums$control, n))
  arms <- lapply(arm_names(spec), function(a) ate_summary(sums[[a]], sums$control, n))
  list(arms = stats::setNames(arms, arm_names(spec)), mean_spend_if_control = mean(sums$control / n),
       n_users = n, n_draws = length(sums$control))
}

# Sample ATE posterior summary from per-draw sums over `n` users of E[spend] under each arm: a list of
# ate_mean, ate_median, ate_q05, ate_q95, prob_positive, mean_spend_if_treated, mean_spend_if_control, n_users, n_draws.
ate_summary <- function(sum_treated, sum_control, n) {
  ate_draws <- (sum_treated - sum_control) / n
  list(
    ate_mean = mean(ate_draws), ate_median = stats::median(ate_draws),
    ate_q05 = unname(stats::quantile(ate_draws, 0.05)), ate_q95 = unname(stats::quantile(ate_draws, 0.95)),
    prob_positive = mean(ate_draws > 0),
    mean_spend_if_treated = mean(sum_treated / n), mean_spend_if_control = mean(sum_control / n),
    n_users = n, n_draws = length(ate_draws)
  )
}
