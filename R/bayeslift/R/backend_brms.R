# Back-end: brms. hurdle_lognormal for spend (bernoulli / gaussian for binary and Gaussian outcomes), with
# formulas an R user can extend (splines, random effects, ...). The compiled model is cached in `cache_dir`,
# keyed by the hash of the generated Stan code. Class c("bayeslift_brms", "bayeslift_model").

# brms family for the outcome type.
brms_family <- function(spec) {
  switch(outcome_type(spec), spend = brms::hurdle_lognormal(), binary = brms::bernoulli(),
         gaussian = stats::gaussian())
}

# The formula of the options: splines per arm (flexible), or linear with the arm intercepts that carry the
# average effect outside the horseshoe on class b, so the horseshoe shrinks only the heterogeneity.
brms_options_formula <- function(d, spec, options, extra, k) {
  if (options$flexible) return(flexible_brms_formula(d, spec, k = k, extra = extra))
  rhs <- linear_rhs(spec, extra, options$effect)
  if (options$shrinkage == "horseshoe") rhs <- sprintf("%s + (1 | %s)", rhs, OPTION_ARM)
  brms_formula(spec, rhs)
}

# Fitter registered for brms x every outcome type (backend_fitter()). `settings$formula`: NULL (the
# options' formula), a brmsformula, or a character vector of one or two formulas (the spend part, then hu).
fit_brms <- function(d, spec, options, extra, settings) {
  with_options <- options$flexible || options$shrinkage != "none" || options$propensity || !options$effect
  if (with_options && outcome_type(spec) != "spend")
    stop("fit_causal_model: with brms the flexible/shrinkage/propensity/effect options are implemented for spend only, ",
         "not for outcome_type '", outcome_type(spec), "'; use backend rstanarm", call. = FALSE)
  if (options$flexible && options$shrinkage == "horseshoe" && is.null(settings$prior))
    stop("fit_causal_model: brms does not allow the horseshoe prior together with s() terms; ",
         "use shrinkage = \"normal\" with flexible = TRUE, or flexible = FALSE with the horseshoe", call. = FALSE)
  options$arm_factor <- options$flexible || options$shrinkage == "horseshoe"
  if (options$arm_factor) d[[OPTION_ARM]] <- factor(as.integer(d[[spec$treatment]]), levels = c(0L, 1L))
  formula <- settings$formula
  if (is.null(formula)) formula <- brms_options_formula(d, spec, options, extra, settings$brms_k)
  if (is.character(formula)) formula <- do.call(brms::bf, lapply(formula, stats::as.formula))
  prior <- settings$prior
  if (is.null(prior)) {
    scale <- if (is.null(settings$shrinkage_scale)) 0.5 else settings$shrinkage_scale
    prior <- brms_shrinkage_prior(options$shrinkage, interaction_scale = scale)
  }
  template <- brms_template(formula, d, brms_family(spec), prior, settings$cache_dir)
  args <- settings_sampler(settings, settings$seed)
  if (!is.null(args$adapt_delta)) args$control <- list(adapt_delta = args$adapt_delta)
  args$adapt_delta <- NULL
  # Built from symbols, as in stan_glm_part(): do.call() would inline the fitted model and the data.
  fit <- eval(as.call(c(list(quote(stats::update), quote(template), newdata = quote(d), recompile = FALSE), args)))
  structure(list(backend = "brms", fit = fit, options = options), class = c("bayeslift_brms", "bayeslift_model"))
}

# A compiled brms model with no draws, from `cache_dir` when the same Stan code was compiled before.
brms_template <- function(formula, data, family, prior, cache_dir) {
  code <- brms::make_stancode(formula, data = data, family = family, prior = prior)
  cache_file <- NULL
  if (!is.null(cache_dir)) {
    dir.create(cache_dir, recursive = TRUE, showWarnings = FALSE)
    cache_file <- file.path(cache_dir, paste0("brms_", digest::digest(as.character(code), algo = "md5"), ".rds"))
    if (file.exists(cache_file)) return(readRDS(cache_file))
  }
  message("compiling the brms model (cached afterwards when cache_dir is set)")
  template <- brms::brm(formula, data = data, family = family, prior = prior, chains = 0)
  if (!is.null(cache_file)) save_rds_atomic(template, cache_file)
  template
}

#' @export
expected_outcome.bayeslift_brms <- function(model, newdata) {
  brms::posterior_epred(model$fit, newdata = model_newdata(model, newdata))
}

#' @export
model_stanfits.bayeslift_brms <- function(model) {
  stats::setNames(list(model$fit$fit), if (outcome_type(model$spec) == "spend") "hurdle" else "outcome")
}

#' @export
model_n_users.bayeslift_brms <- function(model) nrow(model$fit$data)

#' @export
model_n_draws.bayeslift_brms <- function(model) brms::ndraws(model$fit)

#' @export
model_loo.bayeslift_brms <- function(model) {
  l <- loo::loo(model$fit)
  loo_summary(l$pointwise[, "elpd_loo"], l$estimates["p_loo", "Estimate"], sum(l$diagnostics$pareto_k > 0.7),
              stats::setNames(list(l$estimates), names(model_stanfits(model))))
}

#' @export
replicate_outcome.bayeslift_brms <- function(model, data, ndraws, seed) {
  nd <- model_newdata(model, data)
  set.seed(seed)
  brms::posterior_predict(model$fit, newdata = nd, ndraws = ndraws)
}

#' @export
point_outcome_parts.bayeslift_brms <- function(model, newdata) {
  type <- outcome_type(model$spec)
  nd <- model_newdata(model, newdata)
  mean_of <- function(...) colMeans(brms::posterior_linpred(model$fit, newdata = nd, ...))
  sigma <- if (type != "binary") mean(mean_of(dpar = "sigma", transform = TRUE))
  switch(type,
         spend = list(type = type, p = 1 - mean_of(dpar = "hu", transform = TRUE), mu = mean_of(dpar = "mu"), sigma = sigma),
         binary = list(type = type, p = stats::plogis(mean_of())),
         gaussian = list(type = type, mu = mean_of(), sigma = sigma))
}

#' @export
combine_chain_draws.bayeslift_brms <- function(model, fits) {
  if (length(fits) > 1) model$fit <- brms::combine_models(mlist = lapply(fits, function(f) f$fit), check_data = FALSE)
  model
}
