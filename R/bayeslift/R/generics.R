# The generics every back-end implements, one file of methods per back-end (backend_*.R). Nothing outside
# a back-end's file branches on the back-end: callers use these.

#' Expected outcome for every posterior draw
#'
#' The generic behind every prediction. A back-end's method puts `newdata` on the model's scale
#' (`model_newdata()`) and returns the expected outcome per draw. Methods: `bayeslift_rstanarm_hurdle`,
#' `bayeslift_rstanarm_outcome`, `bayeslift_brms`, `bayeslift_stan`, `bayeslift_bcf`, `bayeslift_stack`. A back-end also implements
#' `model_stanfits()` or `model_monitored()`, `model_n_users()`, `model_n_draws()`, `model_loo()`, `replicate_outcome()`,
#' `point_outcome_parts()` and `combine_chain_draws()` (see the README, "Adding a back-end").
#'
#' @param model a fitted model from [fit_causal_model()], or a stack from [stack_models()].
#' @param newdata a data.frame of users (features; the treatment column is the arm to predict).
#' @return a draws x users numeric matrix: the expected spend P(spend > 0) exp(mu + sigma^2 / 2) for spend outcomes,
#'   a probability for binary ones, a mean for Gaussian ones.
#' @export
expected_outcome <- function(model, newdata) {
  if (!is.data.frame(newdata)) stop("expected_outcome: newdata must be a data.frame", call. = FALSE)
  UseMethod("expected_outcome")
}

#' @export
expected_outcome.default <- function(model, newdata) no_method("expected_outcome", model)

# The stanfit objects behind a model, named by model part (diagnostics and is_variational read them).
model_stanfits <- function(model) UseMethod("model_stanfits")
#' @export
model_stanfits.default <- function(model) no_method("model_stanfits", model)

# Per model part, the draws the convergence checks read: list(draws = a posterior draws_array, iterations x
# chains x variables, divergences = a count). Stan back-ends: their stanfits (diagnostics.R).
model_monitored <- function(model) UseMethod("model_monitored")
#' @export
model_monitored.default <- function(model) no_method("model_monitored", model)

#' Number of users a model was fitted on
#'
#' @param model a fitted model or stack.
#' @return one integer.
#' @export
model_n_users <- function(model) UseMethod("model_n_users")
#' @export
model_n_users.default <- function(model) no_method("model_n_users", model)

# Number of posterior draws (rows of expected_outcome()).
model_n_draws <- function(model) UseMethod("model_n_draws")
#' @export
model_n_draws.default <- function(model) no_method("model_n_draws", model)

#' Approximate leave-one-out cross-validation (PSIS-LOO) of a fitted model
#'
#' @param model a fitted model or stack.
#' @return a list: `elpd`, `se`, `p_loo` (numbers), `pointwise` (per-user elpd, a vector in training order),
#'   `n_high_k` (users with Pareto k > 0.7) and `parts` (each part's `loo` estimates matrix).
#' @export
model_loo <- function(model) UseMethod("model_loo")
#' @export
model_loo.default <- function(model) no_method("model_loo", model)

# Replicated outcome data sets from the posterior predictive distribution: an ndraws x users matrix.
replicate_outcome <- function(model, data, ndraws, seed) UseMethod("replicate_outcome")
#' @export
replicate_outcome.default <- function(model, data, ndraws, seed) no_method("replicate_outcome", model)

# Posterior-mean parameters of the outcome model per user (calibration.R): list(type, p, mu, sigma).
point_outcome_parts <- function(model, newdata) UseMethod("point_outcome_parts")
#' @export
point_outcome_parts.default <- function(model, newdata) no_method("point_outcome_parts", model)

# Merge the draws of one-chain fits (`fits`, `model` is the first) into `model`; combine_chain_fits() checks them.
combine_chain_draws <- function(model, fits) UseMethod("combine_chain_draws")
#' @export
combine_chain_draws.default <- function(model, fits) no_method("combine_chain_draws", model)

# Whether the model was fitted by variational inference (ADVI) rather than MCMC.
is_variational <- function(model) UseMethod("is_variational")

no_method <- function(generic, model) {
  stop(sprintf("%s: no method for class %s (a back-end implements every generic of R/bayeslift/R/generics.R)",
               generic, paste(class(model), collapse = "/")), call. = FALSE)
}
