# The feature spec: which columns are the id, treatment, outcome and features, and how features are
# put on the model's scale. Python's `prepare` writes it as feature_spec.json; R users build it here.

OUTCOME_TYPES <- c("spend", "binary", "gaussian")

#' Build a feature spec in R
#'
#' The same fields as the `feature_spec.json` that the pipeline's `prepare` step writes, so a data.frame
#' can be modelled without the Python side.
#'
#' @param id,treatment,outcome column names (one string each).
#' @param numeric,categorical feature columns (character vectors; may be empty).
#' @param log1p numeric features modelled on the log1p scale (a subset of `numeric`).
#' @param outcome_type "spend" (>= 0, hurdle model), "binary" (0/1) or "gaussian".
#' @param levels a named list of the levels of each categorical feature; NULL takes them from `data`.
#' @param arms the campaign arms' level names, in the order of their index 1..K in the treatment column (0 is
#'   the control arm); `character(0)` (the default) is one campaign arm coded 1, as `columns.control: null`.
#' @param data optional data.frame: its columns are checked and, when `levels` is NULL, the sorted distinct
#'   values of each categorical feature are its levels.
#' @return a list with `id`, `treatment`, `outcome`, `outcome_type` (strings), `numeric`, `categorical`,
#'   `log1p` (character vectors), `levels` (a named list of character vectors, one per categorical feature)
#'   and `arms` (character).
#' @examples
#' history <- data.frame(customer_id = 1:4, campaign = c(0, 1, 0, 1), spend = c(0, 3.5, 1, 0),
#'                       recency = c(1, 5, 2, 7), channel = c("web", "phone", "web", "web"))
#' spec <- feature_spec(id = "customer_id", treatment = "campaign", outcome = "spend",
#'                      numeric = "recency", categorical = "channel", data = history)
#' spec$levels
#' @export
feature_spec <- function(id, treatment, outcome, numeric = character(0), categorical = character(0),
                         log1p = character(0), outcome_type = "spend", levels = NULL, data = NULL,
                         arms = character(0)) {
  for (arg in c("id", "treatment", "outcome", "outcome_type")) {
    v <- get(arg)
    if (!is.character(v) || length(v) != 1 || is.na(v) || !nzchar(v))
      stop(sprintf("feature_spec: %s must be one non-empty string", arg), call. = FALSE)
  }
  for (arg in c("numeric", "categorical", "log1p", "arms")) {
    v <- get(arg)
    if (!is.character(v) || anyNA(v)) stop(sprintf("feature_spec: %s must be a character vector", arg), call. = FALSE)
  }
  if (!outcome_type %in% OUTCOME_TYPES)
    stop(sprintf("feature_spec: outcome_type must be one of %s, not '%s'", paste(OUTCOME_TYPES, collapse = ", "),
                 outcome_type), call. = FALSE)
  columns <- c(id, treatment, outcome, numeric, categorical)
  if (anyDuplicated(columns))
    stop("feature_spec: a column is named twice: ", paste(unique(columns[duplicated(columns)]), collapse = ", "), call. = FALSE)
  if (anyDuplicated(arm_slug(arms)) || any(!nzchar(arm_slug(arms))))
    stop("feature_spec: arms must have distinct names of letters or digits: ", paste(arms, collapse = ", "), call. = FALSE)
  if (!length(c(numeric, categorical))) stop("feature_spec: give at least one numeric or categorical feature", call. = FALSE)
  if (length(setdiff(log1p, numeric)))
    stop("feature_spec: log1p lists columns that are not numeric features: ", paste(setdiff(log1p, numeric), collapse = ", "),
         call. = FALSE)
  if (!is.null(data)) {
    if (!is.data.frame(data)) stop("feature_spec: data must be a data.frame", call. = FALSE)
    absent <- setdiff(columns, names(data))
    if (length(absent)) stop("feature_spec: data lacks column(s) ", paste(absent, collapse = ", "), call. = FALSE)
  }
  if (is.null(levels)) {
    if (length(categorical) && is.null(data))
      stop("feature_spec: give `levels` or `data` to learn the categorical features' levels", call. = FALSE)
    levels <- lapply(stats::setNames(categorical, categorical), function(col) sort(unique(as.character(data[[col]]))))
  }
  if (!is.list(levels) || length(setdiff(categorical, names(levels))))
    stop("feature_spec: levels must be a named list with an entry per categorical feature", call. = FALSE)
  list(id = id, treatment = treatment, outcome = outcome, outcome_type = outcome_type, numeric = numeric,
       categorical = categorical, log1p = log1p, levels = lapply(levels[categorical], as.character), arms = arms)
}

