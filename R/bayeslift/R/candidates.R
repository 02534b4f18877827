# The config's `model` section -> the candidate fits. One mapping (model_candidates()) serves every caller:
# the pipeline's chain jobs (fit_candidates(chain = k), then choose_model() in rule bayesian_model), the
# interval calibration's refits and the benchmarks (fit_configured_model()), and the tests.

AUTO_COMBINE <- c("pick", "stack", "pseudo_bma")
SHAPES <- c("linear", "flexible", "auto")
# config/config.yaml's model.effect.shape and shape_subsample: what a section without them gets
DEFAULT_SHAPE <- "auto"
DEFAULT_SHAPE_SUBSAMPLE <- 5000L
MODEL_GROUPS <- c("effect", "inference", "checks", "intervals", "brms")

# The section's value of `key` (in `group`, or at the top with group NULL), or `default` when absent (R users
# may pass a partial section).
config_value <- function(m, key, default, group = NULL) {
  v <- if (is.null(group)) m[[key]] else m[[group]][[key]]
  if (is.null(v)) default else v
}

#' The candidate models a config's `model` section describes
#'
#' `effect$shape` "linear" or "flexible": one candidate, the configured model. "auto": the
#' linear model (`default`) and the same with splines (`flexible`), and with `combine` "stack" or "pseudo_bma"
#' first the no-effect model (`no_effect`: no treatment terms, no other option); where the back-end has no
#' flexible model for these options ([flexible_fits()]: bcf's forests find the shape themselves, brms' smooths
#' are for spend without the horseshoe) "auto" is the one configured model. `effect$shape` left out is
#' "auto" (config/config.yaml's default); other keys left out take [fit_causal_model()]'s defaults.
#'
#' @param model_config the config's `model` section as a list (`snakemake@params[["model"]]`): `backend`,
#'   `effect = list(shape, spline_df, shrinkage, shrinkage_scale, propensity)`, `combine`,
#'   `inference = list(algorithm, chains, iter, adapt_delta, seed, fit_subsample)`, `brms = list(formula,
#'   cache_dir)`; `checks` and `intervals` are read by [check_convergence()] and the interval calibration.
#' @param outcome_type the spec's outcome type ("spend", "binary", "gaussian"; [outcome_type()]).
#' @return a named list of candidates, simplest first, each a named list of [fit_causal_model()] arguments
#'   (no data, spec, seed or chains: [fit_candidates()] adds them).
#' @examples
#' names(model_candidates(list(effect = list(shape = "auto"), combine = "stack")))
#' @export
model_candidates <- function(model_config, outcome_type = "spend") {
  m <- check_model_config(model_config)
  backend <- config_value(m, "backend", "stan")
  effect <- m$effect
  args <- list(backend = backend)
  for (key in c("iter", "adapt_delta", "algorithm"))
    if (!is.null(m$inference[[key]])) args[[key]] <- m$inference[[key]]
  shape <- config_value(m, "shape", DEFAULT_SHAPE, "effect")
  args$flexible <- identical(shape, "flexible")
  for (key in c("shrinkage", "propensity")) if (!is.null(effect[[key]])) args[[key]] <- effect[[key]]
  if (!is.null(args$iter)) args$iter <- as.integer(args$iter)
  # shrinkage_scale is the normal prior's sd; the other priors have no such scale
  if (identical(effect$shrinkage, "normal") && !is.null(effect$shrinkage_scale)) args$shrinkage_scale <- effect$shrinkage_scale
  args <- c(args, Filter(Negate(is.null), backend_config_args(backend)(m)))
  if (shape != "auto" || !flexible_fits(backend, args$shrinkage, outcome_type)) return(list(model = args))
  out <- list(default = args, flexible = utils::modifyList(args, list(flexible = TRUE)))
  if (config_value(m, "combine", "pick") %in% c("stack", "pseudo_bma"))
    out <- c(list(no_effect = utils::modifyList(args, list(effect = FALSE, flexible = FALSE, shrinkage = "none",
                                                           propensity = FALSE))), out)
  out
}

