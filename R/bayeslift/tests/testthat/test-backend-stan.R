# Back-end "stan": the generics on tiny fits, and recovery of known effects (margins several posterior sds wide,
# so another machine's draws pass too).

stan_fit <- function(key, spec = test_spec(), ...) tiny_fit(paste0("stan_", key), spec, backend = "stan", ...)

test_that("the stan back-end answers every generic for each outcome type", {
  for (m in list(stan_fit("spend"), stan_fit("binary", test_spec("visit", "binary")),
                 stan_fit("gaussian", test_spec("margin", "gaussian")), stan_fit("flexible", flexible = TRUE))) {
    expect_every_generic(m, "bayeslift_stan", 100L)
    expect_true(all(names(suppressWarnings(model_diagnostics(m))$parts) %in% c("buy", "amount", "outcome")))
  }
  p <- expected_outcome(stan_fit("binary", test_spec("visit", "binary")), test_users[1:5, ])
  expect_true(all(p >= 0 & p <= 1))
  no_effect <- stan_fit("no_effect", effect = FALSE)
  d <- counterfactual_draws(no_effect, test_users[1:5, ])
  expect_equal(d$treated, d$control)
})

test_that("stan chains fitted apart combine, and the coefficients carry the design's names", {
  spec <- test_spec("margin", "gaussian")
  fits <- lapply(1:2, function(k) suppressWarnings(fit_causal_model_chain(test_users, spec, chain_id = k, backend = "stan",
                                                                          iter = 200)))
  m <- combine_chain_fits(fits)
  expect_equal(model_n_draws(m), 200L)
  expect_equal(m$outcome$stanfit@sim$chains, 2L)
  vars <- model_diagnostics(m)$parameters$variable
  expect_true(all(c("campaign", "recency", "campaign:recency", "campaign:channelweb") %in% vars))
})

# Gaussian users with 19 binary features, one of them rare and never 1 among the treated; effect 4 + 2 x1.
rare_binary_users <- function(n, seed) {
  set.seed(seed)
  x <- matrix(stats::rbinom(n * 18, 1, 0.3), n, 18, dimnames = list(NULL, sprintf("b%02d", 1:18)))
  users <- data.frame(customer_id = seq_len(n), campaign = stats::rbinom(n, 1, 0.5), x1 = stats::rnorm(n), x)
  users$rare <- stats::rbinom(n, 1, 0.02) * (1 - users$campaign)
  users$effect <- 4 + 2 * users$x1
  users$y <- 1 + users$x1 + 0.5 * users$b01 + users$campaign * users$effect + stats::rnorm(n, 0, 2)
  users
}

test_that("a rare binary constant in one arm is dropped from the effect and the ATE stays narrow and right", {
  users <- rare_binary_users(700, 11)
  spec <- feature_spec(id = "customer_id", treatment = "campaign", outcome = "y", outcome_type = "gaussian",
                       numeric = c("x1", sprintf("b%02d", 1:18), "rare"), data = users)
  expect_message(m <- suppressWarnings(fit_causal_model(users, spec, backend = "stan", chains = 2, iter = 1000, cores = 2)),
                 "rare dropped \\(effect: constant or collinear among the treated")
  expect_equal(names(m$outcome$recipe$dropped), "rare")
  expect_length(stan_fit("spend")$buy$recipe$dropped, 0)  # every column supported: nothing dropped, nothing said
  d <- counterfactual_draws(m, users)
  ate <- rowMeans(d$treated - d$control)
  truth <- mean(users$effect)
  expect_lt(abs(mean(ate) - truth), 4 * stats::sd(ate))
  expect_lt(diff(stats::quantile(ate, c(0.05, 0.95))), 1.2)  # n = 700, noise sd 2: about 0.5 wide
  # the true heterogeneity (2 x1) is found: per-user error well below the effect's sd of 2
  uplift <- colMeans(d$treated - d$control)
  expect_lt(sqrt(mean((uplift - users$effect)^2)), 1.2)  # 0.68 and 0.78 on two seeds; no heterogeneity: 2
})

test_that("with no effect at all, the learned scale shrinks the per-user effects toward zero", {
  users <- rare_binary_users(700, 12)
  users$y <- users$y - users$campaign * users$effect  # no effect for anyone
  spec <- feature_spec(id = "customer_id", treatment = "campaign", outcome = "y", outcome_type = "gaussian",
                       numeric = c("x1", sprintf("b%02d", 1:18)), data = users)
  m <- suppressWarnings(fit_causal_model(users, spec, backend = "stan", chains = 2, iter = 1000, cores = 2))
  d <- counterfactual_draws(m, users)
  uplift <- colMeans(d$treated - d$control)
  expect_lt(sqrt(mean(uplift^2)), 0.6)  # 0.23 and 0.38 on two seeds; the posterior sd of the ATE alone is ~0.15
  expect_lt(abs(mean(rowMeans(d$treated - d$control))), 0.5)
})
