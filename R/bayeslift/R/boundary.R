# Checks for the tables R hands to Python, against the declaration in python/bayeslift/boundary.yaml.
# python/bayeslift/boundary.py implements the same rules; tests feed both the same bad files.

# Declared columns of a boundary table (e.g. "surrogate_labels"), with `id`, `features`, `arm` and `per_arm`
# resolved against the spec: a list of column declarations (name, type, optional allowed/min/max).
boundary_columns <- function(table, spec, schema_path) {
  schema <- yaml::read_yaml(schema_path)
  out <- list()
  add <- function(col) out[[length(out) + 1]] <<- col[setdiff(names(col), "per_arm")]
  arms <- if (n_campaign_arms(spec) > 1) arm_names(spec) else character(0)
  per_arm <- Filter(function(col) !is.null(col$per_arm), schema$tables[[table]]$columns)
  for (col in schema$tables[[table]]$columns) {
    if (!is.null(col$per_arm)) {
      if (!length(arms)) add(col)
      else if (identical(col, per_arm[[1]]))  # the arms' sets, one after another, where the first stood
        for (a in arms) for (p in per_arm) add(utils::modifyList(p, list(name = gsub("{arm}", a, p$per_arm, fixed = TRUE))))
    } else if (col$type == "expected_outcome") {
      add(c(list(name = col$name, type = "number"), schema$outcome_bounds[[outcome_type(spec)]]))
    } else if (col$type == "features") {
      for (f in spec$numeric) add(list(name = f, type = "number"))
      for (f in spec$categorical) add(list(name = f, type = "string", allowed = spec$levels[[f]]))
    } else if (col$type == "arm") {
      add(list(name = col$name, type = "integer", allowed = 0:n_campaign_arms(spec)))
    } else {
      if (col$type == "id") col$name <- spec$id
      add(col)
    }
  }
  out
}

# "lines 2, 5, 9 and 3 more" for a logical vector over data rows (header is line 1).
boundary_lines <- function(mask) {
  idx <- which(mask) + 1L
  shown <- paste(utils::head(idx, 5), collapse = ", ")
  more <- if (length(idx) > 5) sprintf(" and %d more", length(idx) - 5) else ""
  sprintf("line%s %s%s", if (length(idx) > 1) "s" else "", shown, more)
}

#' Stop with a message naming file, column and lines if a table breaks its declaration
#'
#' The declaration is `python/bayeslift/boundary.yaml`; `bayeslift/boundary.py` checks the same rules.
#'
#' @param frame a data.frame.
#' @param table table name in the schema.
#' @param spec feature spec.
#' @param source file name used in messages.
#' @param schema_path path of boundary.yaml.
#' @return `frame`, invisibly.
#' @export
check_boundary_table <- function(frame, table, spec, source, schema_path) {
  cols <- boundary_columns(table, spec, schema_path)
  want <- vapply(cols, function(c) c$name, character(1))
  if (!identical(names(frame), want))
    stop(sprintf("%s: columns must be [%s] (table %s); found [%s]", source, paste(want, collapse = ", "),
                 table, paste(names(frame), collapse = ", ")), call. = FALSE)
  for (col in cols) {
    v <- frame[[col$name]]
    fail <- function(problem, mask) stop(sprintf("%s: column '%s' %s at %s", source, col$name, problem, boundary_lines(mask)), call. = FALSE)
    if (any(is.na(v) | (is.character(v) & v == ""))) fail("has missing values", is.na(v) | (is.character(v) & v == ""))
    if (col$type %in% c("number", "integer")) {
      num <- suppressWarnings(as.numeric(v))
      bad <- is.na(num) | !is.finite(num)
      if (col$type == "integer") bad <- bad | (!bad & num %% 1 != 0)
      if (any(bad)) fail(sprintf("must be a finite %s", col$type), bad)
      if (!is.null(col$min) && any(num < col$min)) fail(sprintf("must be >= %s", col$min), num < col$min)
      if (!is.null(col$max) && any(num > col$max)) fail(sprintf("must be <= %s", col$max), num > col$max)
      v <- num
    }
    if (!is.null(col$allowed)) {
      outside <- !(as.character(v) %in% as.character(col$allowed))
      if (any(outside)) fail(sprintf("must be one of [%s]", paste(col$allowed, collapse = ", ")), outside)
    }
  }
  invisible(frame)
}
