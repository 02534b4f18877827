# Shape auto's choice, kept: PSIS-LOO compares the candidates (linear, flexible) once, on a stratified
# subsample of at most `model.effect.shape_subsample` users when the history is larger, and every later fit
# (the train split's chains, the delivered refit on every row, the interval calibration) fits only the kept one.

#' Choose shape auto's candidate on a capped stratified subsample
#'
#' With `effect$shape` "auto", `combine` "pick", a back-end that fits both candidates ([flexible_fits()]) and
#' more training rows than `effect$shape_subsample` (default 5,000), both candidates are fitted (every configured chain, up
#' to `cores` at once) on a stratified subsample ([stratified_subsample()], arm x outcome > 0) of that many
#' users and PSIS-LOO keeps one ([select_model_by_loo()]). The comparison costs a fixed time however large
#' the history; only the kept shape is then fitted on every row. Otherwise nothing is fitted and `chosen` is
#' NULL: the candidates are compared on the rows of the fit itself (a history within the cap), or there is
#' nothing to choose.
#'
#' @param train training data.frame (the rows the fit would use before [configured_training_rows()]).
#' @param spec feature spec.
#' @param model_config the config's `model` section ([model_candidates()]).
#' @param cores chains fitted at once.
#' @return a list: `selection` (`method` "pick", `chosen`: the kept candidate's name or NULL), `n_users` (the
#'   users compared on), `of_users` (the fit's rows), `table` (the LOO table, or NULL), `seconds`, `note`.
#' @export
choose_shape <- function(train, spec, model_config, cores = 1L) {
  rows <- configured_training_rows(train, spec, model_config)
  cap <- as.integer(config_value(model_config, "shape_subsample", DEFAULT_SHAPE_SUBSAMPLE, "effect"))
  n_candidates <- length(model_candidates(model_config, outcome_type(spec)))
  out <- list(selection = list(method = "pick", chosen = NULL), n_users = nrow(rows), of_users = nrow(rows),
              table = NULL, seconds = 0)
  if (n_candidates < 2 || config_value(model_config, "combine", "pick") != "pick") {
    out$note <- "nothing to choose: one candidate, or candidates mixed (model.combine) by the fit itself"
    return(out)
  }
  if (nrow(rows) <= cap) {
    out$note <- sprintf("%d users, within model.effect.shape_subsample (%d): the fit compares the candidates on all of them",
                        nrow(rows), cap)
    return(out)
  }
  sub <- stratified_subsample(rows, spec, cap, seed = config_value(model_config, "seed", 1L, "inference"))
  started <- Sys.time()
  model <- fit_configured_model(sub, spec, model_config, cores = cores)  # within the cap: both candidates, LOO
  out$seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
  out$selection$chosen <- model$selection$chosen
  out$n_users <- cap
  out$table <- model$selection$table
  out$note <- sprintf("PSIS-LOO on a stratified subsample of %d of the %d users kept '%s'", cap, nrow(rows),
                      out$selection$chosen)
  out
}

#' The model section that fits only one kept candidate of shape auto
#'
#' @param model_config the config's `model` section.
#' @param chosen the kept candidate's name ("default" or "flexible"), or NULL (nothing kept: returned as it is).
#' @param from where the choice was made, for messages and the record (`kept$from`).
#' @param compared NULL, or what the candidates were compared on ([choose_shape()]'s `table`, `n_users`,
#'   `of_users`): the fitted model's `selection` then shows it ([kept_selection()]).
#' @return `model_config`, with `effect$shape` the kept candidate's ("linear" or "flexible") and `kept`
#'   (`candidate`, `from`, `compared`) when something is kept; as it is for another shape or a mixture
#'   (`combine` other than "pick": every candidate is needed).
#' @export
keep_candidate <- function(model_config, chosen, from, compared = NULL) {
  if (is.null(chosen) || !identical(config_value(model_config, "shape", DEFAULT_SHAPE, "effect"), "auto") ||
      config_value(model_config, "combine", "pick") != "pick") return(model_config)
  shape <- c(default = "linear", flexible = "flexible")[chosen]
  if (is.na(shape))
    stop(from, ": selection$chosen is '", chosen, "', not a candidate of model: auto (default, flexible)", call. = FALSE)
  model_config$effect$shape <- unname(shape)
  model_config$kept <- c(list(candidate = chosen, from = from), if (!is.null(compared)) list(compared = compared))
  model_config
}

#' The `selection` of a model fitted from a kept candidate: the comparison the choice made
#'
#' @param model_config a [keep_candidate()] section.
#' @return list(method "pick", chosen, table, n_users, of_users) when the section records a comparison
#'   (`kept$compared`: a subsample choice), else NULL (e.g. the delivered refit, which kept the train fit's).
#' @export
kept_selection <- function(model_config) {
  k <- model_config$kept
  if (is.null(k$compared)) return(NULL)
  c(list(method = "pick", chosen = k$candidate), k$compared)
}

# What choose_shape() compared the candidates on, for keep_candidate(): NULL when it compared nothing.
shape_comparison <- function(choice) {
  if (is.null(choice$table)) NULL else choice[c("table", "n_users", "of_users")]
}

#' The model section of a pipeline fit: the kept candidate of an earlier choice
#'
#' The train split's chain jobs read rule `shape_choice`'s file, the delivered refit on every row
#' (`split.refit_all`) the train split's diagnostics.json: both record `selection$chosen`. The delivered model
#' thus has the shape the holdout evaluated, for the cost of one fit.
#'
#' @param model_config the config's `model` section.
#' @param choice path of a JSON file with `selection$chosen` (rule `shape_choice`'s output or rule
#'   `bayesian_model`'s diagnostics), or NULL.
#' @return [keep_candidate()]'s value; `model_config` itself when there is no file or it keeps nothing.
#' @export
kept_model_config <- function(model_config, choice = NULL) {
  if (is.null(choice)) return(model_config)
  record <- jsonlite::read_json(choice, simplifyVector = TRUE)
  keep_candidate(model_config, record$selection$chosen, choice, shape_comparison(record))
}
