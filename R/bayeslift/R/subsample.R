# Fitting on fewer users: a stratified subsample for histories too large for NUTS in the time at hand
# (model.inference.fit_subsample); counterfactuals are still exported for every user.

# A proportionally stratified subsample of users: arm x (outcome > 0).
#
# Each of the (up to) four strata keeps its share of `data` (largest remainders make the sizes add up to
# `n`), so the arms' sizes and buying rates are those of the full history. Rows keep their order. The
# caller's random-number state is left as it was.
#
# @param data training data.frame (treatment 0/1, outcome >= 0).
# @param spec feature spec (for the treatment and outcome columns).
# @param n users to keep; `data` itself is returned when it has no more than `n` rows.
# @param seed seed of the draw (the same subsample for every chain job).
# @return a data.frame of `min(n, nrow(data))` rows of `data`.
stratified_subsample <- function(data, spec, n, seed = 1L) {
  n <- as.integer(n)
  if (is.na(n) || n < 1L) stop("stratified_subsample: n must be a positive integer", call. = FALSE)
  if (nrow(data) <= n) return(data)
  strata <- split(seq_len(nrow(data)), list(data[[spec$treatment]], data[[spec$outcome]] > 0), drop = TRUE)
  quota <- n * lengths(strata) / nrow(data)
  size <- floor(quota)
  extra <- n - sum(size)
  if (extra > 0) {
    top <- order(quota - size, decreasing = TRUE)[seq_len(extra)]
    size[top] <- size[top] + 1
  }
  # sample.int, not sample(): a stratum of one row would be taken for 1:row; with_seed(): stacking.R
  keep <- with_seed(seed, unlist(Map(function(rows, k) rows[sample.int(length(rows), k)], strata, size), use.names = FALSE))
  out <- data[sort(keep), , drop = FALSE]
  rownames(out) <- NULL
  out
}
