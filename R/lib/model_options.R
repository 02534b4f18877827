# Model options for the causal hurdle model (issue 7): flexible terms, shrinkage of the treatment x
# feature terms, an estimated propensity score for observational data (with overlap diagnostics), and
# model comparison by approximate leave-one-out cross-validation plus posterior predictive checks.
#
# Everything is a plain function: `fit_causal_model(..., flexible = TRUE, shrinkage = "horseshoe",
# propensity = TRUE)` routes here (R/lib/hurdle_model.R), and `select_model_by_loo()` picks among fits.
# Derived covariates (propensity score, arm factor) are recomputed for new users by
# `add_option_covariates()`, which `spend_epred()` calls, so counterfactuals and scoring stay consistent.

OPTION_ARM <- "bl_arm"          # factor version of the treatment (brms `s(x, by = bl_arm)`)
OPTION_PSCORE <- "bl_pscore"    # logit of the estimated propensity score, a model covariate

# ------------------------------------------------------------------------------------------ formulas

#' Numeric features worth a spline: at least `min_unique` distinct values (binary flags stay linear).
spline_features <- function(data, spec, min_unique = 6L) {
  Filter(function(col) length(unique(data[[col]])) >= min_unique, spec$numeric)
}

#' Right-hand side with flexible terms for rstanarm: natural cubic splines with knots fixed at training
#' quantiles, each interacting with the treatment, so the effect varies smoothly with every feature.
#'
#' @param data model-scale data (output of `model_frame()`), used only for the knots.
#' @param spec feature spec.
#' @param df spline degrees of freedom per numeric feature (df - 1 interior knots).
#' @param extra extra covariates (e.g. the propensity score), entered linearly.
#' @return a string such as "campaign * (splines::ns(recency, knots = c(...), Boundary.knots = c(...)) + ...)".
flexible_rhs <- function(data, spec, df = 3L, extra = character(0)) {
  smooth <- spline_features(data, spec)
  term <- function(col) {
    x <- data[[col]]
    knots <- unique(stats::quantile(x, probs = seq_len(df - 1L) / df, names = FALSE))
    sprintf("splines::ns(%s, knots = c(%s), Boundary.knots = c(%s))", col,
            paste(sprintf("%.8g", knots), collapse = ", "), paste(sprintf("%.8g", range(x)), collapse = ", "))
  }
  terms <- c(vapply(smooth, term, character(1)), setdiff(spec$numeric, smooth), spec$categorical, extra)
  sprintf("%s * (%s)", spec$treatment, paste(terms, collapse = " + "))
}

#' Linear right-hand side (the default model's) with extra covariates; without the treatment when
#' `effect` is FALSE (the no-effect model a stack can weigh against the others).
linear_rhs <- function(spec, extra = character(0), effect = TRUE) {
  features <- paste(c(spec$numeric, spec$categorical, extra), collapse = " + ")
  if (!effect) return(features)
  sprintf("%s * (%s)", spec$treatment, features)
}

#' brms formula with penalized splines: a smooth per arm for every numeric feature
#' (`s(x, by = bl_arm)`; `by` must be a factor for separate, centred smooths), the arm main effect, and
#' the treatment interacting linearly with binary and categorical features, in both parts.
#'
#' @param data model-scale data (to tell binary from continuous features).
#' @param spec feature spec.
#' @param k basis dimension of each smooth.
#' @param extra extra linear covariates interacting with the arm (e.g. "bl_pscore").
#' @return a `brmsformula` (spend part, hu part).
flexible_brms_formula <- function(data, spec, k = 5L, extra = character(0)) {
  smooth <- spline_features(data, spec)
  linear <- c(setdiff(spec$numeric, smooth), spec$categorical, extra)
  rhs <- paste(c(OPTION_ARM, sprintf("s(%s, by = %s, k = %d)", smooth, OPTION_ARM, as.integer(k)),
                 if (length(linear)) sprintf("%s * (%s)", OPTION_ARM, paste(linear, collapse = " + "))),
               collapse = " + ")
  brms::bf(stats::as.formula(paste(spec$outcome, "~", rhs)), stats::as.formula(paste("hu ~", rhs)))
}

# ------------------------------------------------------------------------------------------ priors

