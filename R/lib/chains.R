# Scatter/gather helpers: one MCMC chain per job, combined afterwards; counterfactuals a shard of users
# per job, gathered afterwards. The pipeline always goes through these (one chain per job, `shards: 1` by
# default), so a sharded run and the default run share one code path and give identical content.

#' Fit one MCMC chain of the causal model.
#'
#' The chain is seeded with `seed + chain_id`, so chain k is the same whichever job or machine runs it.
#'
#' @param data,spec,backend as for `fit_causal_model()`.
#' @param chain_id 1-based chain number.
#' @param seed base seed (`model.seed`).
#' @param ... other arguments of `fit_causal_model()` (iter, adapt_delta, formula, cache_dir, ...);
#'   `chains` and `cores` are fixed to 1.
#' @return a one-chain `bayeslift_model` with `chain_id` set.
fit_causal_model_chain <- function(data, spec, backend = c("rstanarm", "brms"), chain_id = 1L, seed = 1L, ...) {
  backend <- match.arg(backend)
  chain_id <- as.integer(chain_id)
  if (is.na(chain_id) || chain_id < 1L) stop("fit_causal_model_chain: chain_id must be a positive integer")
  model <- fit_causal_model(data, spec, backend, chains = 1L, cores = 1L, seed = as.integer(seed) + chain_id, ...)
  model$chain_id <- chain_id
  model
}

#' The training rows a configured fit uses: all of them, or the stratified subsample of `model.fit_subsample`
#' (seeded by `model.seed`, so every chain job, and the interval calibration, gets the same users).
#'
#' @param train training data.frame. @param spec feature spec. @param m the config's `model` section (a list).
configured_training_rows <- function(train, spec, m) {
  if (is.null(m$fit_subsample) || m$fit_subsample >= nrow(train)) return(train)
  message(sprintf("fitting on a stratified subsample of %d of %d users (model.fit_subsample)", m$fit_subsample, nrow(train)))
  stratified_subsample(train, spec, m$fit_subsample, seed = m$seed)
}

#' Fit chain `chain` of the model the config's `model` section describes: the job of rule `bayesian_chain`.
#'
#' @param train the training rows (`configured_training_rows()`). @param spec feature spec.
#' @param m the config's `model` section. @param chain 1-based chain number.
#' @return a one-chain `bayeslift_model`, or with `model.auto` a `bayeslift_candidates` of one chain each.
fit_configured_chain <- function(train, spec, m, chain) {
  args <- list(data = train, spec = spec, backend = m$backend, chain_id = as.integer(chain), seed = m$seed, iter = m$iter,
               adapt_delta = m$adapt_delta, algorithm = m$algorithm)
  if (m$backend == "brms") {
    args$formula <- if (length(m$brms$formula)) unlist(m$brms$formula) else NULL
    args$cache_dir <- m$brms$cache_dir
  }
  # Model options of fit_causal_model() (R/lib/model_options.R), when the config has them.
  for (key in c("flexible", "shrinkage", "propensity")) if (!is.null(m[[key]])) args[[key]] <- m[[key]]
  if (identical(m$shrinkage, "normal") && !is.null(m$shrinkage_scale)) args$shrinkage_scale <- m$shrinkage_scale
  spline_df <- if (m$backend == "rstanarm" && !is.null(m$spline_df)) as.integer(m$spline_df)
  if (isTRUE(m$flexible)) args$spline_df <- spline_df
  # model: auto fits each candidate's chain here; they are picked or mixed by LOO once every chain is in.
  if (isTRUE(m$auto)) return(do.call(fit_candidate_chains, c(args, list(no_effect = m$auto_combine %in% c("stack", "pseudo_bma"),
                                                                        spline_df = spline_df))))
  do.call(fit_causal_model_chain, args)
}

#' Fit every chain of the configured model in this process (up to `cores` at once) and combine them as
#' rule `bayesian_model` does: what the interval calibration refits.
#'
#' @inheritParams fit_configured_chain
#' @param cores chains fitted in parallel (forked processes).
#' @return a multi-chain `bayeslift_model`, or a `bayeslift_stack` / picked candidate with `model.auto`.
fit_configured_model <- function(train, spec, m, cores = 1L) {
  n_chains <- if (m$algorithm == "sampling") as.integer(m$chains) else 1L
  fits <- parallel::mclapply(seq_len(n_chains), function(k) fit_configured_chain(train, spec, m, k),
                             mc.cores = max(1L, min(as.integer(cores), n_chains)))
  failed <- vapply(fits, inherits, logical(1), "try-error")
  if (any(failed)) stop("fit_configured_model: chain ", which(failed)[1], " failed: ", fits[[which(failed)[1]]])
  if (inherits(fits[[1]], "bayeslift_candidates")) combine_and_select_candidates(fits, m$auto_combine) else combine_chain_fits(fits)
}

