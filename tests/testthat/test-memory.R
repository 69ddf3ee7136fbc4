## Memory: the estimate a fit checks before making any tensor, the error that names it, and the
## options(plntorch.max_memory) ceiling. (A real out-of-memory on a GPU is tested in the Catch2
## CUDA suite, which fills the device first.)
oaks_fit <- function(...) {
  PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks, control = PLN_param(maxit = 20, tol = 0, ...))
}

needed_mb <- function(msg) {
  num <- as.numeric(sub(".*needs about ([0-9.]+) [kM]B.*", "\\1", msg))
  if (grepl("needs about [0-9.]+ kB", msg)) num / 1000 else num
}

test_that("a fit larger than plntorch.max_memory stops before starting, naming the size", {
  old <- options(plntorch.max_memory = 2e5)
  on.exit(options(old))
  err <- expect_error(oaks_fit(), class = "error")
  msg <- conditionMessage(err)
  expect_match(msg, "^not enough memory on cpu: this fit needs about [0-9.]+ MB")
  expect_match(msg, "116 x 114 counts, float64, backend 'fused', optimizer 'lbfgs'", fixed = TRUE)
  expect_match(msg, "options(plntorch.max_memory) allows 200 kB", fixed = TRUE)
  expect_match(msg, "dtype = 'float32'", fixed = TRUE)
  expect_match(msg, "optimizer = 'adam' (fewer arrays)", fixed = TRUE)
  ## 44 arrays of 116 x 114 doubles (lbfgs, fused, on the CPU: see ?PLN, section Memory) and
  ## 22 of 114 x 114 (Sigma, Omega, their factors, the curvature's blocks, the copies out)
  expect_equal(needed_mb(msg), (44 * 116 * 114 + 22 * 114^2) * 8 / 1e6, tolerance = 0.05)
  ## float32 halves the n x p arrays (the p x p ones: 12 floats and 6 doubles per entry); Adam
  ## holds fewer arrays, eager's lbfgs more (autograd)
  msg32 <- conditionMessage(expect_error(oaks_fit(dtype = "float32")))
  expect_equal(needed_mb(msg32), (44 * 116 * 114 * 4 + 96 * 114^2) / 1e6, tolerance = 0.05)
  expect_no_match(msg32, "dtype = 'float32'", fixed = TRUE)
  msg_adam <- conditionMessage(expect_error(oaks_fit(backend = "eager", optimizer = "adam")))
  expect_lt(needed_mb(msg_adam), needed_mb(msg))
  expect_no_match(msg_adam, "optimizer = 'adam'", fixed = TRUE)
  expect_gt(needed_mb(conditionMessage(expect_error(oaks_fit(backend = "eager")))), needed_mb(msg))
  ## the R6 class goes through the same check
  expect_error(PLNtorch$new(oaks$Abundance, log(oaks$Offset))$fit(N_iter = 5),
               "not enough memory on cpu")
})

test_that("the ceiling can be raised or switched off, and later fits work", {
  old <- options(plntorch.max_memory = 1e6)
  on.exit(options(old))
  expect_error(oaks_fit(), "not enough memory")
  options(plntorch.max_memory = 1e9)
  expect_true(is.finite(oaks_fit()$loglik))
  options(plntorch.max_memory = Inf)
  expect_true(is.finite(oaks_fit()$loglik))
  options(plntorch.max_memory = NULL)
  expect_true(is.finite(oaks_fit()$loglik))
})

test_that("a malformed plntorch.max_memory is a clear error", {
  old <- options(plntorch.max_memory = NULL)
  on.exit(options(old))
  for (bad in list(-1, 0, NA_real_, "4GB", c(1e9, 2e9))) {
    options(plntorch.max_memory = bad)
    expect_error(oaks_fit(), "options(plntorch.max_memory) must be a single positive number",
                 fixed = TRUE)
  }
})

## A real allocation failure on the CPU: a child R session under a virtual-memory limit (ulimit -v)
## fits data too large for it with the check switched off, then fits oaks.
test_that("an allocation that fails during a CPU fit is a clear error, and the session goes on", {
  skip_on_cran()
  skip_if_not(file.exists("/proc/self/status"), "needs Linux's /proc")
  dir <- tempfile("pln-ulimit-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  writeLines(c(
    "library(plntorch)",
    "out <- commandArgs(TRUE)[1]",
    "options(plntorch.max_memory = Inf)",
    "set.seed(1)",
    "Y <- matrix(rpois(20000 * 400, 2), 20000, 400)",
    "msg <- tryCatch({ PLNtorch$new(Y)$fit(N_iter = 3); 'no error' }, error = conditionMessage)",
    "rm(Y); invisible(gc())",
    "later <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks, control = PLN_param(maxit = 20))",
    "saveRDS(list(msg = msg, later = is.finite(later$loglik)), out)"), file.path(dir, "child.R"))
  out <- file.path(dir, "out.rds")
  ## ~1.5 GB of address space: R, LibTorch and a small fit fit in it, this one does not
  status <- system2("sh", c("-c", shQuote(sprintf("ulimit -v 1500000 && '%s' '%s' '%s'",
                                                  file.path(R.home("bin"), "Rscript"),
                                                  file.path(dir, "child.R"), out))),
                    stdout = FALSE, stderr = FALSE)
  expect_identical(status, 0L)
  res <- readRDS(out)
  expect_match(res$msg, "^not enough memory on cpu: this fit needs about [0-9.]+ GB \\(20000 x 400 counts")
  expect_match(res$msg, "an allocation failed (LibTorch:", fixed = TRUE)
  expect_false(grepl("\n", res$msg, fixed = TRUE))
  expect_true(res$later)
})

test_that("the estimate counts the p x p matrices: few samples and many species are refused before the fit", {
  ## n = 3, p = 1500: 18 MB per p x p matrix of doubles; the fit's engine peaks at ~300 MB (measured);
  ## the estimate used to count only the n x p arrays (3.2 MB) and let the fit start
  set.seed(1)
  Y <- matrix(rpois(3 * 1500, 3), 3, 1500)
  old <- options(plntorch.max_memory = 5e6)
  on.exit(options(old))
  msg <- conditionMessage(expect_error(PLN(Y ~ 1), "^not enough memory on cpu"))
  expect_equal(needed_mb(msg), (44 * 3 * 1500 + 22 * 1500^2) * 8 / 1e6, tolerance = 0.05)
  ## the advice is what shrinks p x p matrices, not Adam's fewer n x p arrays
  expect_match(msg, "covariance = 'diagonal' (no p x p matrices)", fixed = TRUE)
  expect_match(msg, "or fewer species$")
  expect_no_match(msg, "optimizer = 'adam'", fixed = TRUE)
  ## a diagonal covariance holds only the dense Sigma and Omega handed back (6 doubles per entry)
  msg_diag <- conditionMessage(expect_error(PLN(Y ~ 1, control = PLN_param(covariance = "diagonal"))))
  expect_equal(needed_mb(msg_diag), (44 * 3 * 1500 + 6 * 1500^2) * 8 / 1e6, tolerance = 0.05)
  expect_no_match(msg_diag, "covariance = 'diagonal'", fixed = TRUE)
})
