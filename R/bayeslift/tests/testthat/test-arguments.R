# Argument checks of the public functions: each stops before any fit with a message naming the problem.

test_that("fit_causal_model checks its data and arguments before fitting", {
  spec <- test_spec()
  bad <- test_users
  bad$campaign[1] <- 2
  expect_error(fit_causal_model(bad, spec), "fit_causal_model: treatment must be 0/1")
  bad <- test_users
  bad$spend[1] <- -1
  expect_error(fit_causal_model(bad, spec), "fit_causal_model: outcome must be >= 0")
  expect_error(fit_causal_model(test_users, test_spec("margin", "binary")), "a binary outcome must be 0/1")
  expect_error(fit_causal_model(test_users[, -2], spec), "data lacks column\\(s\\) campaign")
  expect_error(fit_causal_model(as.list(test_users), spec), "data must be a data.frame")
  expect_error(fit_causal_model(test_users, spec, backend = "lightgbm"), "backend must be one of stan, rstanarm, bcf, brms, not 'lightgbm'")
  expect_error(fit_causal_model(test_users, spec, shrinkage = "lasso"), "shrinkage must be one of none, horseshoe, normal")
  expect_error(fit_causal_model(test_users, spec, algorithm = "laplace"), "algorithm must be sampling, meanfield or fullrank")
  expect_error(fit_causal_model(test_users, spec, chains = 0), "chains must be a positive whole number")
  expect_error(fit_causal_model(test_users, spec, iter = 10.5), "iter must be a positive whole number")
  expect_error(fit_causal_model(test_users, spec, flexible = "yes"), "flexible must be TRUE or FALSE")
  expect_error(fit_causal_model(test_users, spec, adapt_delta = 1), "adapt_delta must be a number in \\(0, 1\\)")
  expect_error(fit_causal_model(test_users, spec, shrinkage_scale = -1), "shrinkage_scale must be NULL or one number > 0")
  expect_error(fit_causal_model(test_users, spec, effect = FALSE, flexible = TRUE), "effect = FALSE is the plain no-effect model")
  expect_error(fit_causal_model(test_users, spec, formula = "spend ~ campaign"), "arguments of backend \"brms\"")
})

test_that("brms refuses what it cannot fit before compiling anything", {
  expect_error(fit_causal_model(test_users, test_spec("visit", "binary"), backend = "brms", flexible = TRUE),
               "implemented for spend only")
  expect_error(fit_causal_model(test_users, test_spec(), backend = "brms", flexible = TRUE, shrinkage = "horseshoe"),
               "does not allow the horseshoe prior together with s\\(\\) terms")
})

test_that("the other public functions check their arguments", {
  expect_error(expected_outcome(list(), "users"), "newdata must be a data.frame")
  expect_error(counterfactual_draws(list(), "users"), "users must be a data.frame")
  expect_error(export_counterfactuals(list(spec = test_spec()), test_users, margin = 0), "margin must be one number > 0")
  expect_error(export_counterfactuals(list(spec = test_spec()), test_users), "users must be a data.frame with a split column")
  expect_error(diagnostic_problems(list()), "diagnostics must be model_diagnostics\\(\\)'s result")
  expect_error(combine_chain_fits(list()), "no chains to combine")
  expect_error(choose_model(list(), "best"), "combine must be one of pick, stack, pseudo_bma")
  expect_error(select_model_by_loo(list(1, 2)), "name every candidate")
  expect_error(stack_weights_by_loo(list(1, 2)), "name every candidate")
  expect_error(stack_models(list(a = 1), c(b = 1)), "one weight per named candidate")
  expect_error(calibrate_uplift_intervals(list(), test_users, identity, level = 0.8), "level must be 0.9")
  expect_error(calibrate_uplift_intervals(list(), test_users, "refit"), "refit must be a function")
  expect_error(fit_candidates(test_users, test_spec(), list(), chain = 0), "chain must be NULL or a positive whole number")
  expect_error(read_prepared(file.path(tempdir(), "absent.csv"), test_spec()), "read_prepared: no file at")
  expect_error(write_csv_atomic(list(a = 1), tempfile()), "x must be a data.frame")
  expect_error(check_convergence(list(), "strict"), "thresholds must be a list")
  expect_error(run_entry("main", tempfile()), "main must be a function")
  expect_error(stratified_subsample(test_users, test_spec(), 0), "n must be a positive integer")
})
