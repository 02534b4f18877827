# Right-hand sides and formulas of the causal model: the treatment interacts with every feature (linear,
# or through splines with `flexible`), so the effect may differ per user.

OPTION_ARM <- "bl_arm"          # factor version of the treatment (brms `s(x, by = bl_arm)`)
OPTION_PSCORE <- "bl_pscore"    # logit of the estimated propensity score, a model covariate

# Numeric features worth a spline: at least `min_unique` distinct values (binary flags stay linear).
spline_features <- function(data, spec, min_unique = 6L) {
  Filter(function(col) length(unique(data[[col]])) >= min_unique, spec$numeric)
}

# Linear right-hand side, "campaign * (past_spend + recency + channel + extra)"; without the treatment when
# `effect` is FALSE (the no-effect model a stack can weigh against the others).
linear_rhs <- function(spec, extra = character(0), effect = TRUE) {
  features <- paste(c(spec$numeric, spec$categorical, extra), collapse = " + ")
  if (!effect) return(features)
  sprintf("%s * (%s)", spec$treatment, features)
}

# Right-hand side with flexible terms for rstanarm: natural cubic splines with knots fixed at training
# quantiles of the model-scale `data` (df - 1 interior knots), each interacting with the treatment, so the
# effect varies smoothly with every feature; `extra` covariates enter linearly.
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

# brms formula with penalized splines: a smooth per arm for every numeric feature (`s(x, by = bl_arm)`; `by`
# must be a factor for separate, centred smooths of basis dimension k), the arm main effect, and the arm
# interacting linearly with binary and categorical features and `extra`, in both parts.
flexible_brms_formula <- function(data, spec, k = 5L, extra = character(0)) {
  smooth <- spline_features(data, spec)
  linear <- c(setdiff(spec$numeric, smooth), spec$categorical, extra)
  rhs <- paste(c(OPTION_ARM, sprintf("s(%s, by = %s, k = %d)", smooth, OPTION_ARM, as.integer(k)),
                 if (length(linear)) sprintf("%s * (%s)", OPTION_ARM, paste(linear, collapse = " + "))),
               collapse = " + ")
  brms::bf(stats::as.formula(paste(spec$outcome, "~", rhs)), stats::as.formula(paste("hu ~", rhs)))
}

# brms formula of one right-hand side: both parts of the hurdle for spend, one formula otherwise.
brms_formula <- function(spec, rhs) {
  if (outcome_type(spec) != "spend") return(brms::bf(stats::as.formula(paste(spec$outcome, "~", rhs))))
  brms::bf(stats::as.formula(paste(spec$outcome, "~", rhs)), stats::as.formula(paste("hu ~", rhs)))
}
