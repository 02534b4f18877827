# Snakemake entry: calibrate the per-user 90% uplift intervals by parametric bootstrap
# (model.intervals.calibrate): simulate the training outcomes from the fitted model's posterior-mean
# parameters, refit the configured model, and find the interval scale that covers 90% of the known
# uplift. The work is done by bayeslift::calibrate_uplift_intervals(), each refit by
# bayeslift::fit_configured_model() (the same candidates as the chain jobs).
.libPaths(c(file.path(snakemake@scriptdir, ".rlib"), .libPaths()))  # where `make install` puts the package
library(bayeslift)

main <- function() {
  check_installed_sources(snakemake@input[["rlib"]])
  spec <- read_feature_spec(snakemake@input[["spec"]])
  m <- kept_model_config(snakemake@params[["model"]], snakemake@input[["pick"]])  # the refits fit what was kept
  replicates <- snakemake@params[["intervals"]][["replicates"]]
  model <- readRDS(snakemake@input[["fit"]])
  rows <- do.call(rbind, lapply(unlist(snakemake@input[["train"]]), read_prepared, spec = spec))  # the fit's rows
  train <- configured_training_rows(rows, spec, m)
  cores <- as.integer(snakemake@threads)
  message(sprintf("calibrating uplift intervals: %d replicate(s), each a refit of the configured model on %d users (%d cores)",
                  replicates, nrow(train), cores))
  refit <- function(data) suppressMessages(fit_configured_model(data, spec, m, cores = cores))
  calibration <- calibrate_uplift_intervals(model, train, refit, replicates = replicates, seed = m$inference$seed)
  message(sprintf("interval scale %.3f (%.0f s): per-user uplift half-widths are multiplied by it", calibration$scale,
                  calibration$seconds))
  write_json_atomic(calibration, snakemake@output[["calibration"]])
}

run_entry(main, snakemake@log[[1]])
