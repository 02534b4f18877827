# Snakemake entry: fit one MCMC chain (wildcard `chain`) of the causal model, or the one variational fit
# (model.algorithm meanfield/fullrank); `bayesian_model` combines the chains. The work is done by fit_causal_model_chain() in R/lib/chains.R.
for (f in snakemake@input[["rlib"]]) source(f)
sink_to_log(snakemake@log[[1]])

main <- function() {
  spec <- read_feature_spec(snakemake@input[["spec"]])
  train <- read_prepared(snakemake@input[["train"]], spec)
  m <- snakemake@params[["model"]]
  chain <- as.integer(snakemake@wildcards[["chain"]])
  if (!is.null(m$fit_subsample) && m$fit_subsample < nrow(train)) {
    # Same seed in every chain job: the chains must share the subsample to be combined.
    message(sprintf("fitting on a stratified subsample of %d of %d users (model.fit_subsample)", m$fit_subsample, nrow(train)))
    train <- stratified_subsample(train, spec, m$fit_subsample, seed = m$seed)
  }
  message(sprintf("fitting %s chain %d on %d users: %s, %d iterations, seed %d", m$backend, chain, nrow(train),
                  m$algorithm, m$iter, m$seed + chain))
  started <- Sys.time()
  args <- list(data = train, spec = spec, backend = m$backend, chain_id = chain, seed = m$seed, iter = m$iter,
               adapt_delta = m$adapt_delta, algorithm = m$algorithm)
  if (m$backend == "brms") {
    args$formula <- if (length(m$brms$formula)) unlist(m$brms$formula) else NULL
    args$cache_dir <- m$brms$cache_dir
  }
  # Model options of fit_causal_model() (R/lib/model_options.R), when the config has them.
  for (key in c("flexible", "shrinkage", "propensity")) if (!is.null(m[[key]])) args[[key]] <- m[[key]]
  # model: auto fits each candidate's chain here; bayesian_model picks or stacks by LOO once every chain is in.
  if (isTRUE(m$auto)) {
    model <- do.call(fit_candidate_chains, c(args, no_effect = m$auto_combine %in% c("stack", "pseudo_bma")))
  } else {
    model <- do.call(fit_causal_model_chain, args)
  }
  model$fit_seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
  message(sprintf("chain %d took %.1f s", chain, model$fit_seconds))
  save_rds_atomic(model, snakemake@output[["fit"]])
}

run_entry(main)
