# Counterfactual predictions: expected spend per posterior draw with the treatment set to 1, then 0.

#' Expected spend for every posterior draw.
#'
#' @param model a `bayeslift_model` from `fit_causal_model()`, or a `bayeslift_stack` (`stack_models()`).
#' @param newdata a data.frame of users (features; treatment column as the arm to predict).
#' @return a draws x users matrix of E[spend] = P(spend > 0) * exp(mu + sigma^2 / 2) (of E[outcome]
#'   for binary and Gaussian outcomes: a probability, a mean).
spend_epred <- function(model, newdata) {
  if (inherits(model, "bayeslift_stack")) return(stack_epred(model, newdata))  # R/lib/model_options.R
  nd <- model_newdata(model, newdata)
  if (model$backend == "brms") return(brms::posterior_epred(model$fit, newdata = nd))
  if (!is.null(model$outcome)) return(rstanarm::posterior_epred(model$outcome, newdata = nd))  # binary/gaussian
  p_buy <- rstanarm::posterior_epred(model$buy, newdata = nd)
  mu <- rstanarm::posterior_linpred(model$amount, newdata = nd)
  sigma <- as.matrix(model$amount, pars = "sigma")[, 1]
  # The two parts have separate likelihoods and priors, so their posteriors are independent and
  # pairing draws by index is a valid joint draw.
  p_buy * exp(mu + sigma^2 / 2)
}

#' Users on the model's scale: features scaled as in training, plus the covariates an option-fitted model derives
#' (`add_option_covariates()`, R/lib/model_options.R).
model_newdata <- function(model, newdata) add_option_covariates(model, model_frame(newdata, model$spec, model$scaling)$data)

#' Counterfactual expected spend for both arms.
#'
#' @param model a `bayeslift_model`.
#' @param users a data.frame of users (features; the treatment column is overwritten).
#' @return a list of two draws x users matrices, `treated` and `control`. When the model carries an
#'   interval calibration (`model$interval_calibration$scale`, R/lib/calibration.R), each user's uplift draws
#'   are scaled about their median and `treated` is control + calibrated uplift (kept within the outcome's
#'   range: spend >= 0, probabilities <= 1, which can only raise the lowest uplift draws); the posterior's own treated
#'   draws are kept as `treated_posterior` (the ATE is summarised from them, not calibrated).
counterfactual_draws <- function(model, users) {
  arm <- function(t) {
    nd <- users
    nd[[model$spec$treatment]] <- t
    spend_epred(model, nd)
  }
  out <- list(treated = arm(1L), control = arm(0L))
  scale <- model$interval_calibration$scale
  if (!is.null(scale)) {
    out$treated_posterior <- out$treated
    treated <- out$control + scale_uplift_draws(out$treated - out$control, scale)
    # Widened intervals must not reach impossible outcomes: spend >= 0, probabilities in [0, 1].
    type <- outcome_type(model$spec)
    if (type != "gaussian") treated <- pmax(treated, 0)
    if (type == "binary") treated <- pmin(treated, 1)
    out$treated <- treated
  }
  out
}

#' The posterior's treated draws of `counterfactual_draws()`, before any interval calibration.
posterior_treated <- function(draws) if (is.null(draws$treated_posterior)) draws$treated else draws$treated_posterior
