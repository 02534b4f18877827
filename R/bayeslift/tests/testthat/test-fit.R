# Tiny cached fits (helper-fits.R): the shapes every caller relies on, per back-end class.

test_that("expected_outcome is a draws x users matrix for every fitted class", {
  users <- test_users[1:7, ]
  for (model in list(hurdle_fit(), binary_fit(), gaussian_fit(), stack_fit())) {
    e <- expected_outcome(model, users)
    expect_equal(dim(e), c(model_n_draws(model), 7))
  }
  expect_equal(model_n_draws(hurdle_fit()), 100)
  expect_true(all(expected_outcome(binary_fit(), users) <= 1))
  expect_true(all(expected_outcome(hurdle_fit(), users) >= 0))
  expect_equal(model_n_users(hurdle_fit()), nrow(test_users))
  expect_equal(model_n_users(stack_fit()), nrow(test_users))
})

test_that("the no-effect model has no uplift; a stack mixes draws by weight", {
  d <- counterfactual_draws(no_effect_fit(), test_users[1:5, ])
  expect_equal(d$treated, d$control)
  rows <- lengths(stack_draw_rows(100, c(0.3, 0.7), c(100, 100)))
  expect_equal(rows, c(30, 70))
  expect_equal(model_n_draws(stack_fit()), 100)
})

test_that("counterfactual tables: two rows per user in the boundary schema's order, one uplift row per user", {
  model <- hurdle_fit()
  users <- test_users[1:25, ]
  users$split <- rep(c("train", "holdout"), length.out = 25)
  out <- export_counterfactuals(model, users, chunk_size = 10)
  spec <- model$spec
  expect_equal(dim(out$train_data), c(50, 3 + length(spec$numeric) + length(spec$categorical)))
  expect_equal(names(out$labels), c("customer_id", "received_campaign", "spend_mean", "spend_median", "spend_q05", "spend_q95"))
  expect_equal(out$labels$received_campaign, rep(c(1L, 0L), 25))
  expect_equal(nrow(out$uplift), 25)
  expect_equal(out$ate$n_users, 25)
  expect_equal(out$ate$n_draws, 100)
  schema <- system.file("boundary.yaml", package = "bayeslift")
  if (nzchar(schema)) check_boundary_table(out$labels, "surrogate_labels", spec, "labels.csv", schema)
  # the same numbers through shards, whatever their number
  shards <- lapply(1:3, function(s) export_counterfactual_shard(model, users[shard_rows(25, 10, s, 3), , drop = FALSE], 10))
  gathered <- gather_counterfactual_shards(shards)
  expect_equal(gathered$uplift, out$uplift)
  expect_equal(gathered$ate$ate_mean, out$ate$ate_mean)
})

test_that("ate_posterior summarises the sample ATE and per-user intervals", {
  a <- ate_posterior(hurdle_fit(), test_users[1:9, ])
  expect_true(a$q05 <= a$mean && a$mean <= a$q95)
  expect_length(a$uplift_mean, 9)
  expect_true(all(a$uplift_q05 <= a$uplift_q95))
})

test_that("interval calibration scales uplift draws about the median and keeps outcomes in range", {
  model <- hurdle_fit()
  model$interval_calibration <- list(scale = 2)
  d <- counterfactual_draws(model, test_users[1:6, ])
  base <- counterfactual_draws(hurdle_fit(), test_users[1:6, ])
  expect_equal(d$treated_posterior, base$treated)
  u <- d$treated - d$control
  expect_equal(matrixStats::colMedians(pmax(u, -Inf)), matrixStats::colMedians(base$treated - base$control), tolerance = 0.2)
  expect_true(all(d$treated >= 0))
  parts <- point_outcome_parts(model, test_users[1:6, ])
  expect_equal(parts$type, "spend")
  expect_length(parts$p, 6)
  expect_length(point_outcome_parts(gaussian_fit(), test_users[1:6, ])$mu, 6)
  expect_null(point_outcome_parts(binary_fit(), test_users[1:6, ])$mu)
})

