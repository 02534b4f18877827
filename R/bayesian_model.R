# Snakemake entry: combine the per-chain fits (rule `bayesian_chain`) and check the MCMC diagnostics
# across chains (or a variational fit's Pareto k). The work is done by plain functions in R/lib (combine_chain_fits, model_diagnostics).
for (f in snakemake@input[["rlib"]]) source(f)
sink_to_log(snakemake@log[[1]])

main <- function() {
  m <- snakemake@params[["model"]]
  d <- snakemake@params[["diagnostics"]]
  paths <- unlist(snakemake@input[["chains"]])
  fits <- lapply(paths, readRDS)
  seconds <- sum(vapply(fits, function(f) if (is.null(f$fit_seconds)) NA_real_ else f$fit_seconds, numeric(1)))
  for (i in seq_along(fits)) fits[[i]]$fit_seconds <- NULL
  message(sprintf("combining %d %s chains (%s)", length(fits), m$backend, paste(basename(paths), collapse = ", ")))
  model <- if (inherits(fits[[1]], "bayeslift_candidates")) combine_and_select_candidates(fits, m$auto_combine) else combine_chain_fits(fits)
  if (inherits(model, "bayeslift_stack")) {
    w <- unlist(model$selection$weights)
    message("model: auto mixed the candidates (", model$selection$method, " weights from PSIS-LOO): ",
            paste(sprintf("%s %.3f", names(w), w), collapse = ", "))
  } else if (!is.null(model$selection)) message("model: auto chose '", model$selection$chosen, "' by PSIS-LOO")
  n_users <- model_n_users(model)
  # ADVI has no chains to compare: its check is the Pareto k of the importance ratios (R/lib/approximate.R).
  variational <- is_variational(model)
  if (variational) {
    diagnostics <- variational_diagnostics(model)
    problems <- variational_problems(diagnostics, d$pareto_k_max)
    thresholds <- d["pareto_k_max"]
  } else {
    diagnostics <- model_diagnostics(model)
    problems <- diagnostic_problems(diagnostics, d$rhat_max, d$ess_bulk_min, d$ess_tail_min, d$divergences_max)
    thresholds <- d[c("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences_max")]
  }
  summary <- list(backend = m$backend, algorithm = m$algorithm, n_users = n_users, chains = length(fits),
                  fit_seconds = seconds, passed = length(problems) == 0, problems = I(problems),
                  thresholds = thresholds, parts = diagnostics$parts)
  if (isTRUE(d$model_checks) && !variational) {  # LOO and posterior predictive checks, shown in the report
    spec <- read_feature_spec(snakemake@input[["spec"]])
    summary$model_checks <- model_checks(model, read_prepared(snakemake@input[["train"]], spec))
    message(sprintf("PSIS-LOO elpd %.1f (se %.1f), %d Pareto k > 0.7", summary$model_checks$loo$elpd,
                    summary$model_checks$loo$se, summary$model_checks$loo$n_high_k))
  }
  message(sprintf("chains took %.1f s in all; diagnostics %s", seconds, if (summary$passed) "passed" else "FAILED"))
  for (p in problems) message("  ", p)
  if (length(problems) && d$on_fail == "stop")
    stop(if (variational) "variational diagnostics failed: " else "MCMC diagnostics failed: ", paste(problems, collapse = "; "),
         if (variational) " (use model.algorithm: sampling, with model.fit_subsample if time is short, or set diagnostics.on_fail: warn)"
         else " (raise model.iter or model.adapt_delta, or set diagnostics.on_fail: warn)")
  if (length(problems)) warning("diagnostics failed but diagnostics.on_fail is 'warn': ", paste(problems, collapse = "; "))
  save_rds_atomic(model, snakemake@output[["fit"]])
  write_csv_atomic(diagnostics$parameters, snakemake@output[["parameters"]])
  write_json_atomic(summary, snakemake@output[["diagnostics"]])
}

run_entry(main)
