# Fitting the causal model: the argument checks and the option covariates every back-end shares, then the
# back-end's fitter, found in the registry below.

#' Fitters and config mappings of the back-ends
#'
#' Adding a back-end is one file of S3 methods (see [expected_outcome()]) plus an entry here: per outcome
#' type, the fitter `function(d, spec, options, extra, settings)` returning a classed list of the back-end's
#' fits, and `config_args(model_config)`, the back-end's own keys of the config's `model` section as
#' [fit_causal_model()] arguments.
#'
#' @param backend a back-end name.
#' @param type an outcome type ("spend", "binary", "gaussian").
#' @return `backend_fitter()`: the fitter function; `backend_config_args()`: a function of the model section
#'   returning a named list of arguments.
#' @keywords internal
backend_fitter <- function(backend, type) {
  fitter <- backend_registry(backend)$fitters[[type]]
  if (is.null(fitter)) stop(sprintf("fit_causal_model: back-end '%s' has no model of outcome_type '%s'", backend, type), call. = FALSE)
  fitter
}

#' @rdname backend_fitter
backend_config_args <- function(backend) backend_registry(backend)$config_args

backend_registry <- function(backend) {
  registry <- list(
    # bayeslift's own Stan program: learned shrinkage of the effect terms, penalized smooths (backend_stan.R)
    stan = list(fitters = list(spend = fit_stan_hierarchical, binary = fit_stan_hierarchical, gaussian = fit_stan_hierarchical),
                config_args = function(m) list(spline_df = if (!is.null(m$effect$spline_df)) as.integer(m$effect$spline_df))),
    rstanarm = list(fitters = list(spend = fit_rstanarm_hurdle, binary = fit_rstanarm_outcome, gaussian = fit_rstanarm_outcome),
                    # spline_df is the rstanarm spline size (the flexible candidate's; the linear model has none)
                    config_args = function(m) list(spline_df = if (!is.null(m$effect$spline_df)) as.integer(m$effect$spline_df))),
    # stochtree's Bayesian causal forests, sampled in Python (backend_bcf.R)
    bcf = list(fitters = list(spend = fit_bcf_model, binary = fit_bcf_model, gaussian = fit_bcf_model), config_args = function(m) list()),
    brms = list(fitters = list(spend = fit_brms, binary = fit_brms, gaussian = fit_brms),
                config_args = function(m) list(formula = if (length(m$brms$formula)) unlist(m$brms$formula),
                                               cache_dir = m$brms$cache_dir))
  )
  if (!is.character(backend) || length(backend) != 1 || !backend %in% names(registry))
    stop(sprintf("fit_causal_model: backend must be one of %s, not '%s'", paste(names(registry), collapse = ", "),
                 paste(backend, collapse = ", ")), call. = FALSE)
  registry[[backend]]
}

