## The backends differ only in technique: from the same start they take the same steps.
oaks_fit <- function(backend, ...) {
  PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
      control = PLN_param(backend = backend, dtype = "float64", ...))
}

test_that("eager and script give the same Adam ELBO trace (float64, 200 steps)", {
  ctrl <- list(optimizer = "adam", lr = 0.01, maxit = 200, tol = 0, init = "tutorial")
  eager <- do.call(oaks_fit, c("eager", ctrl))
  script <- do.call(oaks_fit, c("script", ctrl))
  expect_identical(eager$optim_par$steps, 200L)
  expect_identical(script$optim_par$steps, 200L)
  rel <- abs(eager$optim_par$objective - script$optim_par$objective) /
    abs(eager$optim_par$objective)
  expect_lt(max(rel), 1e-6)
  expect_equal(eager$loglik, script$loglik, tolerance = 1e-6)
})

test_that("eager and script reach the same Rprop loglik", {
  eager <- oaks_fit("eager", optimizer = "rprop", maxit = 400, tol = 0)
  script <- oaks_fit("script", optimizer = "rprop", maxit = 400, tol = 0)
  expect_lt(abs(eager$loglik - script$loglik) / abs(eager$loglik), 1e-6)
  expect_identical(script$optim_par$backend, "script")
})

test_that("the fused backend follows the same trace", {
  skip_if_no_backend("fused")
  ctrl <- list(optimizer = "adam", lr = 0.01, maxit = 200, tol = 0, init = "tutorial")
  eager <- do.call(oaks_fit, c("eager", ctrl))
  fused <- do.call(oaks_fit, c("fused", ctrl))
  rel <- abs(eager$optim_par$objective - fused$optim_par$objective) /
    abs(eager$optim_par$objective)
  expect_lt(max(rel), 1e-6)
  eager <- oaks_fit("eager", maxit = 400, tol = 0)
  fused <- oaks_fit("fused", maxit = 400, tol = 0)
  expect_lt(abs(eager$loglik - fused$loglik) / abs(eager$loglik), 1e-6)
})

test_that("float32 runs and lands near float64", {
  f64 <- oaks_fit("eager", maxit = 300, tol = 0)
  f32 <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
             control = PLN_param(backend = "eager", dtype = "float32", maxit = 300, tol = 0))
  expect_identical(f32$optim_par$dtype, "float32")
  expect_lt(abs(f32$loglik - f64$loglik) / abs(f64$loglik), 1e-3)
})

test_that("the tolerance stops the optimisation early", {
  fit <- oaks_fit("eager", maxit = 10000, tol = 1e-4)
  expect_identical(fit$optim_par$status, "converged")
  expect_lt(fit$optim_par$steps, 10000L)
  expect_length(fit$optim_par$objective, fit$optim_par$steps + 1L)
})

test_that("explicit starting values are used", {
  n <- nrow(oaks); p <- ncol(oaks$Abundance)
  tutorial <- oaks_fit("eager", maxit = 20, tol = 0, init = "tutorial")
  given <- oaks_fit("eager", maxit = 20, tol = 0,
                    init = list(B = matrix(0, 1, p), M = matrix(0, n, p), S = matrix(1, n, p)))
  expect_equal(given$optim_par$objective, tutorial$optim_par$objective)
  ## continuing from a fit starts where it stopped, not from the lm start
  first <- oaks_fit("eager", maxit = 200, tol = 0)
  again <- oaks_fit("eager", maxit = 5, tol = 0,
                    init = list(B = coef(first), M = first$var_par$M, S = first$var_par$S))
  fresh <- oaks_fit("eager", maxit = 5, tol = 0)
  last <- first$loglik
  expect_lt(abs(again$optim_par$objective[1] - last), abs(fresh$optim_par$objective[1] - last))
})
