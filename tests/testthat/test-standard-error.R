## Standard errors of B: the C++ algebra against plain R formulas, shapes and names, config_post,
## the errors, jackknife and bootstrap, summary(), rPLN().

small_fit <- function(config_post = list(), n = 60, p = 4, seed = 3, weights = NULL) {
  set.seed(seed)
  sim <- simulate_pln(n, B = rbind(c(1, 0.5, 0, -0.5)[seq_len(p)], c(0.3, -0.2, 0.1, 0)[seq_len(p)]),
                      Sigma = 0.3 * diag(p) + 0.2)
  df <- data.frame(x = sim$X[, 2]); df$Y <- sim$Y
  df$w <- if (is.null(weights)) 1 else weights
  PLN(Y ~ x, data = df, weights = w, control = PLN_param(config_post = config_post))
}

## PLNmodels' sandwich as written (Kronecker products), with weights w in the bread and w^2 in the
## meat.
ref_sandwich <- function(fit, w = rep(1, fit$n)) {
  Y <- fit$responses; X <- fit$covariates; A <- fit$fitted; S <- fit$var_par$S
  Sigma <- fit$model_par$Sigma; dO <- diag(fit$model_par$Omega)
  n <- nrow(Y); p <- ncol(Y); d <- ncol(X)
  D <- 1 / A + S^4 / (1 + S^2 * (A + rep(1, n) %o% dO))
  Cn <- Dn <- matrix(0, p * d, p * d)
  for (i in seq_len(n)) {
    Cn <- Cn + w[i] * kronecker(solve(Sigma + diag(D[i, ])), tcrossprod(X[i, ]))
    Dn <- Dn + w[i]^2 * kronecker(tcrossprod(Y[i, ] - A[i, ]), tcrossprod(X[i, ]))
  }
  solve(Cn) %*% Dn %*% solve(Cn)
}

test_that("the sandwich and variational variances equal PLNmodels' formulas written in R", {
  fit <- small_fit()
  V <- ref_sandwich(fit)
  expect_equal(unname(vcov(fit, method = "sandwich")), V, tolerance = 1e-10)
  expect_equal(as.vector(standard_error(fit)), sqrt(diag(V)), tolerance = 1e-10)
  X <- fit$covariates; A <- fit$fitted
  Vv <- matrix(0, 8, 8)
  for (j in 1:4) Vv[2 * j - 1:0, 2 * j - 1:0] <- solve(crossprod(X, A[, j] * X))
  expect_equal(unname(vcov(fit)), Vv, tolerance = 1e-10)
  expect_equal(as.vector(standard_error(fit, type = "variational")), sqrt(diag(Vv)),
               tolerance = 1e-10)
  Om <- fit$model_par$Omega
  expect_equal(standard_error(fit, "variational", "Omega"),
               sqrt(2 * outer(diag(Om), diag(Om)) / fit$n), tolerance = 1e-12)
})

test_that("with weights, the sandwich takes w in its bread and w^2 in its meat; scale-free", {
  w <- rep(c(1, 2, 0.5), 20)
  fit <- small_fit(weights = w)
  expect_equal(unname(vcov(fit, method = "sandwich")), ref_sandwich(fit, w), tolerance = 1e-10)
  fit10 <- small_fit(weights = 10 * w)
  expect_equal(standard_error(fit10), standard_error(fit), tolerance = 1e-5)
})

test_that("shapes, names and PLNmodels' vec(B) order", {
  fit <- small_fit()
  se <- standard_error(fit)
  expect_identical(dimnames(se), dimnames(coef(fit)))
  V <- vcov(fit, method = "sandwich")
  expect_identical(rownames(V)[1:3], c("sp1_(Intercept)", "sp1_x", "sp2_(Intercept)"))
  expect_identical(dim(vcov(fit)), c(8L, 8L))
  expect_identical(vcov(fit, type = "covariance"), sigma(fit))
  expect_identical(dim(standard_error(fit, "variational", "Omega")), c(4L, 4L))
})

test_that("config_post stores what it asks for; standard_error() reads it or computes it", {
  fit0 <- small_fit()
  expect_null(fit0$uncertainty)
  fit <- small_fit(list(sandwich_var = TRUE, variational_var = TRUE))
  expect_setequal(names(fit$uncertainty), c("sandwich", "variational"))
  expect_identical(standard_error(fit), sqrt(fit$uncertainty$sandwich$var_B))
  expect_equal(standard_error(fit), standard_error(fit0))
  expect_equal(standard_error(fit, "variational"), standard_error(fit0, "variational"))
  p <- PLN_param(config_post = list(bootstrap = 5))
  expect_identical(p$config_post$bootstrap, 5L)
  expect_false(p$config_post$jackknife)
  expect_true(p$config_post$rsquared)
})

