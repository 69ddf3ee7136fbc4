## Coverage of the 95% intervals coef +- 1.96 SE on data simulated by rPLN() with a known B
## (inst/bench/coverage.R runs the full study). 60 replicates x 10 coefficients: the sandwich's
## coverage must lie within the central 99.9% of Binomial(600, 0.95) / 600, [0.92, 0.975]; the
## variational standard errors, which ignore the latent variance, fall far below it.
test_that("sandwich intervals cover B at close to 95%; variational ones do not", {
  set.seed(20261123)
  n <- 300; p <- 5; reps <- 60
  B <- rbind(seq(-1, 1, length.out = p), c(0.5, -0.5, 0.25, 0, 1))
  Sigma <- 0.5 * 0.4^abs(outer(1:p, 1:p, "-"))
  covered <- replicate(reps, {
    x <- rnorm(n)
    Y <- rPLN(n, mu = cbind(1, x) %*% B, Sigma = Sigma, depths = 2000)
    df <- data.frame(x = x); df$Y <- Y; df$O <- attr(Y, "offsets")
    fit <- PLN(Y ~ x + offset(O), data = df)
    err <- abs(coef(fit) - B)
    c(sandwich = mean(err <= qnorm(0.975) * standard_error(fit)),
      variational = mean(err <= qnorm(0.975) * standard_error(fit, "variational")))
  })
  bounds <- qbinom(c(0.0005, 0.9995), reps * 2 * p, 0.95) / (reps * 2 * p)
  coverage <- rowMeans(covered)
  expect_gte(coverage[["sandwich"]], bounds[1])
  expect_lte(coverage[["sandwich"]], bounds[2])
  expect_lt(coverage[["variational"]], bounds[1])
})