#' Fit the causal model
#'
#' A two-part (hurdle) model of spend, or a one-part model of a binary or Gaussian outcome
#' (`spec$outcome_type`), with the treatment interacting with every feature.
#'
#' @param data training data.frame (treatment 0/1, the outcome, the spec's features on their raw scale).
#' @param spec feature spec ([feature_spec()] or [read_feature_spec()]).
#' @param backend "stan" (bayeslift's hierarchical Stan program: the average effect under a prior on the
#'   outcome's scale, the effect terms shrunk with a scale learned from the data, penalized smooths with
#'   `flexible`), "rstanarm" (two stan_glm fits), "brms" (hurdle_lognormal) or "bcf" (stochtree's Bayesian causal
#'   forests in Python: `iter` sweeps per chain, half of them warmup, 250 thinned draws kept; no `flexible`).
#' @param flexible splines for numeric features, interacting with the treatment.
#' @param shrinkage "none", "horseshoe" or "normal": shrinkage prior on the treatment x feature terms.
#' @param shrinkage_scale prior sd under shrinkage = "normal": rstanarm, of every treatment x feature term
#'   (autoscaled; NULL: 0.1, which cut the per-user error most while keeping 90% coverage in bench-accuracy);
#'   brms, of every coefficient of class b (NULL: 0.5).
#' @param spline_df rstanarm spline degrees of freedom per numeric feature (`flexible`).
#' @param propensity estimate P(treated | x) by logistic regression and use its logit as a covariate of the
#'   baseline and of the effect (observational data); overlap diagnostics are stored in `$overlap` and warned about.
#' @param effect FALSE fits the no-effect model (no treatment terms, every uplift draw 0), a stack member.
#' @param chains,iter,seed,refresh,cores,adapt_delta sampler settings (NUTS).
#' @param algorithm "sampling" (NUTS), or "meanfield" / "fullrank" (ADVI: chains, iter, cores, adapt_delta unused).
#' @param formula,prior,cache_dir,brms_k brms only: NULL or a `brmsformula` or one or two formula strings
#'   (the spend part, then the `hu` part); NULL or a `brmsprior`; a directory caching compiled models; the
#'   basis dimension of each smooth with `flexible`.
#' @return a fitted model: a list of class c("bayeslift_<back-end>", "bayeslift_model") holding the Stan fits,
#'   `spec`, `scaling` (numeric features' `center` and `scale`), `options`, and with `propensity` the
#'   `propensity_model` and `overlap`. [expected_outcome()] and [counterfactual_draws()] predict from it.
#' @examples
#' \donttest{
#' set.seed(1)
#' n <- 300
#' history <- data.frame(customer_id = seq_len(n), campaign = rbinom(n, 1, 0.5), recency = rexp(n))
#' history$spend <- rbinom(n, 1, 0.4) * rexp(n, 1 / (5 + 2 * history$campaign))
#' spec <- feature_spec(id = "customer_id", treatment = "campaign", outcome = "spend", numeric = "recency")
#' model <- fit_causal_model(history, spec, chains = 1, iter = 200)
#' draws <- counterfactual_draws(model, history[1:5, ])
#' dim(draws$treated)  # 100 draws x 5 users
#' }
#' @export
fit_causal_model <- function(data, spec, backend = "stan", flexible = FALSE, shrinkage = "none",
                             shrinkage_scale = NULL, spline_df = 3L, propensity = FALSE, effect = TRUE, chains = 2L,
                             iter = 2000L, seed = 1L, refresh = 0L, cores = 1L, adapt_delta = 0.95,
                             algorithm = "sampling", formula = NULL, prior = NULL, cache_dir = NULL, brms_k = 5L) {
  check_training_data(data, spec, "fit_causal_model")
  for (arg in c("flexible", "propensity", "effect"))
    if (!is.logical(get(arg)) || length(get(arg)) != 1 || is.na(get(arg)))
      stop(sprintf("fit_causal_model: %s must be TRUE or FALSE", arg), call. = FALSE)
  if (!is.character(shrinkage) || length(shrinkage) != 1 || !shrinkage %in% SHRINKAGE)
    stop("fit_causal_model: shrinkage must be one of none, horseshoe, normal", call. = FALSE)
  if (!algorithm %in% c("sampling", "meanfield", "fullrank"))
    stop("fit_causal_model: algorithm must be sampling, meanfield or fullrank, not '", algorithm, "'", call. = FALSE)
  for (arg in c("chains", "iter", "cores", "spline_df", "brms_k"))
    if (!is.numeric(get(arg)) || length(get(arg)) != 1 || is.na(get(arg)) || get(arg) < 1 || get(arg) %% 1 != 0)
      stop(sprintf("fit_causal_model: %s must be a positive whole number", arg), call. = FALSE)
  if (!is.null(shrinkage_scale) && (!is.numeric(shrinkage_scale) || length(shrinkage_scale) != 1 || !(shrinkage_scale > 0)))
    stop("fit_causal_model: shrinkage_scale must be NULL or one number > 0", call. = FALSE)
  if (!is.numeric(adapt_delta) || length(adapt_delta) != 1 || !(adapt_delta > 0 && adapt_delta < 1))
    stop("fit_causal_model: adapt_delta must be a number in (0, 1)", call. = FALSE)
  if (!effect && (flexible || shrinkage != "none" || propensity))
    stop("fit_causal_model: effect = FALSE is the plain no-effect model; it takes no other option", call. = FALSE)
  if (backend != "brms" && !all(vapply(list(formula, prior, cache_dir), is.null, logical(1))))
    stop("fit_causal_model: formula, prior and cache_dir are arguments of backend \"brms\"", call. = FALSE)
  if (n_campaign_arms(spec) > 1 && (backend != "stan" || propensity))
    stop(sprintf("fit_causal_model: %d campaign arms need backend \"stan\" without the propensity option (backend %s%s)",
                 n_campaign_arms(spec), backend, if (propensity) ", propensity TRUE" else ""), call. = FALSE)
  fitter <- backend_fitter(backend, outcome_type(spec))

  mf <- model_frame(data, spec)
  d <- mf$data
  options <- list(flexible = flexible, shrinkage = shrinkage, propensity = propensity, effect = effect)
  extra <- character(0)
  ps_model <- overlap <- NULL
  if (propensity) {
    ps_model <- fit_propensity(d, spec)
    overlap <- propensity_overlap(ps_model$fitted, d[[spec$treatment]])
    ps_model$fitted <- NULL
    extra <- OPTION_PSCORE
    d <- add_option_covariates(list(options = options, propensity_model = ps_model, spec = spec), d)
  }
  settings <- list(chains = as.integer(chains), iter = as.integer(iter), seed = as.integer(seed), refresh = refresh,
                   cores = as.integer(cores), adapt_delta = adapt_delta, algorithm = algorithm,
                   shrinkage_scale = shrinkage_scale, spline_df = as.integer(spline_df), brms_k = as.integer(brms_k),
                   formula = formula, prior = prior, cache_dir = cache_dir)
  model <- fitter(d, spec, options, extra, settings)
  model$spec <- spec
  model$scaling <- mf$scaling
  model$propensity_model <- ps_model
  model$overlap <- overlap
  model
}

