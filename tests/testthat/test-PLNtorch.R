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