#' Coefficient prior for one rstanarm part.
#'
#' "none": rstanarm's default weakly informative normal(0, 2.5) (autoscaled).
#' "horseshoe": the regularized horseshoe `hs()` on every coefficient, global scale from the guess that
#'   about a quarter of the D coefficients matter (Piironen & Vehtari 2017: p0 / (D - p0) / sqrt(n)).
#'   rstanarm cannot give different priors to different coefficients under `hs()`, so the treatment's
#'   main effect would be shrunk too (seen: the ATE pulled from 6.2 toward 4 at 1,500 users);
#'   `fit_hurdle_options()` therefore adds one intercept per arm, `(1 | treatment)` under
#'   `decov(shape = 2, scale = 2)` (stan_glmer), which carries the average effect unshrunk.
#' "normal": normal(0, 2.5) on main effects and normal(0, `interaction_scale`) on every treatment x
#'   feature term: fixed shrinkage of the effect heterogeneity only.
#'
#' @param formula the part's formula; @param data its data; @param spec feature spec.
#' @return a prior object for `rstanarm::stan_glm(prior = )`.
rstanarm_shrinkage_prior <- function(shrinkage, formula, data, spec, interaction_scale = 0.5) {
  if (shrinkage == "none") return(rstanarm::normal(autoscale = TRUE))
  cols <- colnames(stats::model.matrix(formula, data))
  cols <- setdiff(cols, "(Intercept)")
  if (shrinkage == "horseshoe") {
    D <- length(cols)
    p0 <- max(2, D / 4)
    return(rstanarm::hs(df = 1, global_df = 1, global_scale = p0 / (D - p0) / sqrt(nrow(data)),
                        slab_df = 4, slab_scale = 2.5))
  }
  if (shrinkage == "normal") {
    scale <- ifelse(grepl(":", cols, fixed = TRUE), interaction_scale, 2.5)
    return(rstanarm::normal(location = 0, scale = scale, autoscale = TRUE))
  }
  stop("unknown shrinkage '", shrinkage, "'; use none, horseshoe or normal")
}

#' brms prior for shrinkage of the population-level terms in both parts.
#'
#' @param shrinkage "none" (NULL: brms defaults), "horseshoe" (`horseshoe(1, par_ratio)` on class b of
#'   the spend part and of `hu`; brms refuses it in models with `s()` terms), or "normal"
#'   (normal(0, interaction_scale) on class b).
#' @return NULL or a `brmsprior`.
brms_shrinkage_prior <- function(shrinkage, par_ratio = 0.25, interaction_scale = 0.5) {
  if (shrinkage == "none") return(NULL)
  p <- switch(shrinkage,
              horseshoe = sprintf("horseshoe(1, par_ratio = %g)", par_ratio),
              normal = sprintf("normal(0, %g)", interaction_scale),
              stop("unknown shrinkage '", shrinkage, "'; use none, horseshoe or normal"))
  c(brms::set_prior(p, class = "b"), brms::set_prior(p, class = "b", dpar = "hu"))
}

# ------------------------------------------------------------------------------------------ propensity

#' Estimate the propensity score P(treated | features) with a logistic regression on model-scale data.
#'
#' @param data model-scale data (numeric features centred and scaled, categoricals as factors).
#' @param spec feature spec.
#' @return a list: `coef`, `terms` (without data; environment reset so the model saves small), `xlevels`,
#'   and `fitted` (the propensity of every row of `data`).
fit_propensity <- function(data, spec) {
  f <- stats::as.formula(paste(spec$treatment, "~", paste(c(spec$numeric, spec$categorical), collapse = " + ")))
  g <- suppressWarnings(stats::glm(f, family = stats::binomial(), data = data))
  tt <- stats::delete.response(stats::terms(g))
  attr(tt, ".Environment") <- globalenv()
  list(coef = stats::coef(g), terms = tt, xlevels = g$xlevels, fitted = unname(stats::fitted(g)))
}

#' Propensity of new rows from `fit_propensity()`'s result.
predict_propensity <- function(ps_model, data) {
  X <- stats::model.matrix(ps_model$terms, stats::model.frame(ps_model$terms, data, xlev = ps_model$xlevels))
  b <- ps_model$coef
  b[is.na(b)] <- 0
  as.vector(stats::plogis(X[, names(b), drop = FALSE] %*% b))
}

