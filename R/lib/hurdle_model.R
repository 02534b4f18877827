# The causal model of spend: a two-part (hurdle) model with treatment x covariate interactions.
#
# Spend is mostly zeros with a heavy tail, so the model has a part for P(spend > 0) and a part for a
# buyer's log-spend. Expected spend per posterior draw is p * exp(mu + sigma^2 / 2). Two back-ends:
#   - rstanarm (default): two stan_glm fits, no compiler needed;
#   - brms: hurdle_lognormal with formulas an R user can extend (splines, random effects, ...).
# Every function here is plain R: `source()` the files in R/lib and call them directly.

#' Put a data.frame on the model's scale.
#'
#' Numeric features listed in `spec$log1p` are log1p-transformed, then every numeric feature is
#' centred and scaled with `scaling` (computed from `data` when NULL); categorical features become
#' factors with the training levels.
#'
#' @param data a data.frame holding the feature columns (and possibly treatment and outcome).
#' @param spec feature spec (see `read_feature_spec()`).
#' @param scaling NULL, or a list with named numeric vectors `center` and `scale`.
#' @return a list: `data` (the transformed data.frame, same rows) and `scaling`.
model_frame <- function(data, spec, scaling = NULL) {
  missing <- setdiff(c(spec$numeric, spec$categorical), names(data))
  if (length(missing)) stop("model_frame: data lacks feature column(s) ", paste(missing, collapse = ", "))
  out <- data
  for (col in spec$numeric) {
    x <- as.numeric(data[[col]])
    if (col %in% spec$log1p) x <- log1p(x)
    out[[col]] <- x
  }
  if (is.null(scaling)) {
    center <- vapply(spec$numeric, function(col) mean(out[[col]]), numeric(1))
    scale <- vapply(spec$numeric, function(col) stats::sd(out[[col]]), numeric(1))
    scale[!is.finite(scale) | scale == 0] <- 1
    scaling <- list(center = center, scale = scale)
  }
  for (col in spec$numeric) out[[col]] <- (out[[col]] - scaling$center[[col]]) / scaling$scale[[col]]
  for (col in spec$categorical) {
    unseen <- setdiff(unique(as.character(data[[col]])), spec$levels[[col]])
    if (length(unseen)) stop("model_frame: column '", col, "' has levels not seen in training: ", paste(unseen, collapse = ", "))
    out[[col]] <- factor(as.character(data[[col]]), levels = spec$levels[[col]])
  }
  list(data = out, scaling = scaling)
}

#' Right-hand side with the treatment interacting with every feature.
#'
#' @param spec feature spec.
#' @return a string such as "campaign * (past_spend + recency + channel)".
interaction_rhs <- function(spec) {
  sprintf("%s * (%s)", spec$treatment, paste(c(spec$numeric, spec$categorical), collapse = " + "))
}

#' Inference arguments of `rstanarm::stan_glm()` / `brms::brm()` for one `algorithm`.
#'
#' NUTS ("sampling") takes chains, iter, cores and adapt_delta. ADVI ("meanfield", "fullrank") takes none
#' of them (rstanarm stops on unknown arguments): it optimises until the relative change of the objective
#' falls below `tol_rel_obj` and returns 1,000 approximate draws (Stan's `output_samples`), checked by
#' `variational_diagnostics()`.
#'
#' @param algorithm "sampling", "meanfield" or "fullrank".
#' @param chains,iter,seed,refresh,cores,adapt_delta sampler settings.
#' @param tol_rel_obj ADVI's convergence tolerance. Stan's 0.01 stops early: on 2,000 simulated users
#'   meanfield's ATE error fell from 3.3 to 1.5 (NUTS: 2.0) with 0.001, at no measurable cost.
#' @return a named list of arguments (rstanarm spelling: `adapt_delta`, not brms' `control`).
stan_sampler_args <- function(algorithm = "sampling", chains = 2, iter = 1000, seed = 1, refresh = 0, cores = 1,
                              adapt_delta = 0.95, tol_rel_obj = 0.001) {
  algorithm <- match.arg(algorithm, c("sampling", "meanfield", "fullrank"))
  if (algorithm != "sampling") return(list(algorithm = algorithm, seed = seed, refresh = refresh, tol_rel_obj = tol_rel_obj))
  list(algorithm = algorithm, chains = chains, iter = iter, seed = seed, refresh = refresh, cores = cores,
       adapt_delta = adapt_delta)
}

