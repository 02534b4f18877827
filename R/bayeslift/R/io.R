# Files the pipeline's R steps read and write: the prepared splits, atomic writes (a temp file beside the
# target, then a rename, so a failed step leaves nothing half-written), and the entry scripts' log handling.

# Write through `writer(tmp)` to a temp file beside `path`, then rename it onto `path`.
write_atomic <- function(path, writer) {
  dir.create(dirname(path), recursive = TRUE, showWarnings = FALSE)
  tmp <- tempfile(pattern = paste0(".", basename(path), "."), tmpdir = dirname(path), fileext = ".tmp")
  on.exit(if (file.exists(tmp)) unlink(tmp), add = TRUE)
  writer(tmp)
  if (!file.rename(tmp, path)) stop("could not move ", tmp, " to ", path, call. = FALSE)
  invisible(path)
}

#' Write a data.frame as CSV, a list as JSON or any object as RDS, atomically
#'
#' The file is written beside `path` and renamed onto it, so a failed step leaves no half-written output.
#'
#' @param x a data.frame (`write_csv_atomic()`), a list (`write_json_atomic()`) or any R object (`save_rds_atomic()`).
#' @param path destination path.
#' @return `path`, invisibly.
#' @export
write_csv_atomic <- function(x, path) {
  if (!is.data.frame(x)) stop("write_csv_atomic: x must be a data.frame", call. = FALSE)
  write_atomic(path, function(tmp) data.table::fwrite(x, tmp, na = "", quote = "auto"))
}

#' @rdname write_csv_atomic
#' @export
write_json_atomic <- function(x, path) {
  write_atomic(path, function(tmp) {
    writeLines(jsonlite::toJSON(x, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), tmp)
  })
}

#' @rdname write_csv_atomic
#' @export
save_rds_atomic <- function(x, path) {
  write_atomic(path, function(tmp) saveRDS(x, tmp))
}

#' Read a prepared split (train or holdout) with categorical features as character
#'
#' @param path CSV written by the pipeline's `prepare` step (or any CSV with the spec's columns).
#' @param spec feature spec ([feature_spec()] or [read_feature_spec()]).
#' @return a data.frame, one row per user of the file.
#' @export
read_prepared <- function(path, spec) {
  if (!is.character(path) || length(path) != 1 || !file.exists(path))
    stop("read_prepared: no file at ", paste(path, collapse = ", "), call. = FALSE)
  classes <- stats::setNames(rep("character", length(spec$categorical)), spec$categorical)
  # Only an empty field is missing: prepare checked every value, and a category spelt "NA" is a category.
  as.data.frame(data.table::fread(path, colClasses = classes, na.strings = ""))
}

#' Run a Snakemake entry script's `main()` with its output in the rule's log
#'
#' Output and messages go to `log_path`; on error the message is written to the log and to stderr, and R
#' exits with status 1 (so Snakemake reports the rule as failed with the reason).
#'
#' @param main a function of no arguments.
#' @param log_path the rule's log file (`snakemake@log[[1]]`).
#' @return `main()`'s value, invisibly (R exits on error).
#' @export
run_entry <- function(main, log_path) {
  if (!is.function(main)) stop("run_entry: main must be a function", call. = FALSE)
  con <- file(log_path, open = "wt")
  sink(con)
  sink(con, type = "message")
  out <- tryCatch(main(), error = function(e) {
    message("ERROR: ", conditionMessage(e))
    sink(type = "message")
    sink()
    message("bayeslift error: ", conditionMessage(e))
    quit(save = "no", status = 1)
  })
  invisible(out)
}

#' Stop when the installed package is older than its sources
#'
#' `make install` records the md5 of every package source in the installed package (`SOURCES.md5`); the
#' Snakemake entry scripts pass the sources their rule depends on, so an edit that was not reinstalled
#' stops the rule instead of running the old code. A package installed without that record is not checked.
#'
#' @param sources paths of package sources (`R/bayeslift/R/*.R`).
#' @return TRUE invisibly when the installed package matches (or has no record); otherwise an error.
#' @export
check_installed_sources <- function(sources) {
  record <- system.file("SOURCES.md5", package = "bayeslift")
  if (!nzchar(record) || !length(sources)) return(invisible(TRUE))
  lines <- strsplit(trimws(readLines(record)), "[[:space:]]+")
  installed <- stats::setNames(vapply(lines, `[`, "", 1), vapply(lines, `[`, "", 2))
  sources <- unlist(sources)
  keys <- file.path(basename(dirname(sources)), basename(sources))
  now <- stats::setNames(unname(tools::md5sum(sources)), keys)
  stale <- keys[is.na(installed[keys]) | installed[keys] != now]
  if (length(stale))
    stop("the installed bayeslift package differs from R/bayeslift/", paste(stale, collapse = ", "),
         ": run `make install` (R CMD INSTALL) before running the pipeline", call. = FALSE)
  invisible(TRUE)
}