#' One chain of each `model: auto` candidate: the configured model, then the same with splines; for a
#' stack (`model.auto_combine: stack` or `pseudo_bma`) first the no-effect model too (`effect = FALSE`, no other option).
#'
#' @param ... arguments of `fit_causal_model_chain()`.
#' @param no_effect also fit the no-effect candidate.
#' @param spline_df spline df of the flexible candidate (rstanarm; NULL: `fit_hurdle_options()`'s default).
#'   Only that candidate gets it: the plain model has no splines and does not take the argument.
#' @return a named list (`no_effect`, `default`, `flexible`) of one-chain `bayeslift_model`s, class
#'   `bayeslift_candidates`.
fit_candidate_chains <- function(..., no_effect = FALSE, spline_df = NULL) {
  args <- list(...)
  flexible <- utils::modifyList(args, list(flexible = TRUE))
  if (!is.null(spline_df)) flexible$spline_df <- spline_df
  fits <- list(default = do.call(fit_causal_model_chain, args), flexible = do.call(fit_causal_model_chain, flexible))
  if (no_effect) {
    plain <- utils::modifyList(args, list(effect = FALSE, flexible = FALSE, shrinkage = "none", propensity = FALSE))
    fits <- c(list(no_effect = do.call(fit_causal_model_chain, plain)), fits)
  }
  structure(fits, class = "bayeslift_candidates")
}

#' Combine each candidate's chains, then keep the candidate PSIS-LOO prefers (`select_model_by_loo()`) or
#' mix them all (`stack_models()`) by LOO stacking weights ("stack") or pseudo-BMA+ weights ("pseudo_bma";
#' `stack_weights_by_loo()`).
#'
#' @param chains a list of `bayeslift_candidates` (one per chain).
#' @param combine "pick", "stack" or "pseudo_bma".
#' @return the chosen multi-chain `bayeslift_model`, or a `bayeslift_stack`, with `selection` (method,
#'   chosen name or "stack", the LOO table, and for a mixture the weights).
combine_and_select_candidates <- function(chains, combine = c("pick", "stack", "pseudo_bma")) {
  combine <- match.arg(combine)
  names <- names(Filter(function(x) inherits(x, "bayeslift_model"), chains[[1]]))  # not e.g. fit_seconds
  combined <- stats::setNames(lapply(names, function(nm) combine_chain_fits(lapply(chains, `[[`, nm))), names)
  sel <- select_model_by_loo(combined)
  if (combine != "pick") {
    model <- stack_models(combined, stack_weights_by_loo(sel$loos, combine))
    model$selection <- list(method = combine, chosen = "stack", weights = as.list(model$all_weights), table = sel$table)
    return(model)
  }
  model <- combined[[sel$chosen]]
  model$selection <- list(method = "pick", chosen = sel$chosen, table = sel$table)
  model
}

#' Combine one-chain fits into one multi-chain `bayeslift_model`.
#'
#' rstanarm: the parts' stanfits are merged with `rstan::sflist2stanfit()` and put back into the first
#' chain's stanreg (posterior_epred, posterior_linpred and as.matrix read the draws from `$stanfit`).
#' brms: `brms::combine_models()`. Chains are combined in the order given.
#'
#' @param fits a list of one-chain `bayeslift_model`s of the same model and data.
#' @return a `bayeslift_model` whose draws are those of every chain, chain after chain.
combine_chain_fits <- function(fits) {
  if (!length(fits)) stop("combine_chain_fits: no chains to combine")
  backends <- unique(vapply(fits, function(f) f$backend, character(1)))
  if (length(backends) != 1) stop("combine_chain_fits: chains come from different back-ends: ", paste(backends, collapse = ", "))
  for (f in fits[-1]) {
    if (!identical(f$spec, fits[[1]]$spec) || !identical(f$scaling, fits[[1]]$scaling))
      stop("combine_chain_fits: chains were fitted on different data or feature specs")
  }
  model <- fits[[1]]
  if (backends == "brms") {
    model$fit <- if (length(fits) == 1) fits[[1]]$fit else
      brms::combine_models(mlist = lapply(fits, function(f) f$fit), check_data = FALSE)
  } else {
    for (part in stanreg_parts(model)) {
      sfs <- lapply(fits, function(f) f[[part]]$stanfit)
      model[[part]]$stanfit <- if (length(sfs) == 1) sfs[[1]] else rstan::sflist2stanfit(sfs)
    }
  }
  model$chain_id <- NULL
  model$chains <- length(fits)
  model
}

