# File helpers shared by the R entry scripts: atomic writes and the feature spec written by `prepare`.

# Write through `writer(tmp)` to a temp file beside `path`, then rename it onto `path`.
write_atomic <- function(path, writer) {
  dir.create(dirname(path), recursive = TRUE, showWarnings = FALSE)
  tmp <- tempfile(pattern = paste0(".", basename(path), "."), tmpdir = dirname(path), fileext = ".tmp")
  on.exit(if (file.exists(tmp)) unlink(tmp), add = TRUE)
  writer(tmp)
  if (!file.rename(tmp, path)) stop("could not move ", tmp, " to ", path)
  invisible(path)
}

#' Write a data.frame as CSV atomically (temp file beside the target, then rename).
#'
#' @param frame a data.frame.
#' @param path destination path.
#' @return `path`, invisibly.
write_csv_atomic <- function(frame, path) {
  write_atomic(path, function(tmp) data.table::fwrite(frame, tmp, na = "", quote = "auto"))
}

#' Write an R object as JSON atomically.
#'
#' @param x a list.
#' @param path destination path.
#' @return `path`, invisibly.
write_json_atomic <- function(x, path) {
  write_atomic(path, function(tmp) {
    writeLines(jsonlite::toJSON(x, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), tmp)
  })
}

#' Save an R object as RDS atomically.
#'
#' @param x any R object.
#' @param path destination path.
#' @return `path`, invisibly.
save_rds_atomic <- function(x, path) {
  write_atomic(path, function(tmp) saveRDS(x, tmp))
}

#' Read the feature spec that the Python `prepare` step wrote.
#'
#' @param path path of feature_spec.json.
#' @return a list with id, treatment, outcome, numeric, categorical, log1p (character vectors) and
#'   levels (a named list of character vectors, one per categorical feature).
read_feature_spec <- function(path) {
  spec <- jsonlite::fromJSON(path, simplifyVector = TRUE)
  for (key in c("numeric", "categorical", "log1p")) spec[[key]] <- as.character(unlist(spec[[key]]))
  spec$levels <- lapply(spec$levels, as.character)
  if (is.null(spec$outcome_type)) spec$outcome_type <- "spend"  # specs written before outcome types
  spec
}

#' Read a prepared split (train or holdout) with categorical features as character.
#'
#' @param path CSV written by `prepare`.
#' @param spec feature spec from `read_feature_spec()`.
#' @return a data.frame.
read_prepared <- function(path, spec) {
  classes <- setNames(rep("character", length(spec$categorical)), spec$categorical)
  as.data.frame(data.table::fread(path, colClasses = classes))
}

# Send output and messages of an entry script to the rule's log file.
sink_to_log <- function(log_path) {
  con <- file(log_path, open = "wt")
  sink(con)
  sink(con, type = "message")
  invisible(con)
}

# Run an entry script's main(); on error, say why on stderr as well as in the log, and exit 1.
run_entry <- function(main) {
  tryCatch(main(), error = function(e) {
    message("ERROR: ", conditionMessage(e))
    sink(type = "message")
    sink()
    message("bayeslift error: ", conditionMessage(e))
    quit(save = "no", status = 1)
  })
}