#' Overlap (common support) diagnostics of estimated propensity scores.
#'
#' @param ps propensity scores; @param treatment 0/1 vector.
#' @param bounds scores outside are "extreme" (near-deterministic assignment).
#' @param max_extreme_share warn when more than this share of users has an extreme score or lies outside
#'   the other arm's range.
#' @return a list of numbers: per arm n, min, q01, median, q99, max; `common_support` (the interval both arms
#'   cover), `share_outside_support` (users outside it), `share_extreme`, `std_mean_diff_logit`
#'   (standardized difference of logit scores between arms), `warnings` (character; also raised with
#'   `warning()` when `warn = TRUE`).
propensity_overlap <- function(ps, treatment, bounds = c(0.05, 0.95), max_extreme_share = 0.05, warn = TRUE) {
  t <- as.integer(treatment)
  arm <- function(v) c(n = length(v), min = min(v), q01 = unname(stats::quantile(v, 0.01)),
                       median = stats::median(v), q99 = unname(stats::quantile(v, 0.99)), max = max(v))
  treated <- arm(ps[t == 1])
  control <- arm(ps[t == 0])
  support <- c(max(treated[["min"]], control[["min"]]), min(treated[["max"]], control[["max"]]))
  outside <- ps < support[1] | ps > support[2]
  extreme <- ps < bounds[1] | ps > bounds[2]
  lg <- stats::qlogis(pmin(pmax(ps, 1e-6), 1 - 1e-6))
  smd <- (mean(lg[t == 1]) - mean(lg[t == 0])) / sqrt((stats::var(lg[t == 1]) + stats::var(lg[t == 0])) / 2)
  warnings <- character(0)
  if (mean(extreme) > max_extreme_share)
    warnings <- c(warnings, sprintf("%.1f%% of users have a propensity outside [%.2f, %.2f]: the arms barely overlap there",
                                    100 * mean(extreme), bounds[1], bounds[2]))
  if (mean(outside) > max_extreme_share)
    warnings <- c(warnings, sprintf("%.1f%% of users lie outside the common support [%.3f, %.3f] of the two arms",
                                    100 * mean(outside), support[1], support[2]))
  if (warn) for (w in warnings) warning("propensity overlap: ", w, call. = FALSE)
  list(treated = as.list(treated), control = as.list(control), common_support = support,
       share_outside_support = mean(outside), share_extreme = mean(extreme), std_mean_diff_logit = smd,
       warnings = warnings)
}

#' Add the covariates an option-fitted model derives from the features: the propensity score (logit)
#' and the arm factor. `spend_epred()` calls this on model-scale newdata; a no-op for default models.
add_option_covariates <- function(model, data) {
  opts <- model$options
  if (is.null(opts)) return(data)
  if (isTRUE(opts$propensity)) {
    ps <- predict_propensity(model$propensity_model, data)
    data[[OPTION_PSCORE]] <- stats::qlogis(pmin(pmax(ps, 0.01), 0.99))
  }
  if (isTRUE(opts$arm_factor)) data[[OPTION_ARM]] <- factor(as.integer(data[[model$spec$treatment]]), levels = c(0L, 1L))
  data
}

# ------------------------------------------------------------------------------------------ fitting