#' Users of one shard: whole chunks of `chunk_size` users, contiguous, so the chunks (and every number
#' computed per chunk) are the same whatever the number of shards.
#'
#' @param n number of users.
#' @param chunk_size users per chunk.
#' @param shard 1-based shard number.
#' @param shards number of shards.
#' @return integer row indices (possibly empty when there are more shards than chunks).
shard_rows <- function(n, chunk_size, shard, shards) {
  n_chunks <- ceiling(n / chunk_size)
  first <- floor((shard - 1) * n_chunks / shards)  # chunks [first, last) of 0-based chunk numbers
  last <- floor(shard * n_chunks / shards)
  if (last <= first) return(integer(0))
  seq.int(first * chunk_size + 1L, min(n, last * chunk_size))
}

#' Counterfactual tables of one shard of users, plus each chunk's per-draw spend sums for the ATE.
#'
#' Same columns and numbers as `export_counterfactuals()`; the per-chunk sums let
#' `gather_counterfactual_shards()` add them up in the same order whatever the sharding.
#'
#' @param model a `bayeslift_model`.
#' @param users this shard's users (id, features, `split`).
#' @param chunk_size users per chunk.
#' @param margin,cost the contact policy, as for `export_counterfactuals()`.
#' @return a list: `train_data`, `labels`, `uplift` (data.frames, possibly with no rows), `sum_treated`
#'   and `sum_control` (lists of per-draw sum vectors, one per chunk), `n_users`, and `interval_scale` (NULL
#'   unless the model carries an interval calibration).
export_counterfactual_shard <- function(model, users, chunk_size = 2000L, margin = 1, cost = 0) {
  n <- nrow(users)
  starts <- if (n) seq(1L, n, by = chunk_size) else integer(0)
  parts <- vector("list", length(starts))
  sum_treated <- sum_control <- vector("list", length(starts))
  for (k in seq_along(starts)) {
    rows <- starts[k]:min(n, starts[k] + chunk_size - 1L)
    chunk <- users[rows, , drop = FALSE]
    out <- export_counterfactuals(model, chunk, chunk_size = nrow(chunk), margin = margin, cost = cost)
    parts[[k]] <- out[c("train_data", "labels", "uplift")]
    sum_treated[[k]] <- out$draw_sums$treated
    sum_control[[k]] <- out$draw_sums$control
  }
  bind <- function(key) {
    if (!length(parts)) return(NULL)
    out <- do.call(rbind, lapply(parts, `[[`, key))
    rownames(out) <- NULL
    out
  }
  list(train_data = bind("train_data"), labels = bind("labels"), uplift = bind("uplift"),
       sum_treated = sum_treated, sum_control = sum_control, n_users = n,
       interval_scale = model$interval_calibration$scale)
}

#' Gather counterfactual shards (in shard order) into the tables and the ATE of `export_counterfactuals()`.
#'
#' @param shards a list of `export_counterfactual_shard()` results, in shard order.
#' @return a list: `train_data`, `labels`, `uplift` and `ate`, as `export_counterfactuals()` returns (`ate`
#'   also has `interval_scale` when the per-user intervals were calibrated).
gather_counterfactual_shards <- function(shards) {
  bind <- function(key) {
    out <- do.call(rbind, Filter(Negate(is.null), lapply(shards, `[[`, key)))
    if (is.null(out)) stop("gather_counterfactual_shards: every shard is empty")
    rownames(out) <- NULL
    out
  }
  sums_t <- unlist(lapply(shards, `[[`, "sum_treated"), recursive = FALSE)
  sums_c <- unlist(lapply(shards, `[[`, "sum_control"), recursive = FALSE)
  sum_treated <- sum_control <- 0
  for (k in seq_along(sums_t)) {  # chunk after chunk, as export_counterfactuals() adds them
    sum_treated <- sum_treated + sums_t[[k]]
    sum_control <- sum_control + sums_c[[k]]
  }
  n <- sum(vapply(shards, function(s) as.numeric(s$n_users), numeric(1)))
  ate <- ate_summary(sum_treated, sum_control, n)
  ate$interval_scale <- shards[[1]]$interval_scale  # model.calibrate_intervals: the report says so
  list(train_data = bind("train_data"), labels = bind("labels"), uplift = bind("uplift"), ate = ate)
}
