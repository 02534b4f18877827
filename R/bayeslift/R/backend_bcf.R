# Back-end "bcf": Bayesian causal forests (stochtree's BCF, Hahn, Murray & Carvalho 2020), sampled in Python
# (python/bayeslift/bcf.py) since stochtree has no R package here. Each part's latent mean is mu(x) + z tau(x):
# a prognostic forest and a treatment-effect forest (plus an intercept), so thresholds, saturation and
# feature x feature effects need no terms. Spend is a two-part hurdle (probit BCF on buying, Gaussian BCF on
# the log spend of buyers, E[spend] = P(buy) exp(mu + sigma^2 / 2)); binary and Gaussian outcomes are one part.
# A part keeps each chain's forests as stochtree's JSON text, so a saved model needs no other file.
# Class c("bayeslift_bcf", "bayeslift_model").

#: draws kept per chain and part: each draw is 350 trees that every prediction reloads, so draws are thinned
BCF_KEEP <- 250L
#: grow-from-root sweeps that warm-start each chain (stochtree's recommendation)
BCF_GFR <- 10L

bcf_cache <- new.env(parent = emptyenv())

# The Python that runs bayeslift.bcf: BAYESLIFT_PYTHON, else python3 on PATH; checked once per session.
bcf_python <- function() {
  py <- Sys.getenv("BAYESLIFT_PYTHON", "")
  if (!nzchar(py)) py <- unname(Sys.which("python3"))
  if (!nzchar(py))
    stop("backend bcf: no Python found: set BAYESLIFT_PYTHON to a Python with stochtree and bayeslift, or put python3 on PATH", call. = FALSE)
  if (!identical(bcf_cache$checked, py)) {
    out <- suppressWarnings(system2(py, c("-c", shQuote("import stochtree, bayeslift.bcf")), stdout = TRUE, stderr = TRUE))
    if (!is.null(attr(out, "status")))
      stop(sprintf("backend bcf: stochtree or bayeslift.bcf does not import in %s (%s); install requirements.txt there, or set BAYESLIFT_PYTHON",
                   py, paste(utils::tail(out, 2), collapse = " ")), call. = FALSE)
    bcf_cache$checked <- py
  }
  py
}

# Run `python -m bayeslift.bcf args`; stop with the tail of its log when it fails.
bcf_run <- function(args) {
  py <- bcf_python()
  log <- tempfile("bcf_log_")
  on.exit(unlink(log))
  status <- system2(py, c("-m", "bayeslift.bcf", shQuote(args)), stdout = log, stderr = log)
  if (status != 0)
    stop(sprintf("backend bcf: bayeslift.bcf %s failed (exit %d): %s", args[1], status,
                 paste(utils::tail(readLines(log), 12), collapse = "\n")), call. = FALSE)
}

#' The design matrix of the "bcf" back-end
#'
#' Numeric features as they are (on the model scale; trees need no scaling) and each categorical feature one-hot
#' on the spec's levels, every level a column (a tree can split any level off).
#'
#' @param d users on the model's scale ([model_newdata()]).
#' @param spec feature spec.
#' @return a users x columns numeric matrix.
#' @keywords internal
bcf_design <- function(d, spec) {
  num <- as.matrix(d[, spec$numeric, drop = FALSE])
  cats <- lapply(spec$categorical, function(col) {
    lv <- spec$levels[[col]]
    m <- outer(as.character(d[[col]]), lv, `==`) * 1
    colnames(m) <- paste0(col, "=", lv)
    m
  })
  x <- do.call(cbind, c(list(num), cats))
  storage.mode(x) <- "double"
  x
}

# Sampler of one chain from fit_causal_model()'s `iter`: after the warm start, `iter` sweeps, the first half
# discarded (as Stan's warmup) and BCF_KEEP draws thinned evenly from the second, so longer chains (the checks'
# extension) mean less autocorrelated draws at the same prediction cost.
bcf_sampler <- function(iter) {
  kept <- iter - iter %/% 2L
  keep <- min(BCF_KEEP, kept)
  list(num_gfr = BCF_GFR, num_burnin = as.integer(iter - keep * (kept %/% keep)), num_mcmc = as.integer(keep),
       keep_every = as.integer(kept %/% keep))
}

# Write a part's users to a CSV for bayeslift.bcf: design columns, then .t, .y, .propensity where given.
bcf_write_csv <- function(X, path, t = NULL, y = NULL, ps = NULL) {
  frame <- as.data.frame(X, optional = TRUE)
  if (!is.null(t)) frame[[".t"]] <- as.numeric(t)
  if (!is.null(y)) frame[[".y"]] <- as.numeric(y)
  if (!is.null(ps)) frame[[".propensity"]] <- ps
  data.table::fwrite(frame, path)
  path
}

