test_that("the linear model interacts the treatment with every feature, the no-effect model has none", {
  spec <- test_spec()
  expect_equal(linear_rhs(spec), "campaign * (recency + past_spend + is_new + channel)")
  expect_equal(linear_rhs(spec, extra = "bl_pscore"), "campaign * (recency + past_spend + is_new + channel + bl_pscore)")
  expect_equal(linear_rhs(spec, effect = FALSE), "recency + past_spend + is_new + channel")
})

test_that("flexible terms are splines of the features with enough distinct values, knots fixed", {
  spec <- test_spec()
  d <- model_frame(test_users, spec)$data
  expect_equal(spline_features(d, spec), c("recency", "past_spend"))  # is_new is a flag: linear
  rhs <- flexible_rhs(d, spec, df = 4)
  expect_match(rhs, "^campaign \\* \\(splines::ns\\(recency, knots = c\\([^)]*\\), Boundary.knots")
  knots <- regmatches(rhs, regexpr("knots = c\\([^)]*\\)", rhs))
  expect_equal(length(strsplit(knots, ",")[[1]]), 3)  # df - 1 interior knots
  expect_match(rhs, "is_new \\+ channel\\)$")
})

test_that("brms formulas: both hurdle parts for spend, one formula otherwise; smooths per arm", {
  spec <- test_spec()
  f <- brms_formula(spec, linear_rhs(spec))
  expect_equal(names(f$pforms), "hu")
  expect_length(brms_formula(test_spec("visit", "binary"), linear_rhs(spec))$pforms, 0)
  flex <- flexible_brms_formula(model_frame(test_users, spec)$data, spec, k = 4)
  expect_match(deparse1(flex$formula), "s(recency, by = bl_arm, k = 4)", fixed = TRUE)
  expect_equal(class(brms_family(spec))[1], "brmsfamily")
  expect_equal(brms_family(test_spec("margin", "gaussian"))$family, "gaussian")
})

test_that("shrinkage priors: none is the back-end default, normal shrinks interactions only", {
  spec <- test_spec()
  d <- model_frame(test_users, spec)$data
  f <- stats::as.formula(paste("spend ~", linear_rhs(spec)))
  expect_null(rstanarm_shrinkage_prior("none", f, d))
  p <- rstanarm_shrinkage_prior("normal", f, d, interaction_scale = 0.1)
  cols <- setdiff(colnames(stats::model.matrix(f, d)), "(Intercept)")
  expect_equal(p$scale, ifelse(grepl(":", cols, fixed = TRUE), 0.1, 2.5))
  expect_equal(rstanarm_shrinkage_prior("horseshoe", f, d)$dist, "hs")
  expect_error(rstanarm_shrinkage_prior("lasso", f, d), "unknown shrinkage 'lasso'")
  expect_null(brms_shrinkage_prior("none"))
  expect_equal(nrow(brms_shrinkage_prior("normal", interaction_scale = 0.5)), 2)  # spend part and hu
})

test_that("the propensity model predicts new rows as it fitted the training rows", {
  spec <- test_spec()
  d <- model_frame(test_users, spec)$data
  ps <- fit_propensity(d, spec)
  expect_equal(predict_propensity(ps, d), ps$fitted, tolerance = 1e-10)
  overlap <- propensity_overlap(ps$fitted, d$campaign, warn = FALSE)
  expect_equal(overlap$treated$n + overlap$control$n, nrow(d))
  warned <- capture_warnings(propensity_overlap(c(0.01, 0.02, 0.9, 0.99), c(0, 0, 1, 1)))
  expect_match(warned, "^propensity overlap: ", all = TRUE)
})
