## Just enough of testthat to run tests/testthat/test-cuda.R where testthat is not installed (the
## GPU machine's R is carried in, without testthat):
##   Rscript -e 'library(plntorch); source("inst/bench/mini-testthat.R"); run_test_file("tests/testthat/test-cuda.R")'
## PLNTORCH_TEST_FILTER=REGEX runs only the tests whose description matches (the others count as skipped).
.mt <- new.env()
.mt$passed <- 0L; .mt$failed <- 0L; .mt$skipped <- 0L
skip <- function(message) stop(structure(class = c("mt_skip", "condition"),
                                         list(message = message, call = NULL)))
skip_if_not <- function(condition, message = "condition is FALSE") if (!isTRUE(condition)) skip(message)
skip_if_not_installed <- function(pkg) skip_if_not(requireNamespace(pkg, quietly = TRUE), paste(pkg, "is not installed"))
.expect <- function(ok, what) {
  if (isTRUE(ok)) .mt$passed <- .mt$passed + 1L
  else { .mt$failed <- .mt$failed + 1L; cat("    FAILED:", what, "\n") }
  invisible(ok)
}
expect_lt <- function(object, expected) .expect(object < expected, sprintf("%g < %g", object, expected))
expect_gte <- function(object, expected) .expect(object >= expected, sprintf("%g >= %g", object, expected))
expect_identical <- function(object, expected) .expect(identical(object, expected),
  sprintf("identical(%s, %s)", format(object), format(expected)))
expect_true <- function(object) .expect(isTRUE(object), "isTRUE")
expect_false <- function(object) .expect(identical(object, FALSE), "identical(FALSE)")
expect_match <- function(object, regexp, fixed = FALSE) .expect(length(object) == 1L &&
  grepl(regexp, object, fixed = fixed), sprintf("'%s' matches '%s'", object, regexp))
expect_equal <- function(object, expected, tolerance = 1e-8) .expect(isTRUE(all.equal(object, expected,
  tolerance = tolerance)), "all.equal")
test_that <- function(desc, code) {
  ## PLNTORCH_TEST_FILTER (a regular expression): only the tests whose description matches run.
  filter <- Sys.getenv("PLNTORCH_TEST_FILTER")
  if (nzchar(filter) && !grepl(filter, desc)) {
    .mt$skipped <- .mt$skipped + 1L
    return(invisible())
  }
  t0 <- proc.time()[["elapsed"]]
  res <- tryCatch({ eval(substitute(code), envir = new.env(parent = parent.frame())); "ok" },
                  mt_skip = function(e) { .mt$skipped <- .mt$skipped + 1L; paste("SKIP:", conditionMessage(e)) },
                  error = function(e) { .mt$failed <- .mt$failed + 1L; paste("ERROR:", conditionMessage(e)) })
  cat(sprintf("  [%5.1f s] %s: %s\n", proc.time()[["elapsed"]] - t0, desc, res))
}
run_test_file <- function(path) {
  sys.source(path, envir = globalenv())
  cat(sprintf("%d passed, %d failed, %d skipped\n", .mt$passed, .mt$failed, .mt$skipped))
  invisible(.mt$failed == 0L)
}
