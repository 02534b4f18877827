# Bench helper of bench/bench_eval.py: the pipeline's Bayesian steps for one train/holdout split, in one
# process. Fits the default model (the package's defaults, config/config.yaml's) on the training users (both chains at once, each seeded as
# the pipeline's chain jobs seed theirs), checks the
# MCMC diagnostics (as rule bayesian_model) and exports the counterfactual tables for the train + holdout
# users (as rule counterfactuals), checked against the boundary schema. Every step is a bayeslift function.
#
# Usage: Rscript bench/bayes_fit.R REPO SPEC_JSON TRAIN_CSV HOLDOUT_CSV OUT_DIR ITER SEED
# Writes OUT_DIR/{surrogate_train_data,surrogate_labels,uplift_summary}.csv, ate.json and diagnostics.json.
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 7) stop("usage: Rscript bench/bayes_fit.R REPO SPEC_JSON TRAIN_CSV HOLDOUT_CSV OUT_DIR ITER SEED")
repo <- args[1]
.libPaths(c(file.path(repo, "R", ".rlib"), .libPaths()))  # where `make install` puts the package
library(bayeslift)
spec <- read_feature_spec(args[2])
train <- read_prepared(args[3], spec)
holdout <- read_prepared(args[4], spec)
out_dir <- args[5]
iter <- as.integer(args[6])
seed <- as.integer(args[7])

started <- Sys.time()
# The default model section with the bench's sampler settings, fitted as the pipeline's chain jobs do.
model <- fit_configured_model(train, spec, list(inference = list(chains = 2L, iter = iter, seed = seed)),
                              cores = 2L)
fit_seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
diagnostics <- model_diagnostics(model)
problems <- diagnostic_problems(diagnostics)
treatment_rows <- grepl(spec$treatment, diagnostics$parameters$variable, fixed = TRUE)

train$split <- "train"
holdout$split <- "holdout"
started <- Sys.time()
out <- export_counterfactuals(model, rbind(train, holdout))
export_seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
schema <- file.path(repo, "python", "bayeslift", "boundary.yaml")
tables <- list(train_data = "surrogate_train_data", labels = "surrogate_labels", uplift = "uplift_summary")
for (key in names(tables)) {
  path <- file.path(out_dir, paste0(tables[[key]], ".csv"))
  check_boundary_table(out[[key]], tables[[key]], spec, path, schema)
  write_csv_atomic(out[[key]], path)
}
write_json_atomic(out$ate, file.path(out_dir, "ate.json"))
write_json_atomic(list(
  iter = iter, chains = 2L, n_users = nrow(train), fit_seconds = fit_seconds, export_seconds = export_seconds,
  passed = length(problems) == 0, problems = I(problems), parts = diagnostics$parts,
  treatment_rhat_max = max(diagnostics$parameters$rhat[treatment_rows]),
  treatment_ess_bulk_min = min(diagnostics$parameters$ess_bulk[treatment_rows]),
  treatment_ess_tail_min = min(diagnostics$parameters$ess_tail[treatment_rows])
), file.path(out_dir, "diagnostics.json"))
