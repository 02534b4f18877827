# Failed MCMC checks: sample longer within a time budget before refusing (extend_until_converged()).

failed_check <- function(bulk, tail, rhat = 1.0, divergences = 0) {
  list(variational = FALSE, problems = "short",
       thresholds = list(rhat_max = 1.01, ess_bulk_min = 400, ess_tail_min = 400, divergences_max = 0),
       diagnostics = list(parts = list(buy = list(ess_bulk_min = bulk, ess_tail_min = tail, rhat_max = rhat,
                                                  divergences = divergences))))
}

test_that("the next attempt scales the iterations by the worst ESS shortfall, with a margin", {
  expect_equal(next_sampler_settings(failed_check(200, 300), 1000L, 0.95), list(iter = 3000L, adapt_delta = 0.95))
  expect_equal(next_sampler_settings(failed_check(390, 390, rhat = 1.05), 1000L, 0.95)$iter, 2000L)  # R-hat: at least 2x
  s <- next_sampler_settings(failed_check(500, 500, divergences = 3), 1000L, 0.95)
  expect_equal(s, list(iter = 2000L, adapt_delta = 0.975))  # divergences: smaller steps too
})

test_that("a short fit is refitted longer until its checks pass, each attempt recorded", {
  first <- hurdle_fit()  # one chain, 100 draws: the ESS cannot reach 150
  thresholds <- list(rhat_max = 1.1, ess_bulk_min = 150, ess_tail_min = 50, divergences_max = 10)
  check <- suppressWarnings(check_convergence(first, thresholds))  # posterior caps the ESS of 100 draws
  expect_true(length(check$problems) > 0)
  refit <- function(iter, adapt_delta)
    suppressWarnings(fit_causal_model(test_users, test_spec(), chains = 1, iter = iter, seed = 1, adapt_delta = adapt_delta))
  out <- suppressWarnings(suppressMessages(extend_until_converged(first, check, refit, iter = 200L, adapt_delta = 0.95, seconds = 1,
                                                 budget_minutes = 5)))
  expect_equal(out$note, "")
  expect_length(out$check$problems, 0)
  expect_gt(nrow(out$attempts), 1)
  expect_true(all(diff(out$attempts$iter) > 0))
  expect_equal(out$attempts$passed, c(rep(FALSE, nrow(out$attempts) - 1), TRUE))
  expect_equal(model_n_draws(out$model), out$attempts$iter[nrow(out$attempts)] / 2)
})

test_that("nothing is refitted when the budget cannot hold the next attempt, and the note says why", {
  check <- failed_check(40, 40)
  out <- extend_until_converged("fit", check, function(iter, adapt_delta) stop("must not refit"), iter = 1000L,
                                adapt_delta = 0.95, seconds = 60, budget_minutes = 10)
  expect_identical(out$model, "fit")
  expect_equal(nrow(out$attempts), 1)
  expect_match(out$note, "next attempt \\(15000 iterations, about 15.0 min\\) exceeds the 10.0 min left")
  expect_match(extend_until_converged("fit", utils::modifyList(check, list(variational = TRUE)), identity, 1000L,
                                      0.95, 60)$note, "variational fit is not extended")
  expect_error(extend_until_converged("fit", check, "refit", 1000L, 0.95, 60), "refit must be a function")
})