# Fit one MCMC chain: seeded with `seed + chain_id`, so chain k is the same whichever job or machine runs it.
# `...` are other arguments of fit_causal_model(); chains and cores are 1. A one-chain model with `chain_id`.
fit_causal_model_chain <- function(data, spec, chain_id = 1L, seed = 1L, ...) {
  chain_id <- as.integer(chain_id)
  if (is.na(chain_id) || chain_id < 1L) stop("fit_causal_model_chain: chain_id must be a positive integer", call. = FALSE)
  model <- fit_causal_model(data, spec, chains = 1L, cores = 1L, seed = as.integer(seed) + chain_id, ...)
  model$chain_id <- chain_id
  model
}

#' Combine one-chain fits into one multi-chain model
#'
#' Chains are combined in the order given, by the back-end's method (rstanarm: the parts' stanfits merged;
#' brms: `brms::combine_models()`).
#'
#' @param fits a list of one-chain models of the same model and data.
#' @return a fitted model whose draws are those of every chain, chain after chain, with `chains` set.
#' @export
combine_chain_fits <- function(fits) {
  if (!is.list(fits) || !length(fits)) stop("combine_chain_fits: no chains to combine", call. = FALSE)
  classes <- unique(vapply(fits, function(f) class(f)[1], character(1)))
  if (length(classes) != 1) stop("combine_chain_fits: chains come from different back-ends: ", paste(classes, collapse = ", "), call. = FALSE)
  for (f in fits[-1]) {
    if (!identical(f$spec, fits[[1]]$spec) || !identical(f$scaling, fits[[1]]$scaling))
      stop("combine_chain_fits: chains were fitted on different data or feature specs", call. = FALSE)
  }
  model <- combine_chain_draws(fits[[1]], fits)
  model$chain_id <- NULL
  model$chains <- length(fits)
  model
}