#' One `rstanarm::stan_glm()` fit with the arguments of `stan_sampler_args()`.
#'
#' @param formula,family,data,prior as for `stan_glm()` (`prior` NULL: rstanarm's default prior).
#' @param sampler a list from `stan_sampler_args()`.
#' @param arm_intercepts NULL, or the treatment column: fit with `rstanarm::stan_glmer()` and one intercept
#'   per arm, `(1 | treatment)`, whose difference is the treatment's main effect outside `prior`.
#' @return a stanreg.
stan_glm_part <- function(formula, family, data, sampler, prior = NULL, arm_intercepts = NULL) {
  # The call is built from symbols, so the stored call (and any warning) names `data` rather than holding
  # every row; do.call() would inline the data.
  fitter <- quote(rstanarm::stan_glm)
  if (!is.null(arm_intercepts)) {
    # One intercept per arm, (1 | arm), under rstanarm's decov prior rather than under `prior`: a
    # shrinkage prior on the coefficients then shrinks the effect heterogeneity but not the average effect.
    formula <- stats::update(formula, stats::as.formula(sprintf(". ~ . + (1 | %s)", arm_intercepts)))
    sampler$prior_covariance <- rstanarm::decov(shape = 2, scale = 2)
    fitter <- quote(rstanarm::stan_glmer)
  }
  args <- c(list(formula = formula, family = quote(family), data = quote(data)),
            if (!is.null(prior)) list(prior = quote(prior)), sampler)
  eval(as.call(c(fitter, args)))
}

#' Fit the two-part hurdle model with rstanarm.
#'
#' @param data training data.frame (treatment 0/1, outcome >= 0, features).
#' @param spec feature spec.
#' @param chains,iter,seed,refresh,cores passed to `rstanarm::stan_glm()`.
#' @param adapt_delta NUTS target acceptance rate.
#' @param algorithm "sampling" (NUTS), or "meanfield" / "fullrank" (ADVI, see `stan_sampler_args()`).
#' @return a `bayeslift_model` list: backend, spec, scaling, and the fits `buy` (logistic, P(spend > 0))
#'   and `amount` (Gaussian on log spend of buyers).
fit_hurdle_rstanarm <- function(data, spec, chains = 2, iter = 1000, seed = 1, refresh = 0,
                                cores = 1, adapt_delta = 0.95, algorithm = "sampling") {
  mf <- model_frame(data, spec)
  d <- mf$data
  d$bl_buy <- as.integer(d[[spec$outcome]] > 0)
  buyers <- d[d$bl_buy == 1, , drop = FALSE]
  buyers$bl_log_spend <- log(buyers[[spec$outcome]])
  rhs <- interaction_rhs(spec)
  sampler <- function(seed) stan_sampler_args(algorithm, chains, iter, seed, refresh, cores, adapt_delta)
  buy <- stan_glm_part(stats::as.formula(paste("bl_buy ~", rhs)), stats::binomial(), d, sampler(seed))
  amount <- stan_glm_part(stats::as.formula(paste("bl_log_spend ~", rhs)), stats::gaussian(), buyers,
                          sampler(seed + 1L))
  structure(list(backend = "rstanarm", spec = spec, scaling = mf$scaling, buy = buy, amount = amount),
            class = "bayeslift_model")
}