test_that("bad config_post, type and parameter are errors naming the argument", {
  expect_error(PLN_param(config_post = list(jackknif = TRUE)), "`config_post` has unknown element")
  expect_error(PLN_param(config_post = list(jackknife = "yes")), "`config_post\\$jackknife` must be TRUE or FALSE")
  expect_error(PLN_param(config_post = list(bootstrap = -1)), "`config_post\\$bootstrap`")
  expect_error(PLN_param(config_post = list(bootstrap = 1)), "at least 2")
  expect_error(PLN_param(config_post = TRUE), "`config_post` must be a named list")
  expect_error(PLN_param(config_post = list(TRUE)), "`config_post` must be a named list")
  fit <- small_fit()
  expect_error(standard_error(fit, type = "jackknife"),
               "config_post = list\\(jackknife = TRUE\\)")
  expect_error(standard_error(fit, type = "bootstrap"), "config_post = list\\(bootstrap")
  expect_error(standard_error(fit, type = "wild"), "`type` must be one of")
  expect_error(standard_error(fit, parameter = "Sigma"), "`parameter` must be one of")
  expect_error(standard_error(fit, parameter = "Omega"), "no sandwich standard error")
  expect_error(vcov(fit, method = "jackknife"), "config_post")
  expect_error(vcov(fit, type = "x"), "`type` must be one of")
})

test_that("jackknife and bootstrap refit on the engine, warm, with PLNmodels' definitions", {
  fit <- small_fit(list(jackknife = TRUE, bootstrap = 8), n = 30)
  jk <- fit$uncertainty$jackknife
  expect_identical(jk$refits, 30L)
  expect_true(all(names(jk$status) == "converged"))
  ## warm starts: fewer steps than the full fit from its lm start
  expect_lt(stats::median(jk$steps), fit$optim_par$steps)
  ## one refit by hand: leave out sample 7, start from the fit, as PLN() with init
  df <- data.frame(x = fit$covariates[-7, 2]); df$Y <- fit$responses[-7, ]
  f7 <- PLN(Y ~ x, data = df, control = PLN_param(init = list(
    B = coef(fit), M = fit$var_par$M[-7, ], S = fit$var_par$S[-7, ])))
  ## jackknife variance (n - 1) / n sum (B_i - mean)^2 >= (n - 1) / n (B_7 - mean)^2
  expect_true(all((29 / 30) * (coef(f7) - jk$mean_B)^2 <= jk$var_B + 1e-8))
  expect_equal(dim(jk$vcov_B), c(2L, 2L, 4L))
  expect_equal(jk$vcov_B[1, 1, ], jk$var_B[1, ], ignore_attr = TRUE)
  expect_equal(jk$bias_B, 29 * (jk$mean_B - coef(fit)))
  se_jk <- standard_error(fit, "jackknife")
  expect_identical(dimnames(se_jk), dimnames(coef(fit)))
  ## the jackknife and the sandwich estimate the same variance: same order of magnitude
  ratio <- se_jk / standard_error(fit)
  expect_true(all(ratio > 0.5 & ratio < 2))
  expect_identical(fit$uncertainty$bootstrap$refits, 8L)
  expect_true(all(standard_error(fit, "bootstrap") > 0))
  expect_identical(dim(standard_error(fit, "jackknife", "Omega")), c(4L, 4L))
  expect_identical(dim(vcov(fit, method = "bootstrap")), c(8L, 8L))
})

test_that("a coefficient drifting to -Inf gets NA, the others their sandwich variance", {
  set.seed(5)
  sim <- simulate_pln(60, B = rbind(c(1, 0.5, 0), c(0.2, 0, 0.3)), Sigma = 0.3 * diag(3))
  g <- factor(rep(c("a", "b"), 30))
  Y <- sim$Y
  Y[g == "b", 3] <- 0  # species 3 absent from level b
  df <- data.frame(g = g); df$Y <- Y
  fit <- PLN(Y ~ g, data = df)
  expect_warning(se <- standard_error(fit), "have no finite estimate")
  expect_true(is.na(se["gb", "sp3"]))
  expect_true(all(is.finite(se[, 1:2])))
  expect_true(is.finite(se["(Intercept)", "sp3"]))
})