#' Fit the hurdle model with options (called by `fit_causal_model()` when any option is set).
#'
#' @param data training data.frame (raw scale). @param spec feature spec.
#' @param backend "rstanarm" or "brms".
#' @param flexible splines for numeric features, interacting with the treatment (see `flexible_rhs()`,
#'   `flexible_brms_formula()`).
#' @param shrinkage "none", "horseshoe" or "normal" (see `rstanarm_shrinkage_prior()`, `brms_shrinkage_prior()`).
#' @param propensity estimate P(treated | x) by logistic regression and use its logit as a covariate of the
#'   baseline and of the effect (the Bayesian causal forest idea, Hahn et al. 2020); overlap diagnostics are
#'   stored in `model$overlap` and warned about.
#' @param effect FALSE: leave the treatment out of both parts (spend does not depend on the arm, so every
#'   uplift draw is 0): the "no effect" member of a stack (`stack_models()`); linear, no shrinkage.
#' @param shrinkage_scale prior sd under shrinkage = "normal": rstanarm, of every treatment x feature term
#'   (autoscaled, per sd of the term's column; of 0.5, 0.25, 0.1 and 0.05, 0.1 cut the per-user error most
#'   while keeping 90% coverage in band in bench-accuracy, docs/benchmarks.md); brms, of every coefficient
#'   of class b (main effects too, hence its wider default).
#' @param spline_df,brms_k spline size for rstanarm / brms.
#' @param chains,iter,seed,refresh,cores,adapt_delta,algorithm sampler settings (`stan_sampler_args()`);
#'   `...` goes to `fit_hurdle_brms()`.
#' @return a `bayeslift_model` with `options` (and `propensity_model`, `overlap` when propensity = TRUE).
fit_hurdle_options <- function(data, spec, backend = "rstanarm", flexible = FALSE, shrinkage = "none",
                               propensity = FALSE, effect = TRUE,
                               shrinkage_scale = if (backend == "brms") 0.5 else 0.1, spline_df = 3L, brms_k = 5L, chains = 2, iter = 1000,
                               seed = 1, refresh = 0, cores = 1, adapt_delta = 0.95, algorithm = "sampling", ...) {
  shrinkage <- match.arg(shrinkage, c("none", "horseshoe", "normal"))
  effect <- !isFALSE(effect)
  if (!effect && (isTRUE(flexible) || shrinkage != "none" || isTRUE(propensity)))
    stop("fit_causal_model: effect = FALSE is the plain no-effect model; it takes no other option")
  mf <- model_frame(data, spec)
  d <- mf$data
  options <- list(flexible = isTRUE(flexible), shrinkage = shrinkage, propensity = isTRUE(propensity), effect = effect,
                  arm_factor = backend == "brms" && (isTRUE(flexible) || shrinkage == "horseshoe"))
  extra <- character(0)
  ps_model <- overlap <- NULL
  if (options$propensity) {
    ps_model <- fit_propensity(d, spec)
    overlap <- propensity_overlap(ps_model$fitted, d[[spec$treatment]])
    ps_model$fitted <- NULL
    extra <- OPTION_PSCORE
  }
  stub <- list(options = options, propensity_model = ps_model, spec = spec)
  d <- add_option_covariates(stub, d)

  if (backend == "brms") {
    if (options$flexible && shrinkage == "horseshoe" && is.null(list(...)$prior))
      stop("fit_causal_model: brms does not allow the horseshoe prior together with s() terms; ",
           "use shrinkage = \"normal\" with flexible = TRUE, or flexible = FALSE with the horseshoe")
    # fit_hurdle_brms() rescales the raw features itself and passes other columns through unchanged.
    raw <- data
    for (col in setdiff(names(d), names(data))) raw[[col]] <- d[[col]]
    formula <- list(...)$formula
    dots <- list(...)
    dots$formula <- NULL
    if (is.null(formula)) {
      formula <- if (options$flexible) flexible_brms_formula(d, spec, k = brms_k, extra = extra)
                 else { rhs <- linear_rhs(spec, extra, effect)
                        # As for rstanarm: one intercept per arm, outside the horseshoe on class b, carries the
                        # average effect, so the horseshoe shrinks only the heterogeneity.
                        if (shrinkage == "horseshoe") rhs <- sprintf("%s + (1 | %s)", rhs, OPTION_ARM)
                        brms::bf(stats::as.formula(paste(spec$outcome, "~", rhs)), stats::as.formula(paste("hu ~", rhs))) }
    }
    prior <- if (is.null(dots$prior)) brms_shrinkage_prior(shrinkage, interaction_scale = shrinkage_scale) else dots$prior
    dots$prior <- NULL
    model <- do.call(fit_hurdle_brms, c(list(raw, spec, formula = formula, prior = prior, chains = chains,
                                             iter = iter, seed = seed, refresh = refresh, cores = cores,
                                             adapt_delta = adapt_delta, algorithm = algorithm), dots))
  } else {
    rhs <- if (options$flexible) flexible_rhs(d, spec, df = spline_df, extra = extra) else linear_rhs(spec, extra, effect)
    sampler <- function(seed) stan_sampler_args(algorithm, chains, iter, seed, refresh, cores, adapt_delta)
    # The horseshoe shrinks every coefficient, the treatment's main effect too; arm intercepts keep the
    # average effect out of its reach (rstanarm_shrinkage_prior()).
    arms <- if (shrinkage == "horseshoe") spec$treatment
    if (outcome_type(spec) != "spend") {
      # Binary / Gaussian: one regression with the right-hand side and prior a hurdle part would get.
      f <- stats::as.formula(paste(spec$outcome, "~", rhs))
      family <- if (outcome_type(spec) == "binary") stats::binomial() else stats::gaussian()
      outcome <- stan_glm_part(f, family, d, sampler(seed), prior = rstanarm_shrinkage_prior(shrinkage, f, d, spec, shrinkage_scale),
                               arm_intercepts = arms)
      model <- structure(list(backend = "rstanarm", spec = spec, scaling = mf$scaling, outcome = outcome),
                         class = "bayeslift_model")
      return(finish_option_model(model, options, ps_model, overlap))
    }
    d$bl_buy <- as.integer(d[[spec$outcome]] > 0)
    buyers <- d[d$bl_buy == 1, , drop = FALSE]
    buyers$bl_log_spend <- log(buyers[[spec$outcome]])
    f_buy <- stats::as.formula(paste("bl_buy ~", rhs))
    f_amount <- stats::as.formula(paste("bl_log_spend ~", rhs))
    buy <- stan_glm_part(f_buy, stats::binomial(), d, sampler(seed),
                         prior = rstanarm_shrinkage_prior(shrinkage, f_buy, d, spec, shrinkage_scale), arm_intercepts = arms)
    amount <- stan_glm_part(f_amount, stats::gaussian(), buyers, sampler(seed + 1L),
                            prior = rstanarm_shrinkage_prior(shrinkage, f_amount, buyers, spec, shrinkage_scale), arm_intercepts = arms)
    model <- structure(list(backend = "rstanarm", spec = spec, scaling = mf$scaling, buy = buy, amount = amount),
                       class = "bayeslift_model")
  }
  finish_option_model(model, options, ps_model, overlap)
}

