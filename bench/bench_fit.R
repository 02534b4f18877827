# Bench helper of bench/bench_accuracy.py: fit each variant's model section exactly as the pipeline does
# (bayeslift::fit_configured_model(): the config's model section -> candidates -> pick or stack), optionally
# calibrate its per-user intervals as rule interval_calibration does, and summarise the held-out users.
#
# Usage: Rscript bench/bench_fit.R REPO SPEC_JSON TRAIN_CSV USERS_CSV VARIANTS_JSON OUT_JSON EXPORT_DIR CALIBRATE
#   VARIANTS_JSON: {"variant": {model section}, ...}; EXPORT_DIR: "" for no surrogate tables, else each variant's
#   counterfactual tables go to EXPORT_DIR/<variant>/; CALIBRATE: bootstrap replicates per variant (0: none).
# Writes OUT_JSON: models (per variant and variant+cal: fitted, export, seconds, ATE and per-user uplift with its
# 90% interval), weights (stacks' LOO weights), chosen and loo (auto picks), calibration (per variant+cal).
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 8) stop("usage: Rscript bench/bench_fit.R REPO SPEC TRAIN USERS VARIANTS_JSON OUT_JSON EXPORT_DIR CALIBRATE")
.libPaths(c(file.path(args[1], "R", ".rlib"), .libPaths()))  # where `make install` puts the package
library(bayeslift)
spec <- read_feature_spec(args[2])
train <- read_prepared(args[3], spec)
users <- read_prepared(args[4], spec)
variants <- jsonlite::read_json(args[5], simplifyVector = TRUE)
export_dir <- args[7]
replicates <- as.integer(args[8])

summary_of <- function(model, fitted, export, seconds) {
  a <- ate_posterior(model, users)
  list(fitted = fitted, export = export, seconds = seconds, ate_mean = a$mean, ate_q05 = a$q05, ate_q95 = a$q95,
       uplift = a$uplift_mean, lower = unname(a$uplift_q05), upper = unname(a$uplift_q95))
}

out <- list(chosen = list(), loo = list(), weights = list(), models = list(), calibration = list())
for (name in names(variants)) {
  section <- variants[[name]]
  refit <- function(data) suppressWarnings(suppressMessages(fit_configured_model(data, spec, section, cores = 2L)))
  started <- Sys.time()
  model <- refit(train)
  seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
  fitted <- name  # a pick is reported under the candidate it kept
  if (identical(model$selection$method, "pick")) {
    fitted <- model$selection$chosen
    out$chosen[[name]] <- fitted
    out$loo[[name]] <- model$selection$table
  }
  if (!is.null(model$selection$weights)) out$weights[[name]] <- model$selection$weights
  out$models[[name]] <- summary_of(model, fitted, name, seconds)
  # per part: R-hat, ESS and divergences, as rule bayesian_model checks them
  out$models[[name]]$diagnostics <- tryCatch(model_diagnostics(model)$parts, error = function(e) NULL)
  if (replicates > 0) {
    cal <- calibrate_uplift_intervals(model, train, refit, replicates = replicates)
    model$interval_calibration <- cal
    out$calibration[[paste0(name, "+cal")]] <- cal[c("scale", "coverage_before", "seconds")]  # by variant: picks may share a name
    out$models[[paste0(name, "+cal")]] <- summary_of(model, paste0(fitted, "+cal"), paste0(name, "+cal"), seconds + cal$seconds)
  }
  if (nzchar(export_dir)) {  # the surrogate's training tables, as rule counterfactuals writes them
    train$split <- "train"
    users$split <- "holdout"
    for (key in names(out$models)[names(out$models) %in% c(name, paste0(name, "+cal"))]) {
      m <- model
      if (!endsWith(key, "+cal")) m$interval_calibration <- NULL
      tables <- export_counterfactuals(m, rbind(train, users))
      for (table in c("train_data", "labels", "uplift"))
        write_csv_atomic(tables[[table]], file.path(export_dir, key, paste0(table, ".csv")))
    }
    train$split <- users$split <- NULL
  }
}
jsonlite::write_json(out, args[6], digits = NA, auto_unbox = TRUE)
