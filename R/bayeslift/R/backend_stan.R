# Back-end "stan": bayeslift's own Stan program (inst/stan/hierarchical_part.stan), one fit per model part.
# The average effect has a normal(0, outcome scale) prior; the arm x feature terms and, with shape flexible,
# penalized arm x smooth terms are shrunk toward zero with scales the data estimate. Spend is a two-part hurdle
# (logistic purchase part, Gaussian log-spend of buyers, E[spend] = p exp(mu + sigma^2 / 2)); binary and
# Gaussian outcomes are one part. Class c("bayeslift_stan", "bayeslift_model").

stan_cache <- new.env(parent = emptyenv())

#' The compiled Stan program of the "stan" back-end
#'
#' Compiled once per program text and kept as an RDS in `dir` (default: the installed package's `stan`
#' folder, or `BAYESLIFT_STAN_CACHE`), so the pipeline's jobs load it rather than compile; `make r-pkg`
#' compiles it after installing.
#'
#' @param dir cache directory.
#' @return an rstan `stanmodel`.
#' @export
stan_part_model <- function(dir = Sys.getenv("BAYESLIFT_STAN_CACHE", system.file("stan", package = "bayeslift"))) {
  code <- paste(readLines(system.file("stan", "hierarchical_part.stan", package = "bayeslift")), collapse = "\n")
  key <- digest::digest(code, algo = "md5")
  if (!is.null(stan_cache[[key]])) return(stan_cache[[key]])
  path <- file.path(dir, paste0("hierarchical_part_", key, ".rds"))
  if (file.exists(path)) {
    model <- readRDS(path)
  } else {
    message("compiling the hierarchical Stan model (once per installation, about a minute)")
    model <- rstan::stan_model(model_code = code, model_name = "bayeslift_hierarchical_part")
    dir.create(dir, recursive = TRUE, showWarnings = FALSE)
    save_rds_atomic(model, path)
  }
  stan_cache[[key]] <- model
  model
}

# Fitter registered for stan x every outcome type (backend_fitter()).
fit_stan_hierarchical <- function(d, spec, options, extra, settings) {
  if (options$shrinkage != "none")
    message("backend stan: shrinkage '", options$shrinkage, "' ignored (the effect terms' scale is learned)")
  type <- outcome_type(spec)
  part <- function(rows, y, gaussian, seed) {
    stan_fit_part(d[rows, , drop = FALSE], y, gaussian, spec, options, extra, settings, seed)
  }
  parts <- if (type == "spend") {
    buyer <- d[[spec$outcome]] > 0
    list(buy = part(rep(TRUE, nrow(d)), as.numeric(buyer), FALSE, settings$seed),
         amount = part(buyer, log(d[[spec$outcome]][buyer]), TRUE, settings$seed + 1L))
  } else {
    list(outcome = part(rep(TRUE, nrow(d)), as.numeric(d[[spec$outcome]]), type == "gaussian", settings$seed))
  }
  structure(c(list(backend = "stan", options = options, n_users = nrow(d)), parts),
            class = c("bayeslift_stan", "bayeslift_model"))
}