#' An option-fitted model with what prediction and the report need: its options, the propensity model
#' (`add_option_covariates()` applies it to new users) and the overlap diagnostics.
finish_option_model <- function(model, options, ps_model, overlap) {
  model$options <- options
  model$propensity_model <- ps_model
  model$overlap <- overlap
  model
}

# ------------------------------------------------------------------------------------------ LOO

#' Approximate leave-one-out cross-validation (PSIS-LOO, package `loo`) of a fitted model.
#'
#' rstanarm's two parts have separate likelihoods, so the hurdle's log predictive density of user i is
#' log p(buy_i) + [buyer] (log p(log spend_i) - log spend_i): the logistic part's pointwise elpd on every
#' user plus, for buyers, the Gaussian part's pointwise elpd on log-spend with the Jacobian of the log
#' (which makes it a density of spend itself, comparable with brms's hurdle_lognormal, and constant
#' across models on the same data in any case). Summing per user keeps pointwise differences between
#' models, hence standard errors of differences.
#'
#' @param model a `bayeslift_model`.
#' @return a list: elpd, se, p_loo, pointwise (per user, training order), n_high_k (Pareto k > 0.7), parts.
model_loo <- function(model) {
  if (inherits(model, "bayeslift_stack")) return(stack_loo(model))
  if (model$backend == "brms" || !is.null(model$outcome)) {  # one likelihood: brms, or a binary/Gaussian fit
    l <- if (model$backend == "brms") loo::loo(model$fit) else loo::loo(model$outcome, cores = 1)
    pw <- l$pointwise[, "elpd_loo"]
    parts <- stats::setNames(list(l$estimates), names(model_stanfits(model)))
    p_loo <- l$estimates["p_loo", "Estimate"]
    high_k <- sum(l$diagnostics$pareto_k > 0.7)
  } else {
    lb <- loo::loo(model$buy, cores = 1)
    la <- loo::loo(model$amount, cores = 1)
    pw <- lb$pointwise[, "elpd_loo"]
    buyers <- which(model$buy$y == 1)
    pw[buyers] <- pw[buyers] + la$pointwise[, "elpd_loo"] - model$amount$y
    parts <- list(buy = lb$estimates, amount = la$estimates)
    p_loo <- lb$estimates["p_loo", "Estimate"] + la$estimates["p_loo", "Estimate"]
    high_k <- sum(lb$diagnostics$pareto_k > 0.7) + sum(la$diagnostics$pareto_k > 0.7)
  }
  list(elpd = sum(pw), se = sqrt(length(pw)) * stats::sd(pw), p_loo = p_loo, pointwise = pw,
       n_high_k = high_k, parts = parts)
}

#' `model_loo()` of every candidate (candidates may already be `model_loo()` results).
candidate_loos <- function(candidates) lapply(candidates, function(m) if (inherits(m, "bayeslift_model")) model_loo(m) else m)

#' Users x models matrix of per-user LOO elpd from a list of `model_loo()` results.
pointwise_elpd <- function(loos) do.call(cbind, lapply(loos, `[[`, "pointwise"))

