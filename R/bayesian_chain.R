# Snakemake entry: fit one MCMC chain (wildcard `chain`) of the causal model, or the one variational fit
# (model.algorithm meanfield/fullrank); `bayesian_model` combines the chains. The work is done by
# fit_configured_chain() in R/lib/chains.R.
for (f in snakemake@input[["rlib"]]) source(f)
sink_to_log(snakemake@log[[1]])

main <- function() {
  spec <- read_feature_spec(snakemake@input[["spec"]])
  m <- snakemake@params[["model"]]
  # Same seed in every chain job: the chains must share a subsample to be combined.
  train <- configured_training_rows(read_prepared(snakemake@input[["train"]], spec), spec, m)
  chain <- as.integer(snakemake@wildcards[["chain"]])
  message(sprintf("fitting %s chain %d on %d users: %s, %d iterations, seed %d", m$backend, chain, nrow(train),
                  m$algorithm, m$iter, m$seed + chain))
  started <- Sys.time()
  model <- fit_configured_chain(train, spec, m, chain)
  model$fit_seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
  message(sprintf("chain %d took %.1f s", chain, model$fit_seconds))
  save_rds_atomic(model, snakemake@output[["fit"]])
}

run_entry(main)