# One part: the design recipe on its users, the data list, then NUTS (or ADVI) on the compiled program.
stan_fit_part <- function(d, y, gaussian, spec, options, extra, settings, seed) {
  n_arms <- n_campaign_arms(spec)
  recipe <- design_recipe(d, spec, extra, d[[spec$treatment]] > 0, options$flexible, settings$spline_df)
  recipe$n_arms <- n_arms
  if (length(recipe$dropped))
    message(sprintf("stan part (%s): %s", if (gaussian) "gaussian" else "logistic",
                    paste(sprintf("%s dropped (%s)", names(recipe$dropped), recipe$dropped), collapse = "; ")))
  m <- design_matrices(recipe, d)
  arm <- arm_indicators(d[[spec$treatment]], n_arms)
  if (!options$effect) {
    arm <- 0 * arm
    m$Z <- m$Z[, 0, drop = FALSE]
    m$S <- m$S[, 0, drop = FALSE]
  }
  scale_y <- if (gaussian) max(stats::sd(y), 1e-6) else 1
  data <- list(N = length(y), gaussian = as.integer(gaussian), y = y, A = n_arms, arm = arm,
               K = ncol(m$X), X = m$X, L = ncol(m$B), B = m$B, J = ncol(m$Z), Z = by_arm(m$Z, arm),
               M = ncol(m$S), S = by_arm(m$S, arm), y_loc = if (gaussian) mean(y) else 0, y_scale = scale_y)
  pars <- c("alpha", "coef", "lambda_baseline_smooth", "lambda_effect", "lambda_effect_smooth",
            if (n_arms > 1) c("lambda_arm", "lambda_arm_smooth"), if (gaussian) "sigma")
  sm <- stan_part_model()
  fit <- if (settings$algorithm == "sampling") {
    rstan::sampling(sm, data = data, pars = pars, chains = settings$chains, iter = settings$iter, seed = seed,
                    refresh = settings$refresh, cores = settings$cores, control = list(adapt_delta = settings$adapt_delta))
  } else {
    rstan::vb(sm, data = data, pars = pars, algorithm = settings$algorithm, seed = seed, refresh = settings$refresh,
              tol_rel_obj = 0.001, output_samples = 1000)
  }
  # Readable names in diagnostics: coef[k] -> the design column it multiplies.
  arms <- arm_terms(spec)
  coef_names <- c(arms, colnames(m$X), sprintf("baseline:%s", colnames(m$B)),
                  as.vector(outer(colnames(m$Z), arms, function(z, a) sprintf("%s:%s", a, z))),
                  as.vector(outer(colnames(m$S), arms, function(z, a) sprintf("%s:%s", a, z))))
  idx <- grep("^coef\\[", fit@sim$fnames_oi)
  fit@sim$fnames_oi[idx] <- coef_names
  # the training design is kept for PSIS-LOO (as a stanreg keeps its data)
  list(stanfit = fit, recipe = recipe, gaussian = gaussian, y = y, coef_names = coef_names,
       w = with(data, cbind(arm, X, B, Z, S)), effect = options$effect)
}

# Effect columns `m` times each arm's indicator column of `arm`, arm after arm (the Stan program's Z and S).
by_arm <- function(m, arm) do.call(cbind, lapply(seq_len(ncol(arm)), function(a) m * arm[, a]))

# Names of the arms' average-effect coefficients: the treatment column, or with several arms
# "campaign[level]" per campaign level.
arm_terms <- function(spec) {
  arms <- spec_arms(spec)
  if (length(arms) <= 1) spec$treatment else sprintf("%s[%s]", spec$treatment, arms)
}

# Design of users `nd` (model scale) in the arm their treatment column gives, columns as the part's coef.
stan_design_of <- function(part, nd) {
  m <- design_matrices(part$recipe, nd)
  n_arms <- if (is.null(part$recipe$n_arms)) 1L else part$recipe$n_arms  # fits saved before several arms
  arm <- arm_indicators(nd[[part$recipe$spec$treatment]], n_arms)
  if (!part$effect) return(cbind(0 * arm, m$X, m$B))
  cbind(arm, m$X, m$B, by_arm(m$Z, arm), by_arm(m$S, arm))
}

# Linear predictor draws (draws x users) of one part for a design `w` (stan_design_of()); `pick`: only
# those draws (rows), e.g. the replications of the posterior predictive checks.
stan_linpred_w <- function(part, w, pick = NULL) {
  draws <- as.matrix(part$stanfit)
  if (!is.null(pick)) draws <- draws[pick, , drop = FALSE]
  draws[, "alpha"] + tcrossprod(draws[, part$coef_names, drop = FALSE], w)
}

stan_linpred <- function(part, nd, pick = NULL) stan_linpred_w(part, stan_design_of(part, nd), pick)

stan_sigma <- function(part) as.matrix(part$stanfit)[, "sigma[1]"]

stan_parts <- function(model) Filter(function(p) is.list(p) && !is.null(p$stanfit), unclass(model))

