# The README's R example ("Changing the causal model (for R users)"), verbatim: a data.frame and a spec
# built in R, no file from the Python side.

test_that("the README's example fits and returns counterfactual draws", {
  suppressWarnings({  # rstan warns that one chain of 200 iterations has a low ESS
  library(bayeslift)
  set.seed(1)
  n <- 300
  history <- data.frame(customer_id = seq_len(n), campaign = rbinom(n, 1, 0.5), recency = rexp(n),
                        channel = sample(c("web", "phone"), n, replace = TRUE))
  history$spend <- rbinom(n, 1, 0.3 + 0.1 * history$campaign) * rexp(n, 1 / 20)
  spec <- feature_spec(id = "customer_id", treatment = "campaign", outcome = "spend",
                       numeric = "recency", categorical = "channel", data = history)
  model <- fit_causal_model(history, spec, chains = 1, iter = 200)
  draws <- counterfactual_draws(model, history[1:10, ])  # list(treated, control): draws x users matrices
  uplift <- colMeans(draws$treated - draws$control)      # posterior mean uplift per user
  })

  expect_equal(dim(draws$treated), c(100, 10))
  expect_equal(dim(draws$control), c(100, 10))
  expect_length(uplift, 10)
  expect_true(all(is.finite(uplift)))
})
