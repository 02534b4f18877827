# The R half of bayeslift.fit_bayesian() (python/bayeslift/bayesian.py): the pipeline's Bayesian steps for one
# prepared train/holdout split, in one process, with every step a bayeslift function. Fits the model the
# config's `model` section describes (on the train split, or on every row with split.refit_all), checks
# convergence against model.checks, and exports the counterfactual tables of the train + holdout users, each
# checked against the boundary schema before it is written.
#
# Usage: Rscript fit_bayesian.R SETTINGS_JSON
# SETTINGS_JSON: spec, train, holdout (paths), schema (boundary.yaml), out_dir, model (the config's model
# section), policy (margin, cost_per_contact, arms), chunk_size, cores, refit_all.
# Writes out_dir/diagnostics.json first; then, unless the checks failed with model.checks.on_fail "stop" (exit
# status 3), out_dir/{surrogate_train_data,surrogate_labels,uplift_summary}.csv and out_dir/ate.json.
library(bayeslift)

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript fit_bayesian.R SETTINGS_JSON", call. = FALSE)
s <- jsonlite::read_json(args[1], simplifyVector = TRUE)
spec <- read_feature_spec(s$spec)
train <- read_prepared(s$train, spec)
holdout <- read_prepared(s$holdout, spec)
m <- s$model

rows <- configured_training_rows(if (isTRUE(s$refit_all)) rbind(train, holdout) else train, spec, m)
message(sprintf("fitting %s on %d users (%s, %d chains of %d iterations)", m$backend, nrow(rows),
                m$inference$algorithm, as.integer(m$inference$chains), as.integer(m$inference$iter)))
started <- Sys.time()
model <- fit_configured_model(rows, spec, m, cores = as.integer(s$cores))
fit_seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
check <- check_convergence(model, m$checks)
stop_fit <- length(check$problems) > 0 && identical(m$checks$on_fail, "stop")
write_json_atomic(list(
  backend = m$backend, algorithm = m$inference$algorithm, n_users = nrow(rows),
  fitted_on = if (isTRUE(s$refit_all)) "all" else "train", fit_seconds = fit_seconds,
  passed = length(check$problems) == 0, problems = I(check$problems), thresholds = check$thresholds,
  parts = check$diagnostics$parts,
  selection = if (!is.null(model$selection)) model$selection[c("method", "chosen")]  # shape auto's LOO choice
), file.path(s$out_dir, "diagnostics.json"))
if (stop_fit) {
  message("diagnostics failed: ", paste(check$problems, collapse = "; "))
  quit(save = "no", status = 3)
}

train$split <- "train"
holdout$split <- "holdout"
policy <- arm_policy(s$policy, spec)  # one margin and cost per campaign arm
out <- export_counterfactuals(model, rbind(train, holdout), chunk_size = as.integer(s$chunk_size),
                              margin = policy$margin, cost = policy$cost)
tables <- list(train_data = "surrogate_train_data", labels = "surrogate_labels", uplift = "uplift_summary")
for (key in names(tables)) {
  path <- file.path(s$out_dir, paste0(tables[[key]], ".csv"))
  check_boundary_table(out[[key]], tables[[key]], spec, path, s$schema)
  write_csv_atomic(out[[key]], path)
}
write_json_atomic(out$ate, file.path(s$out_dir, "ate.json"))