# Sample one part (kind "probit" or "gaussian") on design X, arm t, outcome y, propensity ps (NULL: none).
bcf_fit_part <- function(X, t, y, ps, kind, seed, sampler) {
  dir <- tempfile("bcf_fit_")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE))
  data <- bcf_write_csv(X, file.path(dir, "part.csv"), t, y, ps)
  settings <- file.path(dir, "settings.json")
  jsonlite::write_json(c(list(kind = kind, seed = as.integer(seed), propensity = !is.null(ps)), sampler), settings,
                       auto_unbox = TRUE)
  bcf_run(c("fit", data, settings, file.path(dir, "out")))
  path <- file.path(dir, "out", "model.json")
  json <- readChar(path, file.size(path), useBytes = TRUE)
  monitored <- as.matrix(utils::read.csv(file.path(dir, "out", "monitored.csv")))
  list(kind = kind, json = json, key = digest::digest(json, algo = "md5"), monitored = list(monitored),
       X = X, t = as.numeric(t), y = as.numeric(y), ps = ps, sampler = sampler)
}

# Fitter registered for bcf x every outcome type (backend_fitter()).
fit_bcf_model <- function(d, spec, options, extra, settings) {
  if (options$flexible)
    stop("fit_causal_model: backend bcf takes effect shape linear only: its forests find the effect's shape ",
         "(flexible and auto add splines, or fit the same forests twice)", call. = FALSE)
  if (!options$effect)
    stop("fit_causal_model: backend bcf has no no-effect model (combine stack / pseudo_bma); use combine pick", call. = FALSE)
  if (settings$algorithm != "sampling")
    stop("fit_causal_model: backend bcf samples by MCMC only; algorithm must be 'sampling', not '", settings$algorithm, "'",
         call. = FALSE)
  if (options$shrinkage != "none") message("backend bcf: shrinkage '", options$shrinkage, "' ignored (the forests' own priors regularize)")
  if (settings$chains > 1) {  # chains one after another here; the pipeline runs one per job
    fits <- lapply(seq_len(settings$chains), function(k) {
      fit_bcf_model(d, spec, options, extra, utils::modifyList(settings, list(chains = 1L, seed = settings$seed + 2L * (k - 1L))))
    })
    return(combine_chain_draws(fits[[1]], fits))
  }
  X <- bcf_design(d, spec)
  arm <- d[[spec$treatment]]
  # randomized data: the propensity is constant, no covariate; with `propensity` the logistic estimate goes
  # into the prognostic forest (BCF's guard against regularization-induced confounding)
  ps <- if (options$propensity) stats::plogis(d[[OPTION_PSCORE]])
  sampler <- bcf_sampler(settings$iter)
  part <- function(rows, y, kind, seed) bcf_fit_part(X[rows, , drop = FALSE], arm[rows], y, ps[rows], kind, seed, sampler)
  type <- outcome_type(spec)
  parts <- if (type == "spend") {
    buyer <- d[[spec$outcome]] > 0
    list(buy = part(rep(TRUE, nrow(d)), as.numeric(buyer), "probit", settings$seed),
         amount = part(buyer, log(d[[spec$outcome]][buyer]), "gaussian", settings$seed + 1L))
  } else {
    list(outcome = part(rep(TRUE, nrow(d)), d[[spec$outcome]], if (type == "binary") "probit" else "gaussian", settings$seed))
  }
  structure(c(list(backend = "bcf", options = options, n_users = nrow(d)), parts), class = c("bayeslift_bcf", "bayeslift_model"))
}

bcf_parts <- function(model) Filter(function(p) is.list(p) && !is.null(p$json), unclass(model))

# Each chain's JSON as a file of this session's temporary folder, written once.
bcf_model_files <- function(part) {
  vapply(seq_along(part$json), function(k) {
    path <- file.path(tempdir(), sprintf("bcf_%s.json", part$key[k]))
    if (!file.exists(path)) writeChar(part$json[k], path, eos = NULL, useBytes = TRUE)
    path
  }, character(1))
}

# mu and tau draws (draws x users) of a part at design X. The last results are kept: counterfactual_draws()
# asks for the same users in the other arm next, which needs no second prediction.
bcf_latent <- function(part, X, ps) {
  key <- digest::digest(list(part$key, X, ps), algo = "md5")
  if (!is.null(bcf_cache$latent[[key]])) return(bcf_cache$latent[[key]])
  dir <- tempfile("bcf_predict_")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE))
  bcf_run(c("predict", bcf_write_csv(X, file.path(dir, "users.csv"), ps = ps), dir, bcf_model_files(part)))
  n <- nrow(X) * model_draws_of(part)
  read <- function(f) matrix(readBin(file.path(dir, f), "double", n = n, size = 8, endian = "little"), ncol = nrow(X))
  out <- list(mu = read("mu.f64"), tau = read("tau.f64"))
  bcf_cache$latent <- c(utils::tail(bcf_cache$latent, 3), stats::setNames(list(out), key))  # two parts x two arms
  out
}

model_draws_of <- function(part) sum(vapply(part$monitored, nrow, integer(1)))

# Latent mean draws (draws x users) of a part for users `nd` (model scale) in the arm their treatment gives.
bcf_eta <- function(model, part, nd) {
  l <- bcf_latent(part, bcf_design(nd, model$spec), if (model$options$propensity) stats::plogis(nd[[OPTION_PSCORE]]))
  l$mu + sweep(l$tau, 2, as.numeric(nd[[model$spec$treatment]]), `*`)
}

