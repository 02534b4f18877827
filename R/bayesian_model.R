# Snakemake entry: combine the per-chain fits (rule `bayesian_chain`), keep or mix the candidates
# (model.effect.shape: auto), and check convergence across chains (or a variational fit's Pareto k). The work is done by
# bayeslift::choose_model() and bayeslift::check_convergence().
.libPaths(c(file.path(snakemake@scriptdir, ".rlib"), .libPaths()))  # where `make install` puts the package
library(bayeslift)

main <- function() {
  check_installed_sources(snakemake@input[["rlib"]])
  m <- snakemake@params[["model"]]
  d <- snakemake@params[["checks"]]
  paths <- unlist(snakemake@input[["chains"]])
  chains <- lapply(paths, readRDS)
  seconds <- sum(vapply(chains, function(f) if (is.null(f$fit_seconds)) NA_real_ else f$fit_seconds, numeric(1)))
  message(sprintf("combining %d %s chains (%s)", length(chains), m$backend, paste(basename(paths), collapse = ", ")))
  model <- choose_model(chains, m$combine)
  if (!is.null(model$selection$weights)) {
    w <- unlist(model$selection$weights)
    message("model: the candidates were mixed (", model$selection$method, " weights from PSIS-LOO): ",
            paste(sprintf("%s %.3f", names(w), w), collapse = ", "))
  } else if (!is.null(model$selection)) message("model: PSIS-LOO chose '", model$selection$chosen, "'")
  check <- check_convergence(model, d)
  problems <- check$problems
  summary <- list(backend = m$backend, algorithm = m$inference$algorithm, n_users = model_n_users(model), chains = length(chains),
                  fit_seconds = seconds, passed = length(problems) == 0, problems = I(problems),
                  thresholds = check$thresholds, parts = check$diagnostics$parts)
  if (isTRUE(d$model_checks) && !check$variational) {  # LOO and posterior predictive checks, shown in the report
    spec <- read_feature_spec(snakemake@input[["spec"]])
    summary$model_checks <- model_checks(model, read_prepared(snakemake@input[["train"]], spec))
    message(sprintf("PSIS-LOO elpd %.1f (se %.1f), %d Pareto k > 0.7", summary$model_checks$loo$elpd,
                    summary$model_checks$loo$se, summary$model_checks$loo$n_high_k))
  }
  message(sprintf("chains took %.1f s in all; diagnostics %s", seconds, if (summary$passed) "passed" else "FAILED"))
  for (p in problems) message("  ", p)
  if (length(problems) && d$on_fail == "stop")
    stop(if (check$variational) "variational diagnostics failed: " else "MCMC diagnostics failed: ", paste(problems, collapse = "; "),
         if (check$variational) " (use model.inference.algorithm: sampling, with model.inference.fit_subsample if time is short, or set model.checks.on_fail: warn)"
         else " (raise model.inference.iter or model.inference.adapt_delta, or set model.checks.on_fail: warn)")
  if (length(problems)) warning("diagnostics failed but model.checks.on_fail is 'warn': ", paste(problems, collapse = "; "))
  save_rds_atomic(model, snakemake@output[["fit"]])
  write_csv_atomic(check$diagnostics$parameters, snakemake@output[["parameters"]])
  write_json_atomic(summary, snakemake@output[["diagnostics"]])
}

run_entry(main, snakemake@log[[1]])