#' Fit a one-part model of a binary or Gaussian outcome with rstanarm.
#'
#' A binary outcome (0/1, e.g. visit or conversion) gets a logistic regression, so expected outcomes are
#' probabilities and uplift is a difference in probabilities; a Gaussian outcome a linear regression.
#' Both with treatment x feature interactions, like each part of the hurdle model.
#'
#' @inheritParams fit_hurdle_rstanarm
#' @return a `bayeslift_model` list: backend, spec, scaling, and the fit `outcome` (a stanreg).
fit_outcome_rstanarm <- function(data, spec, chains = 2, iter = 1000, seed = 1, refresh = 0,
                                 cores = 1, adapt_delta = 0.95, algorithm = "sampling") {
  mf <- model_frame(data, spec)
  family <- if (outcome_type(spec) == "binary") stats::binomial() else stats::gaussian()
  fit <- stan_glm_part(stats::as.formula(paste(spec$outcome, "~", interaction_rhs(spec))), family, mf$data,
                       stan_sampler_args(algorithm, chains, iter, seed, refresh, cores, adapt_delta))
  structure(list(backend = "rstanarm", spec = spec, scaling = mf$scaling, outcome = fit), class = "bayeslift_model")
}

#' The outcome type of a feature spec: "spend" (the default), "binary" or "gaussian".
#'
#' @param spec feature spec.
#' @return a string.
outcome_type <- function(spec) {
  if (is.null(spec$outcome_type)) "spend" else spec$outcome_type
}

#' Default brms formula: treatment interactions with every feature (in both parts of the hurdle for spend).
#'
#' @param spec feature spec.
#' @return a `brmsformula`.
default_brms_formula <- function(spec) {
  rhs <- interaction_rhs(spec)
  if (outcome_type(spec) != "spend") return(brms::bf(stats::as.formula(paste(spec$outcome, "~", rhs))))
  brms::bf(stats::as.formula(paste(spec$outcome, "~", rhs)), stats::as.formula(paste("hu ~", rhs)))
}

#' brms family for the outcome type: hurdle_lognormal (spend), bernoulli (binary) or gaussian.
#'
#' @param spec feature spec.
#' @return a brms family object.
brms_family <- function(spec) {
  switch(outcome_type(spec), spend = brms::hurdle_lognormal(), binary = brms::bernoulli(),
         gaussian = stats::gaussian())
}

#' Number of users a fitted model was trained on.
#'
#' @param model a `bayeslift_model`.
#' @return an integer.
model_n_users <- function(model) {
  if (inherits(model, "bayeslift_stack")) return(model_n_users(model$members[[1]]))
  if (model$backend == "brms") return(nrow(model$fit$data))
  nrow((if (is.null(model$outcome)) model$buy else model$outcome)$data)
}

