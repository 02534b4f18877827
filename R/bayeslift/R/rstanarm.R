# What the two rstanarm back-ends share (class `bayeslift_rstanarm`): sampler arguments, one stan_glm
# fit per part, the right-hand side of the configured options, and the methods that only need the parts'
# stanregs, which are the model's fields named as model_stanfits() names them.

# Inference arguments of rstanarm::stan_glm() / brms::brm() for one `algorithm`. NUTS ("sampling") takes
# chains, iter, cores and adapt_delta. ADVI ("meanfield", "fullrank") takes none of them (rstanarm stops on
# unknown arguments): it optimises until the relative change of the objective falls below `tol_rel_obj` and
# returns 1,000 approximate draws, checked by variational_diagnostics(). Stan's default 0.01 stops early: on
# 2,000 simulated users meanfield's ATE error fell from 3.3 to 1.5 (NUTS: 2.0) with 0.001, at no measurable cost.
stan_sampler_args <- function(algorithm = "sampling", chains = 2, iter = 1000, seed = 1, refresh = 0, cores = 1,
                              adapt_delta = 0.95, tol_rel_obj = 0.001) {
  algorithm <- match.arg(algorithm, c("sampling", "meanfield", "fullrank"))
  if (algorithm != "sampling") return(list(algorithm = algorithm, seed = seed, refresh = refresh, tol_rel_obj = tol_rel_obj))
  list(algorithm = algorithm, chains = chains, iter = iter, seed = seed, refresh = refresh, cores = cores,
       adapt_delta = adapt_delta)
}

# The sampler arguments of fit_causal_model()'s `settings`, with the part's own seed.
settings_sampler <- function(settings, seed) {
  stan_sampler_args(settings$algorithm, settings$chains, settings$iter, seed, settings$refresh, settings$cores,
                    settings$adapt_delta)
}

# One rstanarm::stan_glm() fit (prior NULL: rstanarm's default). With `arm_intercepts` (the treatment
# column) it is a stan_glmer() with one intercept per arm, `(1 | treatment)`, under rstanarm's decov prior
# rather than under `prior`: a shrinkage prior on the coefficients then shrinks the effect heterogeneity but
# not the average effect.
stan_glm_part <- function(formula, family, data, sampler, prior = NULL, arm_intercepts = NULL) {
  # The call is built from symbols, so the stored call (and any warning) names `data` rather than holding
  # every row; do.call() would inline the data.
  fitter <- quote(rstanarm::stan_glm)
  if (!is.null(arm_intercepts)) {
    formula <- stats::update(formula, stats::as.formula(sprintf(". ~ . + (1 | %s)", arm_intercepts)))
    sampler$prior_covariance <- rstanarm::decov(shape = 2, scale = 2)
    fitter <- quote(rstanarm::stan_glmer)
  }
  args <- c(list(formula = formula, family = quote(family), data = quote(data)),
            if (!is.null(prior)) list(prior = quote(prior)), sampler)
  eval(as.call(c(fitter, args)))
}

# Right-hand side of an rstanarm part for the options: splines (flexible) or linear, with the extra covariates.
rstanarm_rhs <- function(d, spec, options, extra, spline_df) {
  if (options$flexible) flexible_rhs(d, spec, df = spline_df, extra = extra) else linear_rhs(spec, extra, options$effect)
}

# One rstanarm part fitted with the options' prior: the horseshoe shrinks every coefficient, the treatment's
# main effect too, so arm intercepts keep the average effect out of its reach (rstanarm_shrinkage_prior()).
fit_rstanarm_part <- function(formula, family, data, spec, options, settings, seed) {
  scale <- if (is.null(settings$shrinkage_scale)) 0.1 else settings$shrinkage_scale
  stan_glm_part(formula, family, data, settings_sampler(settings, seed),
                prior = rstanarm_shrinkage_prior(options$shrinkage, formula, data, scale),
                arm_intercepts = if (options$shrinkage == "horseshoe") spec$treatment)
}

# The stanreg holding the model's first part.
first_stanreg <- function(model) model[[names(model_stanfits(model))[1]]]

#' @export
model_n_users.bayeslift_rstanarm <- function(model) nrow(first_stanreg(model)$data)

#' @export
model_n_draws.bayeslift_rstanarm <- function(model) nrow(as.matrix(first_stanreg(model)))

# Each part's stanfits merged with rstan::sflist2stanfit() into `model[[part]]$stanfit`, for back-ends whose
# parts hold their draws there (rstanarm's stanregs read them from `$stanfit`: posterior_epred, as.matrix).
combine_part_stanfits <- function(model, fits) {
  for (part in names(model_stanfits(model))) {
    sfs <- lapply(fits, function(f) f[[part]]$stanfit)
    model[[part]]$stanfit <- if (length(sfs) == 1) sfs[[1]] else rstan::sflist2stanfit(sfs)
  }
  model
}

#' @export
combine_chain_draws.bayeslift_rstanarm <- function(model, fits) combine_part_stanfits(model, fits)

# PSIS-LOO of one stanreg: its loo object.
stanreg_loo <- function(fit) loo::loo(fit, cores = 1)

# Per-user summary of a pointwise elpd vector, as model_loo() returns it.
loo_summary <- function(pointwise, p_loo, n_high_k, parts) {
  list(elpd = sum(pointwise), se = sqrt(length(pointwise)) * stats::sd(pointwise), p_loo = p_loo,
       pointwise = pointwise, n_high_k = n_high_k, parts = parts)
}
