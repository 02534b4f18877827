# Every back-end class implements every generic (without fitting), and an unknown class is refused by name.

backend_classes <- c("bayeslift_rstanarm_hurdle", "bayeslift_rstanarm_outcome", "bayeslift_brms", "bayeslift_stack")
generics <- c("expected_outcome", "model_stanfits", "model_n_users", "model_n_draws", "model_loo", "replicate_outcome",
              "point_outcome_parts", "combine_chain_draws", "is_variational", "model_diagnostics", "variational_diagnostics")

# The method a generic dispatches to for an object of class `cls` (as R's UseMethod walks the class vector).
method_for <- function(generic, cls) {
  chain <- switch(cls, bayeslift_rstanarm_hurdle = c(cls, "bayeslift_rstanarm", "bayeslift_model"),
                  bayeslift_rstanarm_outcome = c(cls, "bayeslift_rstanarm", "bayeslift_model"),
                  bayeslift_brms = c(cls, "bayeslift_model"), cls)
  for (k in chain) {
    m <- utils::getS3method(generic, k, optional = TRUE, envir = asNamespace("bayeslift"))
    if (!is.null(m)) return(k)
  }
  NA_character_
}

test_that("each generic has a method for each back-end class", {
  for (g in generics) for (cls in backend_classes) expect_false(is.na(method_for(g, cls)), info = paste(g, cls))
})

test_that("the fitted classes are the ones dispatched on", {
  expect_s3_class(hurdle_fit(), c("bayeslift_rstanarm_hurdle", "bayeslift_rstanarm", "bayeslift_model"), exact = TRUE)
  expect_s3_class(binary_fit(), c("bayeslift_rstanarm_outcome", "bayeslift_rstanarm", "bayeslift_model"), exact = TRUE)
  expect_s3_class(stack_fit(), "bayeslift_stack", exact = TRUE)
})

test_that("a class without methods is refused with the generic named", {
  stranger <- structure(list(spec = test_spec()), class = "bayeslift_tree")
  expect_error(expected_outcome(stranger, test_users), "expected_outcome: no method for class bayeslift_tree")
  expect_error(model_loo(stranger), "model_loo: no method for class bayeslift_tree")
  expect_error(combine_chain_fits(list(stranger)), "combine_chain_draws: no method for class bayeslift_tree")
})

test_that("every back-end of the registry has a fitter per outcome type and a config mapping", {
  for (backend in c("rstanarm", "brms")) {
    for (type in c("spend", "binary", "gaussian")) expect_true(is.function(backend_fitter(backend, type)))
    expect_true(is.list(backend_config_args(backend)(list())))
  }
})
