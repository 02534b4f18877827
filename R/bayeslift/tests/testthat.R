library(testthat)
library(bayeslift)

test_check("bayeslift")
