library(testthat)
library(plntorch)

test_check("plntorch")
