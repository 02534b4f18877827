# Snakemake entry for two rules:
#   counterfactuals_shard: counterfactual spend for both arms of one shard of the train + holdout users
#     (whole chunks, contiguous; bayeslift::export_counterfactual_shard()), saved as RDS;
#   counterfactuals: the shards gathered in order (bayeslift::gather_counterfactual_shards()), checked against the
#     boundary schema before anything is written.
.libPaths(c(file.path(snakemake@scriptdir, ".rlib"), .libPaths()))  # where `make install` puts the package
library(bayeslift)

shard_main <- function() {
  check_installed_sources(snakemake@input[["rlib"]])
  spec <- read_feature_spec(snakemake@input[["spec"]])
  train <- read_prepared(snakemake@input[["train"]], spec)
  holdout <- read_prepared(snakemake@input[["holdout"]], spec)
  train$split <- "train"
  holdout$split <- "holdout"
  users <- rbind(train, holdout)
  chunk_size <- as.integer(snakemake@params[["chunk_size"]])
  shard <- as.integer(snakemake@wildcards[["shard"]])
  shards <- as.integer(snakemake@params[["shards"]])
  rows <- shard_rows(nrow(users), chunk_size, shard, shards)
  message(sprintf("shard %d of %d: %d of %d users", shard, shards, length(rows), nrow(users)))
  fail <- Sys.getenv("BAYESLIFT_FAIL_SHARD", "")  # fault-injection hook for the scaling tests
  if (nzchar(fail) && identical(as.integer(fail), shard)) stop("BAYESLIFT_FAIL_SHARD=", fail, ": shard ", shard, " fails on purpose")
  model <- readRDS(snakemake@input[["fit"]])
  calibration <- snakemake@input[["calibration"]]
  if (length(calibration)) {  # model.intervals.calibrate (bayeslift::calibrate_uplift_intervals())
    model$interval_calibration <- jsonlite::read_json(calibration, simplifyVector = TRUE)
    message(sprintf("per-user uplift intervals scaled by %.3f (parametric-bootstrap calibration)", model$interval_calibration$scale))
  }
  policy <- arm_policy(snakemake@params[["policy"]], spec)
  out <- export_counterfactual_shard(model, users[rows, , drop = FALSE], chunk_size = chunk_size,
                                     margin = policy$margin, cost = policy$cost)
  save_rds_atomic(out, snakemake@output[["shard"]])
}

gather_main <- function() {
  check_installed_sources(snakemake@input[["rlib"]])
  spec <- read_feature_spec(snakemake@input[["spec"]])
  out <- gather_counterfactual_shards(lapply(unlist(snakemake@input[["shards"]]), readRDS))
  schema <- snakemake@input[["schema"]]
  tables <- list(train_data = "surrogate_train_data", labels = "surrogate_labels", uplift = "uplift_summary")
  for (key in names(tables)) check_boundary_table(out[[key]], tables[[key]], spec, snakemake@output[[key]], schema)
  for (key in names(tables)) write_csv_atomic(out[[key]], snakemake@output[[key]])
  write_json_atomic(out$ate, snakemake@output[["ate"]])
  message(sprintf("ATE %.3f (90%% interval %.3f to %.3f) over %d users", out$ate$ate_mean, out$ate$ate_q05,
                  out$ate$ate_q95, out$ate$n_users))
}

run_entry(if (snakemake@rule == "counterfactuals_shard") shard_main else gather_main, snakemake@log[[1]])
