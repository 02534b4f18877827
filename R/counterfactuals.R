# Snakemake entry: counterfactual spend for both arms of every train and holdout user, checked against
# the boundary schema before anything is written. The work is done by export_counterfactuals() in R/lib.
for (f in snakemake@input[["rlib"]]) source(f)
sink_to_log(snakemake@log[[1]])

main <- function() {
  spec <- read_feature_spec(snakemake@input[["spec"]])
  train <- read_prepared(snakemake@input[["train"]], spec)
  holdout <- read_prepared(snakemake@input[["holdout"]], spec)
  train$split <- "train"
  holdout$split <- "holdout"
  model <- readRDS(snakemake@input[["fit"]])
  out <- export_counterfactuals(model, rbind(train, holdout), chunk_size = snakemake@params[["chunk_size"]])
  schema <- snakemake@input[["schema"]]
  tables <- list(train_data = "surrogate_train_data", labels = "surrogate_labels", uplift = "uplift_summary")
  for (key in names(tables)) check_boundary_table(out[[key]], tables[[key]], spec, snakemake@output[[key]], schema)
  for (key in names(tables)) write_csv_atomic(out[[key]], snakemake@output[[key]])
  write_json_atomic(out$ate, snakemake@output[["ate"]])
  message(sprintf("ATE %.3f (90%% interval %.3f to %.3f) over %d users", out$ate$ate_mean, out$ate$ate_q05,
                  out$ate$ate_q95, out$ate$n_users))
}

run_entry(main)
