# Snakemake entry: fit one MCMC chain (wildcard `chain`) of every candidate model the config's `model`
# section describes, or the one variational fit (model.inference.algorithm meanfield/fullrank); `bayesian_model`
# combines the chains. The work is done by bayeslift::fit_candidates().
.libPaths(c(file.path(snakemake@scriptdir, ".rlib"), .libPaths()))  # where `make install` puts the package
library(bayeslift)

main <- function() {
  check_installed_sources(snakemake@input[["rlib"]])
  spec <- read_feature_spec(snakemake@input[["spec"]])
  m <- kept_model_config(snakemake@params[["model"]], snakemake@input[["pick"]])
  if (!is.null(m$kept)) message("shape auto: fitting candidate '", m$kept$candidate, "' only, as PSIS-LOO kept it (",
                                m$kept$from, ")")
  # Same seed in every chain job: the chains must share a subsample to be combined. The delivered refit
  # (split.refit_all) reads the holdout split too: every row.
  rows <- do.call(rbind, lapply(unlist(snakemake@input[["train"]]), read_prepared, spec = spec))
  train <- configured_training_rows(rows, spec, m)
  chain <- as.integer(snakemake@wildcards[["chain"]])
  inf <- m$inference
  message(sprintf("fitting %s chain %d of %s on %d users: %s, %d iterations, seed %d", m$backend, chain,
                  paste(names(model_candidates(m, outcome_type(spec))), collapse = ", "), nrow(train), inf$algorithm, inf$iter, inf$seed + chain))
  started <- Sys.time()
  candidates <- fit_candidates(train, spec, m, chain = chain)
  candidates$fit_seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
  message(sprintf("chain %d took %.1f s", chain, candidates$fit_seconds))
  save_rds_atomic(candidates, snakemake@output[["fit"]])
}

run_entry(main, snakemake@log[[1]])