#' Read the feature spec that the Python `prepare` step wrote
#'
#' @param path path of feature_spec.json.
#' @return a list as [feature_spec()] returns: id, treatment, outcome, outcome_type (strings), numeric,
#'   categorical, log1p, arms (character vectors; arms empty in specs of one 0/1 arm) and levels (a named list
#'   of character vectors); `control` when the spec has it.
#' @export
read_feature_spec <- function(path) {
  if (!is.character(path) || length(path) != 1 || !file.exists(path))
    stop("read_feature_spec: no feature spec at ", paste(path, collapse = ", "), call. = FALSE)
  spec <- jsonlite::fromJSON(path, simplifyVector = TRUE)
  for (key in c("numeric", "categorical", "log1p", "arms")) spec[[key]] <- as.character(unlist(spec[[key]]))
  spec$levels <- lapply(spec$levels, as.character)
  if (is.null(spec$outcome_type)) spec$outcome_type <- "spend"  # specs written before outcome types
  spec
}

# The outcome type of a feature spec: "spend" (the default), "binary" or "gaussian".
outcome_type <- function(spec) {
  if (is.null(spec$outcome_type)) "spend" else spec$outcome_type
}

# The campaign arms' level names of a spec (arm index 1..K); empty for the 0/1 coding of one arm.
spec_arms <- function(spec) as.character(unlist(spec$arms))

# K, the number of campaign arms (the control arm not counted).
n_campaign_arms <- function(spec) max(1L, length(spec_arms(spec)))

# Column suffix of an arm level, as python/bayeslift/arms.py arm_slug(): lower case, runs of other characters
# "_", no "_" at either end.
arm_slug <- function(level) gsub("^_+|_+$", "", gsub("[^a-z0-9]+", "_", tolower(level)))

# Indicator matrix (users x K) of arm index `treatment` (0 = control) being each campaign arm.
arm_indicators <- function(treatment, n_arms) {
  outer(as.integer(treatment), seq_len(n_arms), "==") * 1
}

# Stop unless `data` can train a model of `spec`: a data.frame with the columns, treatment an arm index
# (0/1, or 0..K with K campaign arms), and an outcome of the spec's type.
check_training_data <- function(data, spec, caller) {
  if (!is.data.frame(data)) stop(caller, ": data must be a data.frame", call. = FALSE)
  if (!is.list(spec) || is.null(spec$treatment) || is.null(spec$outcome))
    stop(caller, ": spec must be a feature spec (feature_spec() or read_feature_spec())", call. = FALSE)
  absent <- setdiff(c(spec$treatment, spec$outcome, spec$numeric, spec$categorical), names(data))
  if (length(absent)) stop(caller, ": data lacks column(s) ", paste(absent, collapse = ", "), call. = FALSE)
  type <- outcome_type(spec)
  y <- data[[spec$outcome]]
  arms <- 0:n_campaign_arms(spec)
  if (!all(data[[spec$treatment]] %in% arms))
    stop(caller, ": treatment must be ", if (length(arms) == 2) "0/1" else sprintf("an arm index 0..%d", max(arms)), call. = FALSE)
  if (!type %in% OUTCOME_TYPES)
    stop(caller, ": outcome_type must be spend, binary or gaussian, not '", type, "'", call. = FALSE)
  if (!is.numeric(y) || anyNA(y)) stop(caller, ": the outcome must be numeric with no missing values", call. = FALSE)
  if (type == "spend" && any(y < 0)) stop(caller, ": outcome must be >= 0", call. = FALSE)
  if (type == "binary" && !all(y %in% c(0, 1))) stop(caller, ": a binary outcome must be 0/1", call. = FALSE)
  invisible(data)
}

# Put a data.frame on the model's scale: numeric features in `spec$log1p` are log1p-transformed, then every
# numeric feature is centred and scaled with `scaling` (from `data` when NULL); categorical features become
# factors with the training levels. Returns list(data = the transformed data.frame, scaling = list(center, scale)).
model_frame <- function(data, spec, scaling = NULL) {
  missing <- setdiff(c(spec$numeric, spec$categorical), names(data))
  if (length(missing)) stop("model_frame: data lacks feature column(s) ", paste(missing, collapse = ", "), call. = FALSE)
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
    if (length(unseen))
      stop("model_frame: column '", col, "' has levels not seen in training: ", paste(unseen, collapse = ", "), call. = FALSE)
    out[[col]] <- factor(as.character(data[[col]]), levels = spec$levels[[col]])
  }
  list(data = out, scaling = scaling)
}

# Users on a fitted model's scale: features scaled as in training, plus the covariates the model's options
# derive (add_option_covariates(), propensity.R).
model_newdata <- function(model, newdata) add_option_covariates(model, model_frame(newdata, model$spec, model$scaling)$data)
