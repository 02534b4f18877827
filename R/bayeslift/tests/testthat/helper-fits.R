# Simulated users and tiny fits shared by the tests: each fit is made once per test run (300 users, one
# chain of 200 iterations: seconds each), on first use.

simulate_users <- function(n = 300, seed = 1) {
  set.seed(seed)
  users <- data.frame(customer_id = seq_len(n), campaign = stats::rbinom(n, 1, 0.5), recency = stats::rexp(n),
                      past_spend = stats::rexp(n, 0.1), is_new = stats::rbinom(n, 1, 0.3),
                      channel = sample(c("web", "phone", "mail"), n, replace = TRUE))
  buy <- stats::rbinom(n, 1, stats::plogis(-0.5 + 0.5 * users$campaign - 0.3 * users$recency))
  users$spend <- buy * exp(stats::rnorm(n, 2 + 0.2 * users$campaign * (1 + users$is_new), 0.5))
  users$visit <- buy
  users$margin <- stats::rnorm(n, 1 + users$campaign + users$recency)
  users
}

test_users <- simulate_users()

test_spec <- function(outcome = "spend", outcome_type = "spend") {
  feature_spec(id = "customer_id", treatment = "campaign", outcome = outcome, outcome_type = outcome_type,
               numeric = c("recency", "past_spend", "is_new"), categorical = "channel", log1p = "past_spend",
               data = test_users)
}

fit_cache <- new.env()

# A tiny fit of `key`, made on first use (rstanarm unless `backend` says); `...` are fit_causal_model() options.
tiny_fit <- function(key, spec = test_spec(), backend = "rstanarm", ...) {
  if (is.null(fit_cache[[key]]))
    fit_cache[[key]] <- suppressWarnings(fit_causal_model(test_users, spec, backend = backend, chains = 1, iter = 200,
                                                          seed = 1, ...))
  fit_cache[[key]]
}

hurdle_fit <- function() tiny_fit("hurdle")
binary_fit <- function() tiny_fit("binary", test_spec("visit", "binary"))
gaussian_fit <- function() tiny_fit("gaussian", test_spec("margin", "gaussian"))
no_effect_fit <- function() tiny_fit("no_effect", effect = FALSE)
meanfield_fit <- function() tiny_fit("meanfield", algorithm = "meanfield")
stack_fit <- function() {
  if (is.null(fit_cache$stack))
    fit_cache$stack <- stack_models(list(no_effect = no_effect_fit(), default = hurdle_fit()), c(no_effect = 0.3, default = 0.7))
  fit_cache$stack
}

# The generics every back-end answers, checked on fitted model `m` (the same expectations for each back-end's
# tiny fits): counterfactual draws of `n_draws` x users, LOO per user, replicates and point parameters.
expect_every_generic <- function(m, class, n_draws) {
  expect_s3_class(m, class)
  d <- counterfactual_draws(m, test_users[1:7, ])
  expect_equal(dim(d$treated), c(n_draws, 7L))
  expect_true(all(is.finite(d$treated - d$control)))
  l <- suppressWarnings(model_loo(m))
  expect_length(l$pointwise, nrow(test_users))
  expect_true(is.finite(l$elpd))
  expect_equal(dim(replicate_outcome(m, test_users[1:4, ], 5, 1)), c(5L, 4L))
  parts <- point_outcome_parts(m, test_users[1:3, ])
  expect_length(if (is.null(parts$mu)) parts$p else parts$mu, 3L)
}