test_that("summary() prints a coefficient table with z values and the criteria", {
  fit <- small_fit()
  s <- summary(fit)
  expect_s3_class(s, "summary.PLNfit_torch")
  co <- s$coefficients
  expect_identical(nrow(co), 8L)
  expect_equal(co$Estimate, as.vector(coef(fit)))
  expect_equal(co$`z value`, co$Estimate / co$`Std. Error`)
  expect_equal(co$`Pr(>|z|)`, 2 * pnorm(-abs(co$`z value`)))
  expect_identical(s$type, "sandwich")
  out <- capture.output(print(s, max_rows = 3))
  expect_true(any(grepl("Std. Error", out)))
  expect_true(any(grepl("5 more rows", out)))
  expect_true(any(grepl("BIC", out)))
  expect_identical(summary(fit, type = "variational")$type, "variational")
  fitv <- small_fit(list(variational_var = TRUE))
  expect_identical(summary(fitv)$type, "variational")
  expect_error(print(s, max_rows = 0), "`max_rows`")
})

test_that("rPLN() follows PLNmodels: shapes, names, offsets and depths", {
  set.seed(2)
  Y <- rPLN()
  expect_identical(dim(Y), c(10L, 5L))
  expect_identical(dimnames(Y), list(paste0("S", 1:10), paste0("Y", 1:5)))
  expect_identical(dim(attr(Y, "offsets")), c(10L, 5L))
  Y <- rPLN(400, mu = c(0, 1, 2), Sigma = 0.2 * diag(3), depths = c(1e3, 1e5))
  expect_equal(mean(rowSums(Y)), 1e3, tolerance = 0.05)  # the first depth is recycled
  ## the latent means: log of the mean counts minus the offsets, on a large sample
  mu_hat <- log(colMeans(Y / exp(attr(Y, "offsets")[, 1]))) - 0.1
  expect_equal(unname(mu_hat - mu_hat[1]), c(0, 1, 2), tolerance = 0.05)
  expect_error(rPLN(0), "`n`")
  expect_error(rPLN(5, Sigma = matrix(c(1, 2, 2, 1), 2)), "positive semi-definite")
  expect_error(rPLN(5, mu = 1:3), "`mu` must be a vector of length p = 5")
  expect_error(rPLN(5, depths = -1), "`depths`")
})

test_that("plot_coefficients() draws estimates +- qnorm SE and checks its arguments", {
  fit <- small_fit()
  pdf(NULL)
  on.exit(dev.off())
  d <- plot_coefficients(fit, level = 0.9)
  se <- standard_error(fit)
  expect_identical(unique(d$covariate), "x")
  expect_equal(d$upper - d$estimate, qnorm(0.95) * se["x", d$species], ignore_attr = TRUE)
  d2 <- plot_coefficients(fit, covariates = 1:2, species = "sp2", se_type = "variational")
  expect_identical(nrow(d2), 2L)
  expect_error(plot_coefficients(fit, covariates = "z"), "`covariates` names unknown")
  expect_error(plot_coefficients(fit, species = 9), "`species` numbers must be in 1..4")
  expect_error(plot_coefficients(fit, level = 1), "`level` must be below 1")
  expect_error(plot_coefficients(list()), "`fit` must be a fit")
})

test_that("every covariance structure has sandwich and variational standard errors", {
  set.seed(4)
  sim <- simulate_pln(50, B = rbind(c(1, 0.5, 0), c(0.3, -0.2, 0.1)), Sigma = 0.3 * diag(3))
  df <- data.frame(x = sim$X[, 2]); df$Y <- sim$Y
  for (cv in c("diagonal", "spherical", "fixed", "genpop")) {
    ctrl <- switch(cv, fixed = PLN_param(covariance = cv, Omega = diag(3) / 0.3),
                   genpop = PLN_param(covariance = cv, C = 0.5^abs(outer(1:3, 1:3, "-"))),
                   PLN_param(covariance = cv))
    fit <- PLN(Y ~ x, data = df, control = ctrl)
    se <- standard_error(fit)
    expect_true(all(is.finite(se) & se > 0), info = cv)
    expect_identical(dimnames(se), dimnames(coef(fit)))
    expect_true(all(standard_error(fit, "variational") > 0), info = cv)
  }
  ## with a fixed Omega, the sandwich takes Sigma = Omega^-1 (as PLNmodels) and Omega has no SE
  fit$vcov_model <- "fixed"
  expect_error(standard_error(fit, "variational", "Omega"), "Omega is given")
})

test_that("a sandwich too large for the memory limit is an error naming its size", {
  fit <- small_fit()
  old <- options(plntorch.max_memory = 100)
  on.exit(options(old))
  expect_error(standard_error(fit), "needs up to .* GB \\(8 x 8 matrices")
  expect_error(vcov(fit), "use standard_error\\(\\)")
})