#' PSIS-LOO of a stack: per user, the log of the weighted mixture of its members' LOO predictive densities
#' (the quantity stacking maximises). p_loo is the weighted mean of the members' and n_high_k their sum.
stack_loo <- function(stack) {
  loos <- lapply(stack$members, model_loo)
  lpd <- pointwise_elpd(loos)
  top <- apply(lpd, 1, max)
  pw <- top + log(as.vector(exp(lpd - top) %*% stack$weights))
  list(elpd = sum(pw), se = sqrt(length(pw)) * stats::sd(pw), p_loo = sum(stack$weights * vapply(loos, `[[`, numeric(1), "p_loo")),
       pointwise = pw, n_high_k = sum(vapply(loos, function(l) as.numeric(l$n_high_k), numeric(1))),
       parts = lapply(loos, `[[`, "parts"))
}

#' Pick among candidate fits by approximate LOO (`model: auto`).
#'
#' Candidates are listed simplest first. The best elpd wins unless a simpler candidate is not credibly
#' worse: elpd difference below max(`min_diff`, `se_mult` x SE of the difference); then the simplest such
#' candidate is chosen (parsimony when LOO cannot tell them apart).
#'
#' @param candidates a named list of `bayeslift_model`s, simplest first (or of `model_loo()` results).
#' @return a list: `chosen` (name), `table` (data.frame: model, elpd, se, p_loo, elpd_diff, se_diff,
#'   n_high_k, credibly_worse), `loos`.
select_model_by_loo <- function(candidates, se_mult = 2, min_diff = 4) {
  if (is.null(names(candidates)) || any(names(candidates) == "")) stop("select_model_by_loo: name every candidate")
  loos <- candidate_loos(candidates)
  elpd <- vapply(loos, function(l) l$elpd, numeric(1))
  best <- which.max(elpd)
  diff <- elpd[best] - elpd
  se_diff <- vapply(loos, function(l) sqrt(length(l$pointwise)) * stats::sd(loos[[best]]$pointwise - l$pointwise),
                    numeric(1))
  worse <- diff > pmax(min_diff, se_mult * se_diff)
  chosen <- names(candidates)[which(!worse)[1]]
  table <- data.frame(model = names(candidates), elpd = elpd, se = vapply(loos, `[[`, numeric(1), "se"),
                      p_loo = vapply(loos, `[[`, numeric(1), "p_loo"), elpd_diff = -diff, se_diff = se_diff,
                      n_high_k = vapply(loos, function(l) as.numeric(l$n_high_k), numeric(1)),
                      credibly_worse = worse, row.names = NULL)
  list(chosen = chosen, table = table, loos = loos)
}

#' Fit several candidate models and keep the one `select_model_by_loo()` picks (`model: auto`).
#'
#' @param candidates named list of option lists for `fit_causal_model()`, simplest first.
#' @param ... common arguments for `fit_causal_model()` (backend, chains, iter, seed, ...).
#' @return the chosen `bayeslift_model`, with `selection` (the LOO table and the chosen name).
fit_auto_model <- function(data, spec, candidates = list(default = list(), flexible = list(flexible = TRUE)), ...) {
  fits <- lapply(candidates, function(opts) do.call(fit_causal_model, c(list(data, spec), list(...), opts)))
  sel <- select_model_by_loo(fits)
  model <- fits[[sel$chosen]]
  model$selection <- list(chosen = sel$chosen, table = sel$table)
  model
}

# ------------------------------------------------------------------------------------------ stacking

#' Weights of candidate fits from their pointwise PSIS-LOO, for `stack_models()`.
#'
#' "stack" (LOO stacking; Yao, Vehtari, Simpson & Gelman 2018) maximises the summed leave-one-out log density of the
#' mixture, so a candidate gets weight for the users it predicts better, not for winning overall; a
#' near-tie splits the weight rather than betting on one model. It keeps some weight on the no-effect model
#' even where the effect is real but small next to the noise of mostly-zero spend.
#' "pseudo_bma" (pseudo-BMA+: exp(elpd) weights, regularised by the Bayesian bootstrap) weighs whole-model
#' evidence instead: it is close to a pick when one candidate is credibly better and splits near-ties.
#' Its bootstrap draws use a fixed seed (the session's RNG state is restored), so weights are reproducible.
#'
#' @param candidates a named list of `bayeslift_model`s on the same users (or of `model_loo()` results).
#' @param method "stack" or "pseudo_bma" (the `model.auto_combine` values that mix).
#' @return named weights summing to 1.
stack_weights_by_loo <- function(candidates, method = c("stack", "pseudo_bma")) {
  method <- match.arg(method)
  if (is.null(names(candidates)) || any(names(candidates) == "")) stop("stack_weights_by_loo: name every candidate")
  lpd <- pointwise_elpd(candidate_loos(candidates))
  w <- if (method == "stack") loo::stacking_weights(lpd) else with_seed(1L, loo::pseudobma_weights(lpd, BB = TRUE))
  stats::setNames(as.numeric(w), names(candidates))
}

