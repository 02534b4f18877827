# Design matrices of the hierarchical Stan model (backend_stan.R). A recipe is learned on one part's training
# users (every user for the purchase part, buyers for the amount part) and applied to any users, so training
# and prediction build the same columns:
# - baseline X: the features' dummy-coded model matrix (numeric features come scaled from model_frame()),
#   each column standardized;
# - effect Z: the same columns, kept only where the treated users support them (see design_recipe()), centred
#   on the part's users so the arm's coefficient is the average effect, and standardized;
# - smooth deviations B (baseline) and S (effect): a natural-spline basis of each numeric feature with at
#   least 6 distinct values, with its linear trend removed (the linear column carries it), standardized.

SMOOTH_MIN_UNIQUE <- 6L

# Dummy-coded feature columns of `d` (no intercept, treatment contrasts on the training levels).
feature_matrix <- function(d, spec, extra) {
  cols <- c(spec$numeric, spec$categorical, extra)
  f <- stats::as.formula(paste("~", paste(cols, collapse = " + ")))
  mm <- stats::model.matrix(f, d)
  mm[, colnames(mm) != "(Intercept)", drop = FALSE]
}

# Standardize columns with a stored centre and scale (scale 1 for a constant column).
standardize <- function(m, center, scale) sweep(sweep(m, 2, center, "-"), 2, scale, "/")

column_scale <- function(m) {
  s <- apply(m, 2, stats::sd)
  s[!is.finite(s) | s < 1e-12] <- 1
  s
}

# Natural-spline basis of `x` with its linear trend removed by the training fit `detrend` (2 x df).
smooth_basis <- function(x, term) {
  b <- splines::ns(x, knots = term$knots, Boundary.knots = term$boundary)
  b - cbind(1, x) %*% term$detrend
}

# Columns of `m` that carry information beyond the ones before them among `rows` (pivoted QR): a column
# constant there, or a combination of earlier columns, gives the model nothing to learn from and would leave
# its coefficient trading off against others.
supported_columns <- function(m, rows, tol = 1e-7) {
  if (!ncol(m)) return(logical(0))
  sub <- cbind(1, scale(m[rows, , drop = FALSE], scale = FALSE))
  q <- qr(sub, tol = tol)
  keep <- logical(ncol(sub))
  keep[q$pivot[seq_len(q$rank)]] <- TRUE
  keep[-1]
}

#' The design recipe of one part of the hierarchical Stan model
#'
#' Effect columns are kept only where the treated users support them: a column constant among the treated
#' (a rare binary no treated user has) or collinear with earlier columns there is dropped from the effect
#' and named in `dropped`. Binary columns also need `min_support` treated users on each side.
#'
#' @param d the part's training users on the model's scale (model_frame(), option covariates added).
#' @param spec feature spec; `extra` names of option covariates (numeric, linear).
#' @param treated logical vector: treated users of `d`.
#' @param flexible smooth terms for numeric features; `spline_df` their basis size.
#' @param min_support binary effect columns need this many treated users with each value.
#' @return a list used by [design_matrices()]: column names and scales, smooth terms, and `dropped` (a named
#'   character vector: column -> reason).
#' @keywords internal
design_recipe <- function(d, spec, extra, treated, flexible, spline_df = 3L, min_support = 5L) {
  x <- feature_matrix(d, spec, extra)
  keep_x <- supported_columns(x, rep(TRUE, nrow(x)))
  dropped <- stats::setNames(rep("constant or collinear among all users", sum(!keep_x)), colnames(x)[!keep_x])
  x <- x[, keep_x, drop = FALSE]
  recipe <- list(spec = spec, extra = extra, x_cols = colnames(x), x_center = colMeans(x), x_scale = column_scale(x))
  z_ok <- supported_columns(x, treated)
  binary <- apply(x, 2, function(v) all(v %in% c(0, 1)))
  thin <- binary & (colSums(x[treated, , drop = FALSE]) < min_support | colSums(1 - x[treated, , drop = FALSE]) < min_support)
  why <- ifelse(!z_ok, "constant or collinear among the treated users",
                sprintf("fewer than %d treated users on one side", as.integer(min_support)))
  out <- !z_ok | thin
  if (any(out)) dropped <- c(dropped, stats::setNames(paste("effect:", why[out]), colnames(x)[out]))
  recipe$z_cols <- colnames(x)[z_ok & !thin]
  recipe$smooth <- list()
  if (flexible) {
    for (col in Filter(function(col) length(unique(d[[col]])) >= SMOOTH_MIN_UNIQUE, spec$numeric)) {
      v <- d[[col]]
      term <- list(knots = unique(stats::quantile(v, probs = seq_len(spline_df - 1L) / spline_df, names = FALSE)),
                   boundary = range(v))
      b <- splines::ns(v, knots = term$knots, Boundary.knots = term$boundary)
      term$detrend <- qr.coef(qr(cbind(1, v)), b)
      recipe$smooth[[col]] <- term
    }
  }
  raw <- design_raw(recipe, d)
  recipe$b_scale <- column_scale(raw$B)
  recipe$z_center <- colMeans(raw$Z)
  recipe$z_scale <- column_scale(raw$Z)
  recipe$s_center <- colMeans(raw$B)
  recipe$dropped <- dropped
  recipe
}

# Unstandardized feature and smooth columns of `d` under `recipe`.
design_raw <- function(recipe, d) {
  x <- feature_matrix(d, recipe$spec, recipe$extra)
  missing <- setdiff(recipe$x_cols, colnames(x))
  if (length(missing)) stop("design_matrices: users lack design column(s) ", paste(missing, collapse = ", "), call. = FALSE)
  x <- x[, recipe$x_cols, drop = FALSE]
  smooth <- lapply(names(recipe$smooth), function(col) {
    b <- smooth_basis(d[[col]], recipe$smooth[[col]])
    colnames(b) <- sprintf("s(%s)%d", col, seq_len(ncol(b)))
    b
  })
  B <- if (length(smooth)) do.call(cbind, smooth) else matrix(0, nrow(d), 0)
  list(X = x, Z = x[, recipe$z_cols, drop = FALSE], B = B)
}

#' Design matrices of users under a recipe
#'
#' @param recipe from [design_recipe()].
#' @param d users on the model's scale.
#' @return list(X, B, Z, S): baseline linear and smooth columns, effect linear and smooth columns (not yet
#'   multiplied by the arm), each standardized with the training users' centre and scale.
#' @keywords internal
design_matrices <- function(recipe, d) {
  raw <- design_raw(recipe, d)
  list(X = standardize(raw$X, recipe$x_center, recipe$x_scale),
       B = standardize(raw$B, rep(0, ncol(raw$B)), recipe$b_scale),
       Z = standardize(raw$Z, recipe$z_center, recipe$z_scale),
       S = standardize(raw$B, recipe$s_center, recipe$b_scale))
}
