# Snakemake entry: fit the causal model of spend and check its MCMC diagnostics.
# The work is done by plain functions in R/lib (fit_causal_model, model_diagnostics).
for (f in snakemake@input[["rlib"]]) source(f)
sink_to_log(snakemake@log[[1]])

main <- function() {
  spec <- read_feature_spec(snakemake@input[["spec"]])
  train <- read_prepared(snakemake@input[["train"]], spec)
  m <- snakemake@params[["model"]]
  d <- snakemake@params[["diagnostics"]]
  message(sprintf("fitting %s on %d users: %d chains x %d iterations", m$backend, nrow(train), m$chains, m$iter))
  started <- Sys.time()
  args <- list(data = train, spec = spec, backend = m$backend, chains = m$chains, iter = m$iter,
               seed = m$seed, cores = snakemake@threads, adapt_delta = m$adapt_delta)
  if (m$backend == "brms") {
    args$formula <- if (length(m$brms$formula)) unlist(m$brms$formula) else NULL
    args$cache_dir <- m$brms$cache_dir
  }
  model <- do.call(fit_causal_model, args)
  seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
  diagnostics <- model_diagnostics(model)
  problems <- diagnostic_problems(diagnostics, d$rhat_max, d$ess_bulk_min, d$ess_tail_min, d$divergences_max)
  summary <- list(backend = m$backend, n_users = nrow(train), fit_seconds = seconds, passed = length(problems) == 0,
                  problems = I(problems), thresholds = d[c("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences_max")],
                  parts = diagnostics$parts)
  message(sprintf("fit took %.1f s; diagnostics %s", seconds, if (summary$passed) "passed" else "FAILED"))
  for (p in problems) message("  ", p)
  if (length(problems) && d$on_fail == "stop")
    stop("MCMC diagnostics failed: ", paste(problems, collapse = "; "),
         " (raise model.iter or model.adapt_delta, or set diagnostics.on_fail: warn)")
  if (length(problems)) warning("MCMC diagnostics failed but diagnostics.on_fail is 'warn': ", paste(problems, collapse = "; "))
  save_rds_atomic(model, snakemake@output[["fit"]])
  write_csv_atomic(diagnostics$parameters, snakemake@output[["parameters"]])
  write_json_atomic(summary, snakemake@output[["diagnostics"]])
}

run_entry(main)