#' Whether a back-end fits the flexible model (splines) with these options
#'
#' What `effect$shape` "auto" compares: bcf's forests find the effect's shape themselves (no splines), and
#' brms' smooths are implemented for spend outcomes and not beside the horseshoe prior; stan and rstanarm fit
#' it for every outcome type.
#'
#' @param backend,shrinkage [fit_causal_model()]'s arguments (`shrinkage` NULL: "none").
#' @param outcome_type "spend", "binary" or "gaussian".
#' @return TRUE or FALSE.
#' @export
flexible_fits <- function(backend, shrinkage = NULL, outcome_type = "spend") {
  switch(backend, bcf = FALSE,
         brms = identical(outcome_type, "spend") && !identical(shrinkage, "horseshoe"),
         TRUE)
}

# Stop on the values of the model section that no candidate can be built from.
check_model_config <- function(m) {
  if (!is.list(m)) stop("model_candidates: model_config must be a list (the config's model section)", call. = FALSE)
  for (group in MODEL_GROUPS)
    if (!is.null(m[[group]]) && !is.list(m[[group]]))
      stop("model_candidates: model_config$", group, " must be a list (the section's ", group, " group)", call. = FALSE)
  old <- intersect(names(m), c("flexible", "auto", "auto_combine", "chains", "iter", "seed", "algorithm", "shrinkage"))
  if (length(old))
    stop("model_candidates: ", paste(old, collapse = ", "), " belong in the grouped section (effect$shape, combine, ",
         "inference$chains, ...; README 'Renamed keys')", call. = FALSE)
  if (!is.null(m$combine) && !m$combine %in% AUTO_COMBINE)
    stop("model_candidates: combine must be one of pick, stack, pseudo_bma, not '", m$combine, "'", call. = FALSE)
  shape <- m$effect$shape
  if (!is.null(shape) && !(is.character(shape) && length(shape) == 1 && shape %in% SHAPES))
    stop("model_candidates: effect$shape must be one of linear, flexible, auto", call. = FALSE)
  if (!is.null(m$combine) && m$combine != "pick" && !identical(config_value(m, "shape", DEFAULT_SHAPE, "effect"), "auto"))
    stop("model_candidates: combine '", m$combine, "' mixes candidates, which only effect$shape 'auto' fits", call. = FALSE)
  chains <- m$inference$chains
  if (!is.null(chains) && (!is.numeric(chains) || chains < 1))
    stop("model_candidates: inference$chains must be a positive whole number", call. = FALSE)
  m
}

# Chains the section's algorithm runs: the configured chains for NUTS, one for variational inference.
configured_chains <- function(m) {
  if (config_value(m, "algorithm", "sampling", "inference") == "sampling")
    as.integer(config_value(m, "chains", 2L, "inference")) else 1L
}

#' Fit the candidate models a config's `model` section describes
#'
#' @param data training data.frame (see [configured_training_rows()] for `fit_subsample`).
#' @param spec feature spec.
#' @param model_config the config's `model` section (see [model_candidates()]).
#' @param chain NULL: every configured chain, up to `cores` at once (forked processes), combined per
#'   candidate; or one 1-based chain number (the job of rule `bayesian_chain`), seeded `seed + chain`.
#' @param cores chains fitted at once when `chain` is NULL.
#' @return a named list of fitted models, one per candidate of [model_candidates()] (one-chain fits when
#'   `chain` is given), class `bayeslift_candidates`; [choose_model()] turns it into one model.
#' @export
fit_candidates <- function(data, spec, model_config, chain = NULL, cores = 1L) {
  candidates <- model_candidates(model_config, outcome_type(spec))
  seed <- as.integer(config_value(model_config, "seed", 1L, "inference"))
  if (is.null(chain)) {
    n_chains <- configured_chains(model_config)
    chains <- parallel::mclapply(seq_len(n_chains), function(k) fit_candidates(data, spec, model_config, chain = k),
                                 mc.cores = max(1L, min(as.integer(cores), n_chains)))
    failed <- vapply(chains, inherits, logical(1), "try-error")
    if (any(failed)) stop("fit_candidates: chain ", which(failed)[1], " failed: ", chains[[which(failed)[1]]], call. = FALSE)
    return(combine_candidate_chains(chains))
  }
  if (!is.numeric(chain) || length(chain) != 1 || chain < 1) stop("fit_candidates: chain must be NULL or a positive whole number", call. = FALSE)
  fits <- lapply(candidates, function(args) do.call(fit_causal_model_chain, c(list(data, spec, chain_id = chain, seed = seed), args)))
  structure(fits, class = "bayeslift_candidates")
}