#' @export
expected_outcome.bayeslift_stan <- function(model, newdata) {
  nd <- model_newdata(model, newdata)
  if (!is.null(model$buy)) {
    # separate likelihoods and priors: pairing the parts' draws by index is a joint draw
    return(stats::plogis(stan_linpred(model$buy, nd)) * exp(stan_linpred(model$amount, nd) + stan_sigma(model$amount)^2 / 2))
  }
  lin <- stan_linpred(model$outcome, nd)
  if (model$outcome$gaussian) lin else stats::plogis(lin)
}

#' @export
model_stanfits.bayeslift_stan <- function(model) lapply(stan_parts(model), `[[`, "stanfit")

#' @export
model_n_users.bayeslift_stan <- function(model) model$n_users

#' @export
model_n_draws.bayeslift_stan <- function(model) nrow(as.matrix(stan_parts(model)[[1]]$stanfit))

#' @export
combine_chain_draws.bayeslift_stan <- function(model, fits) combine_part_stanfits(model, fits)

# Pointwise log-likelihood (draws x users) of a part on its own training users.
stan_log_lik <- function(part) {
  lin <- stan_linpred_w(part, part$w)
  if (part$gaussian) return(stats::dnorm(matrix(part$y, nrow(lin), ncol(lin), byrow = TRUE), lin, stan_sigma(part), log = TRUE))
  # log P(y | lin) = log plogis(+-lin), the sign by y: one pass over the draws x users matrix
  stats::plogis(lin * rep(2 * part$y - 1, each = nrow(lin)), log.p = TRUE)
}

stan_part_loo <- function(part) {
  ll <- stan_log_lik(part)
  chains <- part$stanfit@sim$chains
  chain_id <- rep(seq_len(chains), each = nrow(ll) / chains)
  cores <- getOption("mc.cores", 1L)  # the rule's threads (bayesian_model sets it)
  loo::loo(ll, r_eff = loo::relative_eff(exp(ll), chain_id = chain_id, cores = cores), cores = cores)
}

# As the rstanarm hurdle: the purchase part's pointwise elpd on every user plus, for buyers, the amount part's
# on log spend with the log's Jacobian (a density of spend itself).
#' @export
model_loo.bayeslift_stan <- function(model) {
  loos <- lapply(stan_parts(model), stan_part_loo)
  pw <- loos[[1]]$pointwise[, "elpd_loo"]
  if (!is.null(model$buy)) {
    buyers <- which(model$buy$y == 1)
    pw[buyers] <- pw[buyers] + loos$amount$pointwise[, "elpd_loo"] - model$amount$y
  }
  loo_summary(pw, sum(vapply(loos, function(l) l$estimates["p_loo", "Estimate"], numeric(1))),
              sum(vapply(loos, function(l) sum(l$diagnostics$pareto_k > 0.7), numeric(1))),
              lapply(loos, `[[`, "estimates"))
}

#' @export
replicate_outcome.bayeslift_stan <- function(model, data, ndraws, seed) {
  nd <- model_newdata(model, data)
  set.seed(seed)
  pick <- sample.int(model_n_draws(model), ndraws, replace = ndraws > model_n_draws(model))
  draw <- function(part) {
    lin <- stan_linpred(part, nd, pick)
    if (part$gaussian) lin + stan_sigma(part)[pick] * matrix(stats::rnorm(length(lin)), nrow(lin))
    else matrix(stats::rbinom(length(lin), 1, stats::plogis(lin)), nrow(lin))
  }
  if (!is.null(model$buy)) return(draw(model$buy) * exp(draw(model$amount)))
  draw(model$outcome)
}

#' @export
point_outcome_parts.bayeslift_stan <- function(model, newdata) {
  nd <- model_newdata(model, newdata)
  mean_lin <- function(part) colMeans(stan_linpred(part, nd))
  if (!is.null(model$buy))
    return(list(type = "spend", p = stats::plogis(mean_lin(model$buy)), mu = mean_lin(model$amount),
                sigma = mean(stan_sigma(model$amount))))
  type <- outcome_type(model$spec)
  if (type == "binary") return(list(type = type, p = stats::plogis(mean_lin(model$outcome))))
  list(type = type, mu = mean_lin(model$outcome), sigma = mean(stan_sigma(model$outcome)))
}
