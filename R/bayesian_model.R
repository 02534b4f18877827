# Snakemake entry: combine the per-chain fits (rule `bayesian_chain`), keep or mix the candidates
# (model.effect.shape: auto), and check convergence across chains (or a variational fit's Pareto k). The work is done by
# bayeslift::choose_model() and bayeslift::check_convergence().
.libPaths(c(file.path(snakemake@scriptdir, ".rlib"), .libPaths()))  # where `make install` puts the package
library(bayeslift)

main <- function() {
  check_installed_sources(snakemake@input[["rlib"]])
  m <- kept_model_config(snakemake@params[["model"]], snakemake@input[["pick"]])  # extensions refit what was kept
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
  # rule shape_choice compared the candidates on a subsample: the report shows that comparison
  if (!is.null(kept_selection(m))) model$selection <- kept_selection(m)
  check <- check_convergence(model, d)
  spec <- read_feature_spec(snakemake@input[["spec"]])
  train <- do.call(rbind, lapply(unlist(snakemake@input[["train"]]), read_prepared, spec = spec))  # the rows the chains saw
  extension <- NULL
  if (length(check$problems) && d$on_fail == "stop") {  # sample longer before refusing (model.checks.extend_minutes)
    cores <- as.integer(snakemake@threads)
    rows <- configured_training_rows(train, spec, m)
    refit <- function(iter, adapt_delta) {
      longer <- m
      longer$inference$iter <- iter
      longer$inference$adapt_delta <- adapt_delta
      choose_model(fit_candidates(rows, spec, longer, cores = cores), m$combine)
    }
    chain_seconds <- vapply(chains, function(f) if (is.null(f$fit_seconds)) NA_real_ else f$fit_seconds, numeric(1))
    wall <- max(chain_seconds, na.rm = TRUE) * ceiling(length(chains) / cores)  # chains side by side on `cores`
    extension <- extend_until_converged(model, check, refit, m$inference$iter, m$inference$adapt_delta, wall,
                                        budget_minutes = d$extend_minutes)
    model <- extension$model
    check <- extension$check
  }
  problems <- check$problems
  summary <- list(backend = m$backend, algorithm = m$inference$algorithm, n_users = model_n_users(model),
                  fitted_on = snakemake@params[["fitted_on"]], n_rows = nrow(train), chains = length(chains),
                  fit_seconds = seconds, passed = length(problems) == 0, problems = I(problems),
                  thresholds = check$thresholds, parts = check$diagnostics$parts)
  if (!is.null(model$selection)) summary$selection <- model$selection[c("method", "chosen")]
  if (!is.null(m$kept)) summary$selection <- list(method = "pick", chosen = m$kept$candidate, kept_from = m$kept$from)
  if (!is.null(extension)) summary$extension <- list(attempts = extension$attempts, note = extension$note)
  # LOO and posterior predictive checks, shown in the report for the evaluated (train split's) fit; the refit on
  # every row is the same model on more rows, so its checks would be computed (minutes at 64k users) and not shown.
  if (identical(summary$fitted_on, "all")) {
    message("model checks: the train split's fit has them (results/model/diagnostics.json); not repeated for the refit")
  } else if (isTRUE(d$model_checks) && !check$variational) {
    options(mc.cores = as.integer(snakemake@threads))  # PSIS-LOO's per-user work, on the rule's threads
    summary$model_checks <- model_checks(model, train)
    message(sprintf("PSIS-LOO elpd %.1f (se %.1f), %d Pareto k > 0.7", summary$model_checks$loo$elpd,
                    summary$model_checks$loo$se, summary$model_checks$loo$n_high_k))
  }
  message(sprintf("chains took %.1f s in all; diagnostics %s", seconds, if (summary$passed) "passed" else "FAILED"))
  for (p in problems) message("  ", p)
  tried <- if (is.null(extension) || nrow(extension$attempts) == 1) "" else
    sprintf("; tried %s iterations per chain (%s)", paste(extension$attempts$iter, collapse = ", "), extension$note)
  if (length(problems) && d$on_fail == "stop")
    stop(if (check$variational) "variational diagnostics failed: " else "MCMC diagnostics failed: ", paste(problems, collapse = "; "),
         tried, if (!is.null(extension) && nrow(extension$attempts) == 1) paste0(" (not extended: ", extension$note, ")"),
         if (check$variational) " (use model.inference.algorithm: sampling, with model.inference.fit_subsample if time is short, or set model.checks.on_fail: warn)"
         else " (raise model.inference.iter or model.inference.adapt_delta, or set model.checks.on_fail: warn)")
  if (length(problems)) warning("diagnostics failed but model.checks.on_fail is 'warn': ", paste(problems, collapse = "; "))
  save_rds_atomic(model, snakemake@output[["fit"]])
  write_csv_atomic(check$diagnostics$parameters, snakemake@output[["parameters"]])
  write_json_atomic(summary, snakemake@output[["diagnostics"]])
}

run_entry(main, snakemake@log[[1]])
