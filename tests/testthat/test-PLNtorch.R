test_that("the PLNtorch flow of the tutorial runs", {
  m <- PLNtorch$new(Y = oaks$Abundance, O = log(oaks$Offset), X = matrix(1, nrow(oaks), 1),
                    backend = "eager", device = "cpu")
  expect_true(R6::is.R6(m))
  expect_identical(c(m$n, m$p, m$d), c(116L, 114L, 1L))
  expect_identical(m$dtype, "float64")
  expect_true(all(m$B == 0) && all(m$M == 0) && all(m$S == 1))
  expect_identical(dimnames(m$M), dimnames(oaks$Abundance))
  expect_true(is.na(m$loglik))
  expect_length(m$ELBO_list, 0)
  expect_output(print(m), "not fitted yet")
  ## the ELBO at the tutorial start, Omega = I
  j0 <- m$get_ELBO()
  expect_equal(j0, ref_elbo(unclass(oaks$Abundance), log(unclass(oaks$Offset)),
                            matrix(1, 116, 1), rep(1, 116), m$B, m$M, m$S, m$Omega),
               tolerance = 1e-10)

  expect_invisible(m$fit(N_iter = 100, lr = 0.05, tol = 1e-9, verbose = FALSE))
  expect_length(m$ELBO_list, 100)
  expect_identical(m$last_fit$status, "maxit")
  expect_true(is.finite(m$loglik))
  expect_equal(m$loglik, sum(m$loglik_vec))
  expect_identical(dimnames(m$B), list(NULL, colnames(oaks$Abundance)))
  expect_identical(dimnames(m$Sigma), list(colnames(oaks$Abundance), colnames(oaks$Abundance)))
  expect_equal(unname(m$Sigma %*% m$Omega), diag(114), tolerance = 1e-6)
  ll1 <- m$loglik

  ## a second fit continues from the current state and appends to the trace
  m$fit(N_iter = 50, lr = 0.05, tol = 1e-9)
  expect_length(m$ELBO_list, 150)
  expect_gt(m$loglik, ll1)
  expect_true(is.finite(m$get_ELBO()))
  expect_equal(m$get_ELBO(), m$ELBO_list[150], tolerance = 1e-3)
  expect_output(print(m), "150 steps so far")
  pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_invisible(m$plotLogNegElbo())
  expect_invisible(m$plotLogNegElbo(from = 10))
})

test_that("PLNtorch with script and with default X, O, w", {
  Y <- small_data()$Y
  m <- PLNtorch$new(Y = Y, backend = "script")
  expect_identical(unname(m$X), matrix(1, 30, 1))
  expect_identical(unname(m$O), matrix(0, 30, 4))
  expect_identical(m$w, rep(1, 30))
  m$fit(N_iter = 30, optimizer = "adam")
  expect_identical(m$last_fit$optimizer, "adam")
  expect_identical(m$last_fit$lr, .pln_defaults$lr[["adam"]])
  expect_length(m$ELBO_list, 30)
})

test_that("fields edited by hand are named as the object's fields in errors", {
  Y <- small_data()$Y
  fresh <- function() PLNtorch$new(Y = Y, backend = "eager")
  m <- fresh(); m$B[1, 1] <- NaN
  expect_error(m$fit(10), "^`m\\$B` must hold finite values; found NaN at \\[1, 1\\]\\.$")
  m <- fresh(); m$M[2, 3] <- -Inf
  expect_error(m$fit(10), "`m\\$M` must hold finite values; found -Inf at \\[2, 3\\]")
  m <- fresh(); m$B <- matrix(0, 2, 2)
  expect_error(m$fit(10), "`m\\$B` must be 1 x 4; got 2 x 2")
  m <- fresh(); m$S[1] <- 0
  expect_error(m$fit(10), "`m\\$S` must be non-zero")
  m <- fresh(); m$S <- NULL
  expect_error(m$fit(10), "`m\\$S` is NULL")
  m <- fresh(); m$M <- "a"
  expect_error(m$fit(10), "`m\\$M` must be a numeric matrix")
  m <- fresh(); m$backend <- "gpu"
  expect_error(m$fit(10), "`m\\$backend` must be one of")
  m <- fresh(); m$dtype <- "float16"
  expect_error(m$fit(10), "`m\\$dtype` must be one of")
  m <- fresh(); m$device <- "tpu"
  expect_error(m$fit(10), "`m\\$device` must be")
  ## the object's name as the call shows it
  models <- list(fresh()); models[[1]]$B[1] <- Inf
  expect_error(models[[1]]$fit(10), "`models\\[\\[1\\]\\]\\$B` must hold finite values")
  ## a start whose ELBO is not finite: the engine's message names the fields, for every optimiser
  for (opt in c("lbfgs", "adam", "rprop")) {
    m <- fresh(); m$S[] <- 1e-300
    expect_error(m$fit(10, optimizer = opt),
                 "^the ELBO is not finite at the current `m\\$B`, `m\\$M` and `m\\$S`", info = opt)
    m <- fresh(); m$M[] <- 1e5
    expect_error(m$fit(10, optimizer = opt), "at the current `m\\$B`, `m\\$M` and `m\\$S`", info = opt)
  }
  ## the state is left as it was, and a repaired object fits
  m <- fresh(); m$B[1, 1] <- NaN
  expect_error(m$fit(10))
  m$B[1, 1] <- 0
  m$fit(10)
  expect_length(m$ELBO_list, 10)
})

test_that("get_ELBO() refuses fields where the ELBO is not finite, naming them", {
  Y <- small_data()$Y
  m <- PLNtorch$new(Y = Y, backend = "eager")
  m$S[] <- 0
  expect_error(m$get_ELBO(), "`m\\$S` must be non-zero")
  m <- PLNtorch$new(Y = Y, backend = "eager"); m$Omega[1, 1] <- NaN
  expect_error(m$get_ELBO(), "`m\\$Omega` must hold finite values; found NaN")
  m <- PLNtorch$new(Y = Y, backend = "eager"); m$Omega[1, 1] <- -1
  expect_error(m$get_ELBO(), "`m\\$Omega` must be symmetric positive definite")
  m <- PLNtorch$new(Y = Y, backend = "eager"); m$Omega <- diag(2)
  expect_error(m$get_ELBO(), "`m\\$Omega` must be 4 x 4")
  m <- PLNtorch$new(Y = Y, backend = "eager"); m$S[] <- 1e-300
  expect_error(m$get_ELBO(), "the ELBO is not finite at the current `m\\$B`, `m\\$M`, `m\\$S` and `m\\$Omega`")
  m <- PLNtorch$new(Y = Y, backend = "eager"); m$M[] <- 1e5
  expect_error(m$get_ELBO(), "the ELBO is not finite")
  m <- PLNtorch$new(Y = Y, backend = "eager")
  expect_true(is.finite(m$get_ELBO()))
})
