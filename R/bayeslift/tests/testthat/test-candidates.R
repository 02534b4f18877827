# The config's model section -> candidate fits (model_candidates()), for each combination of its keys.

pipeline_model <- list(backend = "rstanarm",
                       effect = list(shape = "linear", spline_df = 3L, shrinkage = "none", shrinkage_scale = NULL, propensity = FALSE),
                       combine = "pick",
                       inference = list(algorithm = "sampling", chains = 2L, iter = 2000L, adapt_delta = 0.95, seed = 1L, fit_subsample = NULL),
                       brms = list(formula = NULL, cache_dir = ".cache/brms"))
# the pipeline's section with some keys changed: section(effect = list(shape = "auto"), combine = "stack")
section <- function(...) utils::modifyList(pipeline_model, list(...))

test_that("the default section is one candidate: the configured model", {
  c <- model_candidates(pipeline_model)
  expect_named(c, "model")
  expect_equal(c$model, list(backend = "rstanarm", iter = 2000L, adapt_delta = 0.95, algorithm = "sampling",
                             flexible = FALSE, shrinkage = "none", propensity = FALSE, spline_df = 3L))
})

test_that("model options reach the candidate; shrinkage_scale only with the normal prior", {
  c <- model_candidates(section(effect = list(shape = "flexible", shrinkage = "normal", shrinkage_scale = 0.25, spline_df = 5L, propensity = TRUE)))$model
  expect_true(c$flexible && c$propensity)
  expect_equal(c[c("shrinkage", "shrinkage_scale", "spline_df")], list(shrinkage = "normal", shrinkage_scale = 0.25, spline_df = 5L))
  expect_null(model_candidates(section(effect = list(shrinkage = "horseshoe", shrinkage_scale = 0.25)))$model$shrinkage_scale)
})

test_that("shape auto: the configured model and the same with splines, simplest first", {
  c <- model_candidates(section(effect = list(shape = "auto", shrinkage = "normal", spline_df = 5L)))
  expect_named(c, c("default", "flexible"))
  expect_false(c$default$flexible)
  expect_true(c$flexible$flexible)
  expect_equal(c$flexible$spline_df, 5L)
  expect_equal(c$default$shrinkage, "normal")
  expect_equal(c$flexible$shrinkage, "normal")
})

test_that("shape auto with stack or pseudo_bma adds the no-effect model first, with no other option", {
  for (combine in c("stack", "pseudo_bma")) {
    c <- model_candidates(section(effect = list(shape = "auto", shrinkage = "horseshoe", propensity = TRUE), combine = combine))
    expect_named(c, c("no_effect", "default", "flexible"))
    expect_equal(c$no_effect[c("effect", "flexible", "shrinkage", "propensity")],
                 list(effect = FALSE, flexible = FALSE, shrinkage = "none", propensity = FALSE))
    expect_equal(c$default$shrinkage, "horseshoe")
  }
  expect_error(model_candidates(section(combine = "stack")), "only effect\\$shape 'auto' fits")
})

test_that("brms candidates carry the brms section's formula and cache, rstanarm ones do not", {
  f <- list("spend ~ campaign * recency", "hu ~ campaign")
  c <- model_candidates(section(backend = "brms", brms = list(formula = f, cache_dir = "/tmp/brms")))$model
  expect_equal(c$formula, c("spend ~ campaign * recency", "hu ~ campaign"))
  expect_equal(c$cache_dir, "/tmp/brms")
  expect_null(c$spline_df)
  expect_null(model_candidates(section(backend = "brms"))$model$formula)
  r <- model_candidates(section(brms = list(formula = f, cache_dir = "/tmp/brms")))$model
  expect_null(r$formula)
  expect_null(r$cache_dir)
})

test_that("variational sections fit one chain; partial sections take fit_causal_model()'s defaults", {
  expect_equal(configured_chains(section(inference = list(algorithm = "meanfield"))), 1L)
  expect_equal(configured_chains(section(inference = list(chains = 3L))), 3L)
  # shape left out is auto (config.yaml's default): the linear model and the same with splines
  expect_equal(model_candidates(list()), list(default = list(backend = "stan", flexible = FALSE),
                                              flexible = list(backend = "stan", flexible = TRUE)))
  expect_equal(model_candidates(list(effect = list(shape = "linear"))), list(model = list(backend = "stan", flexible = FALSE)))
  expect_equal(configured_chains(list()), 2L)
})

