# Shape auto's choice on a capped subsample (choose_shape()), kept by every later fit (keep_candidate()).

shape_section <- function(cap, shape = "auto") {
  list(backend = "rstanarm", effect = list(shape = shape, shape_subsample = cap), combine = "pick",
       inference = list(algorithm = "sampling", chains = 1L, iter = 200L, seed = 1L))
}

test_that("shape auto compares the shapes on a stratified subsample, then fits only the kept one on every row", {
  spec <- test_spec()
  m <- shape_section(200L)
  choice <- suppressWarnings(choose_shape(test_users, spec, m))
  expect_equal(c(choice$n_users, choice$of_users), c(200L, 300L))
  expect_true(choice$selection$chosen %in% c("default", "flexible"))
  expect_equal(choice$table$model, c("default", "flexible"))
  expect_gt(choice$seconds, 0)
  # the same choice, then one candidate on all 300 users
  model <- suppressWarnings(fit_configured_model(test_users, spec, m))
  expect_s3_class(model, "bayeslift_model")
  expect_equal(model_n_users(model), 300L)
  expect_equal(model$selection$chosen, choice$selection$chosen)
  expect_equal(model$selection$table$model, c("default", "flexible"))
})

test_that("nothing is chosen apart within the cap, for one shape or for a mixture", {
  spec <- test_spec()
  within <- choose_shape(test_users, spec, shape_section(300L))
  expect_null(within$selection$chosen)
  expect_equal(within$seconds, 0)
  expect_match(within$note, "within model.effect.shape_subsample")
  expect_null(choose_shape(test_users, spec, shape_section(5000L))$selection$chosen)
  no_cap <- shape_section(NULL)  # left out: config.yaml's 5,000
  expect_match(choose_shape(test_users, spec, no_cap)$note, "within model.effect.shape_subsample \\(5000\\)")
  expect_null(choose_shape(test_users, spec, shape_section(200L, "linear"))$selection$chosen)
  stack <- utils::modifyList(shape_section(200L), list(combine = "stack"))
  expect_match(choose_shape(test_users, spec, stack)$note, "nothing to choose")
  bcf <- utils::modifyList(shape_section(200L), list(backend = "bcf"))
  expect_match(choose_shape(test_users, spec, bcf)$note, "nothing to choose")
})

test_that("keep_candidate pins the kept shape and records where it was chosen", {
  m <- shape_section(200L)
  kept <- keep_candidate(m, "flexible", "a test")
  expect_equal(kept$effect$shape, "flexible")
  expect_equal(kept$kept, list(candidate = "flexible", from = "a test"))
  expect_equal(keep_candidate(m, "default", "a test")$effect$shape, "linear")
  expect_identical(keep_candidate(m, NULL, "a test"), m)
  expect_error(keep_candidate(m, "stack", "a test"), "a test: selection\\$chosen is 'stack'")
})

test_that("the kept candidate's selection records what it was compared on, and only then", {
  compared <- list(table = data.frame(model = c("default", "flexible")), n_users = 200L, of_users = 300L)
  kept <- keep_candidate(shape_section(200L), "default", "a test", compared)
  expect_equal(kept_selection(kept), c(list(method = "pick", chosen = "default"), compared))
  expect_null(kept_selection(keep_candidate(shape_section(200L), "default", "a test")))
  expect_null(kept_selection(shape_section(200L)))
})
