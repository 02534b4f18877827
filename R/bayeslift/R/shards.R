# Scatter/gather of the counterfactual export: a shard of users per job, gathered afterwards. The pipeline
# always goes through these (`shards: 1` by default), so a sharded run and the default run share one code path
# and give identical content.

#' Users of one shard of the counterfactual export
#'
#' Whole chunks of `chunk_size` users, contiguous, so the chunks (and every number computed per chunk) are
#' the same whatever the number of shards.
#'
#' @param n number of users.
#' @param chunk_size users per chunk.
#' @param shard 1-based shard number.
#' @param shards number of shards.
#' @return an integer vector of row indices (empty when there are more shards than chunks).
#' @export
shard_rows <- function(n, chunk_size, shard, shards) {
  n_chunks <- ceiling(n / chunk_size)
  first <- floor((shard - 1) * n_chunks / shards)  # chunks [first, last) of 0-based chunk numbers
  last <- floor(shard * n_chunks / shards)
  if (last <= first) return(integer(0))
  seq.int(first * chunk_size + 1L, min(n, last * chunk_size))
}

#' Counterfactual tables of one shard of users, plus each chunk's per-draw sums for the ATE
#'
#' Same columns and numbers as `export_counterfactuals()`; the per-chunk sums let
#' `gather_counterfactual_shards()` add them up in the same order whatever the sharding.
#'
#' @param model a fitted model or stack.
#' @param users this shard's users (id, features, `split`).
#' @param chunk_size users per chunk.
#' @param margin,cost the contact policy, as for `export_counterfactuals()`.
#' @return a list: `train_data`, `labels`, `uplift` (data.frames, possibly with no rows), `draw_sums` (one
#'   per chunk: the per-draw spend sums under each arm, as `export_counterfactuals()` names them), `n_users`,
#'   `spec`, and `interval_scale` (NULL unless the model carries an interval calibration).
#' @export
export_counterfactual_shard <- function(model, users, chunk_size = 2000L, margin = 1, cost = 0) {
  n <- nrow(users)
  starts <- if (n) seq(1L, n, by = chunk_size) else integer(0)
  parts <- draw_sums <- vector("list", length(starts))
  for (k in seq_along(starts)) {
    rows <- starts[k]:min(n, starts[k] + chunk_size - 1L)
    chunk <- users[rows, , drop = FALSE]
    out <- export_counterfactuals(model, chunk, chunk_size = nrow(chunk), margin = margin, cost = cost)
    parts[[k]] <- out[c("train_data", "labels", "uplift")]
    draw_sums[[k]] <- out$draw_sums
  }
  bind <- function(key) {
    if (!length(parts)) return(NULL)
    out <- do.call(rbind, lapply(parts, `[[`, key))
    rownames(out) <- NULL
    out
  }
  list(train_data = bind("train_data"), labels = bind("labels"), uplift = bind("uplift"),
       draw_sums = draw_sums, n_users = n, spec = model$spec, interval_scale = model$interval_calibration$scale)
}

#' Gather counterfactual shards (in shard order) into the tables and the ATE of [export_counterfactuals()]
#'
#' @param shards a list of `export_counterfactual_shard()` results, in shard order.
#' @return a list: `train_data`, `labels`, `uplift` and `ate`, as `export_counterfactuals()` returns (`ate`
#'   also has `interval_scale` when the per-user intervals were calibrated).
#' @export
gather_counterfactual_shards <- function(shards) {
  bind <- function(key) {
    out <- do.call(rbind, Filter(Negate(is.null), lapply(shards, `[[`, key)))
    if (is.null(out)) stop("gather_counterfactual_shards: every shard is empty", call. = FALSE)
    rownames(out) <- NULL
    out
  }
  chunks <- unlist(lapply(shards, `[[`, "draw_sums"), recursive = FALSE)
  if (!length(chunks)) stop("gather_counterfactual_shards: every shard is empty", call. = FALSE)
  sums <- chunks[[1]]
  for (chunk in chunks[-1]) sums <- Map(`+`, sums, chunk)  # chunk after chunk, as export_counterfactuals() adds them
  n <- sum(vapply(shards, function(s) as.numeric(s$n_users), numeric(1)))
  ate <- ate_of_sums(sums, n, shards[[1]]$spec)
  ate$interval_scale <- shards[[1]]$interval_scale  # model.intervals.calibrate: the report says so
  list(train_data = bind("train_data"), labels = bind("labels"), uplift = bind("uplift"), ate = ate)
}
