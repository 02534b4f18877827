test_that("atomic writes leave the file or nothing, and read back", {
  dir <- tempfile()
  path <- file.path(dir, "sub", "t.csv")
  write_csv_atomic(data.frame(id = 1:2, x = c(0.5, NA)), path)
  expect_equal(read.csv(path)$id, 1:2)
  write_json_atomic(list(a = 1, b = NULL), file.path(dir, "a.json"))
  expect_equal(jsonlite::read_json(file.path(dir, "a.json")), list(a = 1, b = NULL))
  save_rds_atomic(list(1), file.path(dir, "x.rds"))
  expect_equal(readRDS(file.path(dir, "x.rds")), list(1))
  expect_length(list.files(dir, pattern = "\\.tmp$", recursive = TRUE, all.files = TRUE), 0)
  expect_error(write_atomic(file.path(dir, "y.csv"), function(tmp) stop("disk full")), "disk full")
  expect_false(file.exists(file.path(dir, "y.csv")))
})

test_that("an edited source that was not reinstalled is named (make install's record)", {
  record <- system.file("SOURCES.md5", package = "bayeslift")
  skip_if(!nzchar(record), "installed without make install's SOURCES.md5")
  installed <- read.table(record, col.names = c("md5", "file"), stringsAsFactors = FALSE)
  edited <- file.path(tempfile(), "R", basename(installed$file[1]))
  dir.create(dirname(edited), recursive = TRUE)
  writeLines("# edited", edited)
  expect_error(check_installed_sources(edited), paste0("differs from R/bayeslift/R/", basename(edited), ": run `make install`"))
  expect_true(check_installed_sources(character(0)))
})

test_that("read_prepared keeps a category spelt NA (prepare allows it; only an empty field is missing)", {
  path <- tempfile(fileext = ".csv")
  writeLines(c("customer_id,campaign,spend,recency,past_spend,is_new,channel",
               "a,1,0,3,1.5,0,NA", "b,0,2.5,4,0,1,web"), path)
  d <- read_prepared(path, test_spec())
  expect_identical(d$channel, c("NA", "web"))
  expect_false(anyNA(d))
})