test_that("model_loo and model_checks give per-user elpd and spend PPCs", {
  l <- suppressWarnings(model_loo(hurdle_fit()))
  expect_length(l$pointwise, nrow(test_users))
  expect_equal(names(l$parts), c("buy", "amount"))
  expect_length(suppressWarnings(model_loo(stack_fit()))$pointwise, nrow(test_users))
  expect_equal(names(suppressWarnings(model_loo(binary_fit()))$parts), "outcome")
  checks <- suppressWarnings(model_checks(hurdle_fit(), test_users, ppc_draws = 20))
  expect_equal(checks$ppc$stat, c("share_zero", "mean", "mean_treated", "mean_control", "buyer_median", "buyer_q90", "q99"))
  expect_equal(dim(replicate_outcome(stack_fit(), test_users, 20, 1)), c(20, nrow(test_users)))
  expect_equal(dim(replicate_outcome(binary_fit(), test_users, 20, 1)), c(20, nrow(test_users)))
})

test_that("convergence checks: MCMC by R-hat/ESS per part, variational by Pareto k", {
  # posterior caps the ESS of 100 draws with a warning: not what is tested here
  check <- suppressWarnings(check_convergence(hurdle_fit(), list(ess_bulk_min = 0, ess_tail_min = 0, rhat_max = Inf)))
  expect_false(check$variational)
  expect_equal(names(check$diagnostics$parts), c("buy", "amount"))
  expect_length(check$problems, 0)
  expect_gt(length(suppressWarnings(check_convergence(hurdle_fit(), list(ess_bulk_min = 1e6)))$problems), 0)
  expect_equal(names(suppressWarnings(model_diagnostics(stack_fit()))$parts), c("no_effect:buy", "no_effect:amount", "default:buy", "default:amount"))
  v <- suppressWarnings(meanfield_fit())
  vc <- check_convergence(v, list(pareto_k_max = Inf))
  expect_true(vc$variational)
  expect_equal(names(vc$thresholds), "pareto_k_max")
  expect_equal(vc$diagnostics$parts$buy$n_draws, 1000)
})

test_that("chains fitted apart combine into one model, chain after chain", {
  section <- list(backend = "rstanarm", effect = list(shape = "linear"), inference = list(chains = 2L, iter = 200L, seed = 1L))
  chains <- lapply(1:2, function(k) suppressWarnings(fit_candidates(test_users, test_spec(), section, chain = k)))
  expect_s3_class(chains[[1]], "bayeslift_candidates")
  model <- choose_model(chains)
  expect_equal(model$chains, 2)
  expect_equal(model_n_draws(model), 200)
  expect_equal(unname(as.matrix(model$buy)), unname(rbind(as.matrix(chains[[1]]$model$buy), as.matrix(chains[[2]]$model$buy))))
  expect_null(model$selection)
  expect_error(combine_chain_fits(list(hurdle_fit(), binary_fit())), "different back-ends")
})

test_that("shape auto picks by LOO or stacks the candidates", {
  section <- list(effect = list(shape = "auto"), combine = "stack", inference = list(chains = 1L, iter = 200L, seed = 1L))
  candidates <- suppressWarnings(fit_candidates(test_users, test_spec(), section, chain = 1))
  expect_named(candidates, c("no_effect", "default", "flexible"))
  stack <- suppressWarnings(choose_model(list(candidates), "stack"))
  expect_s3_class(stack, "bayeslift_stack")
  expect_equal(sum(unlist(stack$selection$weights)), 1, tolerance = 1e-6)
  pick <- suppressWarnings(choose_model(list(candidates), "pick"))
  expect_equal(pick$selection$method, "pick")
  expect_true(pick$selection$chosen %in% names(candidates))
  expect_equal(pick$selection$table$model, names(candidates))
})