#' Evaluate `expr` with the RNG seeded, restoring the caller's RNG state afterwards.
with_seed <- function(seed, expr) {
  had <- exists(".Random.seed", envir = globalenv(), inherits = FALSE)
  if (had) old <- get(".Random.seed", envir = globalenv())
  on.exit(if (had) assign(".Random.seed", old, envir = globalenv()) else rm(".Random.seed", envir = globalenv()))
  set.seed(seed)
  expr
}

#' Stack fitted models into one posterior: a mixture whose draws come from each member in proportion to
#' its weight (`stack_draw_rows()`), so every summary (means, intervals, P(uplift > 0)) is the mixture's.
#'
#' @param candidates a named list of `bayeslift_model`s fitted on the same data with the same spec.
#' @param weights named weights (default: `stack_weights_by_loo()`).
#' @param min_weight members below this weight are dropped (and the rest renormalised): they would
#'   contribute a handful of draws at the cost of computing all of theirs.
#' @return a `bayeslift_stack`: members, weights (of the kept members), all_weights, spec, scaling, backend.
stack_models <- function(candidates, weights = stack_weights_by_loo(candidates), min_weight = 0.01) {
  if (!identical(sort(names(weights)), sort(names(candidates)))) stop("stack_models: one weight per named candidate")
  for (m in candidates[-1]) if (!identical(m$spec, candidates[[1]]$spec) || !identical(m$scaling, candidates[[1]]$scaling))
    stop("stack_models: candidates were fitted on different data or feature specs")
  weights <- weights[names(candidates)]
  kept <- weights >= min_weight
  structure(list(members = candidates[kept], weights = weights[kept] / sum(weights[kept]), all_weights = weights,
                 spec = candidates[[1]]$spec, scaling = candidates[[1]]$scaling, backend = candidates[[1]]$backend),
            class = "bayeslift_stack")
}

#' Which draws of each member a stack uses: n_k = the largest-remainder share of `n_draws` for weight
#' w_k, taken evenly spaced through the member's draws (so from every chain). Deterministic, so the
#' treated and control predictions of a user, and every chunk of users, use the same draws.
#'
#' @param n_draws draws of the mixture (the smallest member's draw count).
#' @param weights member weights summing to 1.
#' @param member_draws draws each member has.
#' @return a list of row indices, one per member (empty for a zero share).
stack_draw_rows <- function(n_draws, weights, member_draws) {
  share <- weights * n_draws
  n <- floor(share)
  extra <- n_draws - sum(n)
  if (extra > 0) {
    top <- order(share - n, decreasing = TRUE)[seq_len(extra)]
    n[top] <- n[top] + 1
  }
  Map(function(k, total) if (k == 0) integer(0) else unique(round(seq(1, total, length.out = k))), n, member_draws)
}

#' Number of posterior draws of a fitted model.
model_n_draws <- function(model) {
  if (model$backend == "brms") return(brms::ndraws(model$fit))
  nrow(as.matrix(if (is.null(model$outcome)) model$buy else model$outcome))
}

#' Expected outcome draws of a stack (`spend_epred()` for a `bayeslift_stack`).
stack_epred <- function(stack, newdata) {
  sizes <- vapply(stack$members, model_n_draws, numeric(1))
  rows <- stack_draw_rows(min(sizes), stack$weights, sizes)
  parts <- Map(function(m, r) if (length(r)) spend_epred(m, newdata)[r, , drop = FALSE], stack$members, rows)
  do.call(rbind, parts)
}

# ------------------------------------------------------------------------------------------ checks

