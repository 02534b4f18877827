test_that("feature_spec builds the spec prepare writes, levels from the data", {
  spec <- test_spec()
  expect_equal(spec$levels, list(channel = c("mail", "phone", "web")))
  expect_equal(spec$outcome_type, "spend")
  expect_equal(spec$numeric, c("recency", "past_spend", "is_new"))
})

test_that("feature_spec names what is wrong", {
  expect_error(feature_spec("id", "t", "y"), "at least one numeric or categorical feature")
  expect_error(feature_spec("id", "t", "y", numeric = "x", log1p = "z"), "log1p lists columns that are not numeric features: z")
  expect_error(feature_spec("id", "t", "y", numeric = "x", outcome_type = "count"), "outcome_type must be one of")
  expect_error(feature_spec("id", "t", "y", categorical = "c"), "give `levels` or `data`")
  expect_error(feature_spec("id", "t", "t", numeric = "x"), "a column is named twice: t")
  expect_error(feature_spec(c("a", "b"), "t", "y", numeric = "x"), "id must be one non-empty string")
  expect_error(feature_spec("customer_id", "campaign", "spend", numeric = "nope", data = test_users), "data lacks column\\(s\\) nope")
})

test_that("read_feature_spec reads a spec written as JSON, as prepare writes it", {
  path <- tempfile(fileext = ".json")
  spec <- test_spec()
  jsonlite::write_json(spec[setdiff(names(spec), "outcome_type")], path, auto_unbox = TRUE)
  back <- read_feature_spec(path)
  expect_equal(back$outcome_type, "spend")  # specs written before outcome types
  expect_equal(back$levels, spec$levels)
  expect_error(read_feature_spec(file.path(tempdir(), "absent.json")), "no feature spec at")
})

test_that("model_frame scales numeric features, log1p first, and keeps the training levels", {
  spec <- test_spec()
  mf <- model_frame(test_users, spec)
  expect_equal(mean(mf$data$recency), 0, tolerance = 1e-12)
  expect_equal(sd(mf$data$past_spend), 1, tolerance = 1e-12)
  expect_equal(mf$scaling$center[["past_spend"]], mean(log1p(test_users$past_spend)))
  expect_equal(levels(mf$data$channel), c("mail", "phone", "web"))
  again <- model_frame(test_users[1:5, ], spec, mf$scaling)$data
  expect_equal(again$recency, mf$data$recency[1:5])
  bad <- test_users[1:2, ]
  bad$channel <- "fax"
  expect_error(model_frame(bad, spec, mf$scaling), "column 'channel' has levels not seen in training: fax")
})