# Each candidate's chains combined: a list of one-chain bayeslift_candidates (one per chain) -> one
# bayeslift_candidates of multi-chain models.
combine_candidate_chains <- function(chains) {
  if (!length(chains) || !all(vapply(chains, inherits, logical(1), "bayeslift_candidates")))
    stop("combine_candidate_chains: chains must be fit_candidates() results, one per chain", call. = FALSE)
  nm <- names(Filter(function(x) inherits(x, "bayeslift_model"), chains[[1]]))  # not e.g. fit_seconds
  structure(stats::setNames(lapply(nm, function(k) combine_chain_fits(lapply(chains, `[[`, k))), nm),
            class = "bayeslift_candidates")
}

#' One model from the candidates: the only one, the one PSIS-LOO prefers, or their mixture
#'
#' @param candidates a `bayeslift_candidates` of multi-chain models ([fit_candidates()]), or a list of
#'   one-chain `bayeslift_candidates` (the pipeline's chain jobs), whose chains are combined first.
#' @param combine "pick" ([select_model_by_loo()]), or "stack" / "pseudo_bma" ([stack_models()] with
#'   [stack_weights_by_loo()]): the config's `model.combine`.
#' @return a fitted model, or a `bayeslift_stack`; with several candidates it has `selection` (method, chosen
#'   name or "stack", the LOO table, and for a mixture the weights).
#' @export
choose_model <- function(candidates, combine = "pick") {
  if (!is.character(combine) || length(combine) != 1 || !combine %in% AUTO_COMBINE)
    stop("choose_model: combine must be one of pick, stack, pseudo_bma", call. = FALSE)
  if (!inherits(candidates, "bayeslift_candidates")) candidates <- combine_candidate_chains(candidates)
  candidates <- Filter(function(x) inherits(x, "bayeslift_model"), unclass(candidates))
  if (length(candidates) == 1) return(candidates[[1]])
  sel <- select_model_by_loo(candidates)
  if (combine != "pick") {
    model <- stack_models(candidates, stack_weights_by_loo(sel$loos, combine))
    model$selection <- list(method = combine, chosen = "stack", weights = as.list(model$all_weights), table = sel$table)
    return(model)
  }
  model <- candidates[[sel$chosen]]
  model$selection <- list(method = "pick", chosen = sel$chosen, table = sel$table)
  model
}

#' Fit the model a config's `model` section describes, every chain in this process
#'
#' What the pipeline's rules `shape_choice`, `bayesian_chain` and `bayesian_model` do together: [choose_shape()]
#' (shape auto on a history larger than `effect$shape_subsample`), [fit_candidates()] then [choose_model()].
#' The interval calibration's refits and the benchmarks use it.
#'
#' @inheritParams fit_candidates
#' @return a fitted multi-chain model, or a `bayeslift_stack` (`combine: stack` / `pseudo_bma`).
#' @export
fit_configured_model <- function(data, spec, model_config, cores = 1L) {
  choice <- choose_shape(data, spec, model_config, cores = cores)
  m <- keep_candidate(model_config, choice$selection$chosen, "the shape choice on a subsample", shape_comparison(choice))
  model <- choose_model(fit_candidates(data, spec, m, cores = cores), config_value(m, "combine", "pick"))
  if (!is.null(m$kept)) model$selection <- kept_selection(m)
  model
}

#' The training rows a configured fit uses
#'
#' All of them, or the stratified subsample (arm x outcome > 0) of `model.inference.fit_subsample`, seeded
#' by `model.inference.seed`, so every chain job and the interval calibration get the same users.
#'
#' @param train training data.frame.
#' @param spec feature spec.
#' @param model_config the config's `model` section.
#' @return a data.frame: `train`, or `fit_subsample` of its rows in their order.
#' @export
configured_training_rows <- function(train, spec, model_config) {
  n <- model_config$inference$fit_subsample
  if (is.null(n) || n >= nrow(train)) return(train)
  message(sprintf("fitting on a stratified subsample of %d of %d users (model.inference.fit_subsample)", n, nrow(train)))
  stratified_subsample(train, spec, n, seed = config_value(model_config, "seed", 1L, "inference"))
}