test_that("a section no candidate can be built from is refused with the key named", {
  expect_error(model_candidates(section(effect = list(shape = "auto"), combine = "best")), "combine must be one of pick, stack, pseudo_bma")
  expect_error(model_candidates(section(effect = list(shape = "curvy"))), "effect\\$shape must be one of linear, flexible, auto")
  expect_error(model_candidates(list(auto = TRUE, chains = 2)), "auto, chains belong in the grouped section")
  expect_error(model_candidates(list(effect = "flexible")), "model_config\\$effect must be a list")
  expect_error(model_candidates("rstanarm"), "model_config must be a list")
  expect_error(model_candidates(section(backend = "sklearn")), "backend must be one of stan, rstanarm, bcf, brms")
  expect_error(model_candidates(section(inference = list(chains = 0))), "inference\\$chains must be a positive whole number")
})

test_that("configured_training_rows keeps every row unless fit_subsample asks for fewer", {
  spec <- test_spec()
  expect_identical(configured_training_rows(test_users, spec, pipeline_model), test_users)
  sub <- suppressMessages(configured_training_rows(test_users, spec, section(inference = list(fit_subsample = 100L))))
  expect_equal(nrow(sub), 100)
  expect_identical(sub, suppressMessages(configured_training_rows(test_users, spec, section(inference = list(fit_subsample = 100L)))))
})

test_that("a later fit keeps only the candidate an earlier LOO choice kept (shape auto, combine pick)", {
  diagnostics <- function(chosen) {
    path <- tempfile(fileext = ".json")
    writeLines(jsonlite::toJSON(list(selection = list(method = "pick", chosen = chosen)), auto_unbox = TRUE), path)
    path
  }
  auto <- section(effect = list(shape = "auto"), combine = "pick")
  kept <- kept_model_config(auto, diagnostics("flexible"))
  expect_equal(kept$effect$shape, "flexible")
  expect_equal(names(model_candidates(kept)), "model")
  expect_true(model_candidates(kept)$model$flexible)
  expect_equal(kept_model_config(auto, diagnostics("default"))$effect$shape, "linear")
  expect_equal(kept_model_config(auto, diagnostics("default"))$kept$candidate, "default")
  # nothing to pin: no train fit named, one shape configured, or candidates mixed (the refit needs all of them)
  expect_identical(kept_model_config(auto, NULL), auto)
  linear <- section(effect = list(shape = "linear"))
  expect_identical(kept_model_config(linear, diagnostics("flexible")), linear)
  stack <- section(effect = list(shape = "auto"), combine = "stack")
  expect_identical(kept_model_config(stack, diagnostics("stack")), stack)
  expect_error(kept_model_config(auto, diagnostics("no_effect")), "not a candidate of model: auto")
  one <- tempfile(fileext = ".json")  # the train fit had one candidate (e.g. backend bcf): nothing to pin
  writeLines(jsonlite::toJSON(list(backend = "bcf"), auto_unbox = TRUE), one)
  expect_identical(kept_model_config(auto, one), auto)
})

test_that("shape auto compares the flexible model only where the back-end fits it", {
  auto <- function(...) section(effect = list(shape = "auto", ...), combine = "pick")
  expect_equal(names(model_candidates(auto())), c("default", "flexible"))
  expect_equal(names(model_candidates(auto(), "binary")), c("default", "flexible"))  # stan: every outcome type
  expect_equal(names(model_candidates(utils::modifyList(auto(), list(backend = "bcf")))), "model")
  brms <- utils::modifyList(auto(), list(backend = "brms"))
  expect_equal(names(model_candidates(brms)), c("default", "flexible"))
  expect_equal(names(model_candidates(brms, "binary")), "model")
  expect_equal(names(model_candidates(utils::modifyList(brms, list(effect = list(shrinkage = "horseshoe"))))), "model")
  expect_false(model_candidates(utils::modifyList(auto(), list(backend = "bcf")))$model$flexible)
})