bcf_sigma <- function(part) sqrt(do.call(rbind, part$monitored)[, "sigma2"])

#' @export
expected_outcome.bayeslift_bcf <- function(model, newdata) {
  nd <- model_newdata(model, newdata)
  if (!is.null(model$buy))  # independent parts: draws paired by index are a joint draw
    return(stats::pnorm(bcf_eta(model, model$buy, nd)) * exp(bcf_eta(model, model$amount, nd) + bcf_sigma(model$amount)^2 / 2))
  eta <- bcf_eta(model, model$outcome, nd)
  if (model$outcome$kind == "gaussian") eta else stats::pnorm(eta)
}

# Per part, the monitored draws (the part's sample average effect, mean prognostic function, sigma^2) of each
# chain as a draws_array: BCF has no stanfit, and its trees no parameters to compare across chains.
#' @export
model_monitored.bayeslift_bcf <- function(model) {
  lapply(bcf_parts(model), function(part) {
    arr <- simplify2array(part$monitored)  # draws x variables x chains
    list(draws = posterior::as_draws_array(aperm(arr, c(1, 3, 2))), divergences = 0)
  })
}

#' @export
model_n_users.bayeslift_bcf <- function(model) model$n_users

#' @export
model_n_draws.bayeslift_bcf <- function(model) model_draws_of(bcf_parts(model)[[1]])

#' @export
is_variational.bayeslift_bcf <- function(model) FALSE

# Chains are independent samplers: each part's JSON and monitored draws, chain after chain.
#' @export
combine_chain_draws.bayeslift_bcf <- function(model, fits) {
  for (part in names(bcf_parts(model))) {
    for (key in c("json", "key", "monitored")) model[[part]][[key]] <- do.call(c, lapply(fits, function(f) f[[part]][[key]]))
  }
  model
}

# Pointwise log-likelihood (draws x users) of a part on its own training users.
bcf_log_lik <- function(model, part) {
  l <- bcf_latent(part, part$X, part$ps)
  eta <- l$mu + sweep(l$tau, 2, part$t, `*`)
  y <- matrix(part$y, nrow(eta), ncol(eta), byrow = TRUE)
  if (part$kind == "gaussian") return(stats::dnorm(y, eta, bcf_sigma(part), log = TRUE))
  stats::pnorm(eta, log.p = TRUE) * y + stats::pnorm(-eta, log.p = TRUE) * (1 - y)
}

# As backend stan's: the purchase part's pointwise elpd on every user plus, for buyers, the amount part's on
# log spend with the log's Jacobian (a density of spend itself).
#' @export
model_loo.bayeslift_bcf <- function(model) {
  loos <- lapply(bcf_parts(model), function(part) {
    ll <- bcf_log_lik(model, part)
    chain_id <- rep(seq_along(part$monitored), vapply(part$monitored, nrow, integer(1)))
    loo::loo(ll, r_eff = loo::relative_eff(exp(ll), chain_id = chain_id), cores = 1)
  })
  pw <- loos[[1]]$pointwise[, "elpd_loo"]
  if (!is.null(model$buy)) {
    buyers <- which(model$buy$y == 1)
    pw[buyers] <- pw[buyers] + loos$amount$pointwise[, "elpd_loo"] - model$amount$y
  }
  loo_summary(pw, sum(vapply(loos, function(l) l$estimates["p_loo", "Estimate"], numeric(1))),
              sum(vapply(loos, function(l) sum(l$diagnostics$pareto_k > 0.7), numeric(1))), lapply(loos, `[[`, "estimates"))
}

#' @export
replicate_outcome.bayeslift_bcf <- function(model, data, ndraws, seed) {
  nd <- model_newdata(model, data)
  set.seed(seed)
  pick <- sample.int(model_n_draws(model), ndraws, replace = ndraws > model_n_draws(model))
  draw <- function(part) {
    eta <- bcf_eta(model, part, nd)[pick, , drop = FALSE]
    if (part$kind == "gaussian") eta + bcf_sigma(part)[pick] * matrix(stats::rnorm(length(eta)), nrow(eta))
    else matrix(stats::rbinom(length(eta), 1, stats::pnorm(eta)), nrow(eta))
  }
  if (!is.null(model$buy)) return(draw(model$buy) * exp(draw(model$amount)))
  draw(model$outcome)
}

#' @export
point_outcome_parts.bayeslift_bcf <- function(model, newdata) {
  nd <- model_newdata(model, newdata)
  mean_eta <- function(part) colMeans(bcf_eta(model, part, nd))
  if (!is.null(model$buy))
    return(list(type = "spend", p = stats::pnorm(mean_eta(model$buy)), mu = mean_eta(model$amount),
                sigma = mean(bcf_sigma(model$amount))))
  type <- outcome_type(model$spec)
  if (type == "binary") return(list(type = type, p = stats::pnorm(mean_eta(model$outcome))))
  list(type = type, mu = mean_eta(model$outcome), sigma = mean(bcf_sigma(model$outcome)))
}
