test_that("B and Sigma are recovered from simulated data (n = 2000, p = 5)", {
  set.seed(1)
  n <- 2000; p <- 5
  ## counts in the tens: the variational bias of Sigma (towards zero correlations) is small
  B <- rbind(c(3, 3.5, 2.5, 3, 4), c(0.5, -0.3, 0.8, 0.0, -0.6))
  sd <- c(0.6, 0.8, 0.5, 0.7, 0.4)
  R <- 0.5^abs(outer(1:p, 1:p, "-"))
  Sigma <- R * outer(sd, sd)
  sim <- simulate_pln(n, B, Sigma)
  df <- data.frame(x1 = sim$X[, 2])
  df$Y <- sim$Y
  fit <- PLN(Y ~ x1, data = df)
  expect_identical(fit$optim_par$status, "converged")
  expect_identical(dimnames(coef(fit)), list(c("(Intercept)", "x1"), colnames(sim$Y)))
  expect_lt(max(abs(coef(fit) - B)), 0.1)
  expect_lt(max(abs(sigma(fit) - Sigma)), 0.12)
  expect_lt(max(abs(cov2cor(sigma(fit)) - R)), 0.1)
  ## the same check fails on a wrong model (x1 left out)
  fit0 <- PLN(Y ~ 1, data = df)
  expect_gt(max(abs(sigma(fit0) - Sigma)), 0.3)
})