#' Fit a hurdle_lognormal model with brms, reusing a compiled model from `cache_dir`.
#'
#' Binary and Gaussian outcomes (`spec$outcome_type`) get a bernoulli or gaussian family instead.
#'
#' @param data training data.frame.
#' @param spec feature spec.
#' @param formula NULL (use `default_brms_formula()`), a `brmsformula`, or a character vector of one or
#'   two formulas (the spend part, then the `hu` part), e.g. c("spend ~ campaign * s(past_spend)",
#'   "hu ~ campaign * s(past_spend)").
#' @param prior NULL or a `brmsprior`.
#' @param cache_dir directory for compiled models, keyed by the hash of the generated Stan code.
#' @param chains,iter,seed,refresh,cores,adapt_delta sampler settings.
#' @param algorithm "sampling" (NUTS), or "meanfield" / "fullrank" (ADVI, see `stan_sampler_args()`).
#' @return a `bayeslift_model` list: backend, spec, scaling, fit (a brmsfit).
fit_hurdle_brms <- function(data, spec, formula = NULL, prior = NULL, cache_dir = NULL, chains = 2,
                            iter = 1000, seed = 1, refresh = 0, cores = 1, adapt_delta = 0.95,
                            algorithm = "sampling") {
  mf <- model_frame(data, spec)
  if (is.null(formula)) formula <- default_brms_formula(spec)
  if (is.character(formula)) formula <- do.call(brms::bf, lapply(formula, stats::as.formula))
  family <- brms_family(spec)
  code <- brms::make_stancode(formula, data = mf$data, family = family, prior = prior)
  template <- NULL
  cache_file <- NULL
  if (!is.null(cache_dir)) {
    dir.create(cache_dir, recursive = TRUE, showWarnings = FALSE)
    cache_file <- file.path(cache_dir, paste0("brms_", digest::digest(as.character(code), algo = "md5"), ".rds"))
    if (file.exists(cache_file)) template <- readRDS(cache_file)
  }
  if (is.null(template)) {
    message("compiling the brms model (cached afterwards when cache_dir is set)")
    template <- brms::brm(formula, data = mf$data, family = family, prior = prior, chains = 0)
    if (!is.null(cache_file)) save_rds_atomic(template, cache_file)
  }
  args <- stan_sampler_args(algorithm, chains, iter, seed, refresh, cores, adapt_delta)
  if (!is.null(args$adapt_delta)) args$control <- list(adapt_delta = args$adapt_delta)
  args$adapt_delta <- NULL
  newdata <- mf$data
  # Built from symbols, as in stan_glm_part(): do.call() would inline the fitted model and the data.
  fit <- eval(as.call(c(list(quote(stats::update), quote(template), newdata = quote(newdata), recompile = FALSE), args)))
  structure(list(backend = "brms", spec = spec, scaling = mf$scaling, fit = fit), class = "bayeslift_model")
}

#' Fit the causal model with the configured back-end.
#'
#' @param data training data.frame.
#' @param spec feature spec.
#' @param backend "rstanarm" or "brms".
#' @param ... passed to `fit_hurdle_rstanarm()` or `fit_hurdle_brms()` (or `fit_hurdle_options()`).
#' @param flexible,shrinkage,propensity model options (R/lib/model_options.R): splines for numeric
#'   features interacting with the treatment; "none", "horseshoe" or "normal" shrinkage; an estimated
#'   propensity score as a covariate (observational data). The defaults fit the original model.
#' @param effect FALSE fits the no-effect model (no treatment terms), a member of `stack_models()`.
#' @return a `bayeslift_model`.
fit_causal_model <- function(data, spec, backend = c("rstanarm", "brms"), ..., flexible = FALSE,
                             shrinkage = "none", propensity = FALSE, effect = TRUE) {
  backend <- match.arg(backend)
  type <- outcome_type(spec)
  y <- data[[spec$outcome]]
  if (!all(data[[spec$treatment]] %in% c(0, 1))) stop("fit_causal_model: treatment must be 0/1")
  if (!type %in% c("spend", "binary", "gaussian"))
    stop("fit_causal_model: outcome_type must be spend, binary or gaussian, not '", type, "'")
  if (type == "spend" && any(y < 0)) stop("fit_causal_model: outcome must be >= 0")
  if (type == "binary" && !all(y %in% c(0, 1))) stop("fit_causal_model: a binary outcome must be 0/1")
  options <- isTRUE(flexible) || !identical(shrinkage, "none") || isTRUE(propensity) || isFALSE(effect)
  if (options && type != "spend" && backend == "brms")
    stop("fit_causal_model: with brms the flexible/shrinkage/propensity/effect options are implemented for spend only, ",
         "not for outcome_type '", type, "'; use backend rstanarm")
  if (options)
    return(fit_hurdle_options(data, spec, backend = backend, flexible = flexible, shrinkage = shrinkage,
                              propensity = propensity, effect = effect, ...))
  switch(backend,
         rstanarm = if (type == "spend") fit_hurdle_rstanarm(data, spec, ...) else fit_outcome_rstanarm(data, spec, ...),
         brms = fit_hurdle_brms(data, spec, ...))
}