#' Posterior predictive checks of spend: observed statistics vs their replicated distribution.
#'
#' @param model a `bayeslift_model`. @param data the training data (raw scale, with the outcome).
#' @param ndraws replicated data sets to draw. @param seed RNG seed.
#' @return a data.frame: stat (share_zero, mean, mean_treated, mean_control, buyer_median, buyer_q90,
#'   q99), observed, rep_mean, rep_q05, rep_q95, p_value (share of replications >= observed; values near
#'   0 or 1 flag misfit).
posterior_predictive_checks <- function(model, data, ndraws = 200L, seed = 1L) {
  spec <- model$spec
  if (outcome_type(spec) != "spend") stop("posterior_predictive_checks: its statistics are of spend outcomes")
  rep <- replicate_spend(model, data, ndraws, seed)
  t <- data[[spec$treatment]] == 1
  stats_of <- function(y) {
    b <- y[y > 0]
    c(share_zero = mean(y == 0), mean = mean(y), mean_treated = mean(y[t]), mean_control = mean(y[!t]),
      buyer_median = if (length(b)) stats::median(b) else NA, buyer_q90 = if (length(b)) unname(stats::quantile(b, 0.9)) else NA,
      q99 = unname(stats::quantile(y, 0.99)))
  }
  obs <- stats_of(data[[spec$outcome]])
  reps <- t(apply(rep, 1, stats_of))
  data.frame(stat = names(obs), observed = unname(obs), rep_mean = colMeans(reps, na.rm = TRUE),
             rep_q05 = apply(reps, 2, stats::quantile, 0.05, na.rm = TRUE),
             rep_q95 = apply(reps, 2, stats::quantile, 0.95, na.rm = TRUE),
             p_value = colMeans(sweep(reps, 2, obs, ">="), na.rm = TRUE), row.names = NULL)
}

#' Replicated spend data sets (ndraws x users) from the posterior predictive distribution; a stack's come
#' from its members in proportion to their weights.
replicate_spend <- function(model, data, ndraws, seed) {
  if (inherits(model, "bayeslift_stack")) {
    n <- lengths(stack_draw_rows(ndraws, model$weights, rep(ndraws, length(model$members))))
    parts <- Map(function(m, k, i) if (k > 0) replicate_spend(m, data, k, seed + 10L * i), model$members, n, seq_along(n))
    return(do.call(rbind, parts))
  }
  nd <- model_newdata(model, data)
  set.seed(seed)
  if (model$backend == "brms") return(brms::posterior_predict(model$fit, newdata = nd, ndraws = ndraws))
  buy <- rstanarm::posterior_predict(model$buy, newdata = nd, draws = ndraws, seed = seed)
  amount <- rstanarm::posterior_predict(model$amount, newdata = nd, draws = ndraws, seed = seed + 1L)
  buy * exp(amount)
}

#' Posterior of the sample average treatment effect over `users` (draws), and per-user mean uplift and 90%
#' intervals (calibrated when the model carries an interval calibration).
ate_posterior <- function(model, users) {
  d <- counterfactual_draws(model, users)
  u <- d$treated - d$control
  draws <- rowMeans(posterior_treated(d) - d$control)  # the ATE is never interval-calibrated
  list(mean = mean(draws), q05 = unname(stats::quantile(draws, 0.05)), q95 = unname(stats::quantile(draws, 0.95)),
       uplift_mean = colMeans(u), uplift_q05 = matrixStats::colQuantiles(u, probs = 0.05),
       uplift_q95 = matrixStats::colQuantiles(u, probs = 0.95))
}

#' LOO and posterior predictive checks of a fitted model, for diagnostics.json and the report.
#'
#' @param model a `bayeslift_model` (with `selection` when `model: auto` chose it).
#' @param data the training data (raw scale, with the outcome).
#' @param ppc_draws replicated data sets for the posterior predictive checks (spend outcomes only).
#' @param seed RNG seed of the replications.
#' @return a list: `loo` (elpd, se, p_loo, n_high_k, n_users), `ppc` (a data.frame, spend only) and
#'   `selection` (the LOO table of the candidates and the chosen name, `model: auto` only).
model_checks <- function(model, data, ppc_draws = 200L, seed = 1L) {
  l <- model_loo(model)
  out <- list(loo = list(elpd = l$elpd, se = l$se, p_loo = l$p_loo, n_high_k = l$n_high_k,
                         n_users = length(l$pointwise)))
  if (outcome_type(model$spec) == "spend")
    out$ppc <- posterior_predictive_checks(model, data, ndraws = ppc_draws, seed = seed)
  if (!is.null(model$selection)) out$selection <- model$selection
  out
}
