## One short fit of oaks shared by the shape tests (convergence is tested elsewhere); it stops
## at maxit, and says so.
fit_short <- function() {
  expect_warning(fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
                            control = PLN_param(maxit = 20, backend = "eager")),
                 "stopped at maxit = 20 steps before converging")
  fit
}

test_that("the fit object has PLNmodels' names, shapes and dimnames", {
  fit <- fit_short()
  expect_s3_class(fit, "PLNfit_torch")
  expect_true(all(c("n", "p", "d", "model_par", "var_par", "latent", "latent_pos", "fitted",
                    "loglik", "loglik_vec", "nb_param", "BIC", "ICL", "entropy", "criteria",
                    "optim_par", "call", "formula", "terms", "xlevels", "contrasts") %in%
                    names(fit)))
  expect_identical(c(fit$n, fit$p, fit$d), c(116L, 114L, 1L))
  samples <- rownames(oaks); species <- colnames(oaks$Abundance)
  expect_identical(dimnames(fit$model_par$B), list("(Intercept)", species))
  expect_identical(dimnames(fit$model_par$Sigma), list(species, species))
  expect_identical(dimnames(fit$model_par$Omega), list(species, species))
  for (m in list(fit$var_par$M, fit$var_par$S2, fit$var_par$S, fit$latent, fit$latent_pos,
                 fit$fitted))
    expect_identical(dimnames(m), list(samples, species))
  expect_identical(names(fit$loglik_vec), samples)
  expect_true(all(fit$var_par$S2 > 0))
  expect_true(isSymmetric(unname(fit$model_par$Sigma)))
  expect_equal(unname(fit$model_par$Sigma %*% fit$model_par$Omega), diag(114), tolerance = 1e-6)

  op <- fit$optim_par
  expect_identical(names(op), c("steps", "objective", "status", "backend", "device", "dtype",
                                "optimizer", "lr", "tol", "last_change", "predicted_change",
                                "boundary", "boundary_gap", "seconds", "setup_seconds", "threads"))
  expect_identical(op$boundary, character(0))  # a full covariance: no boundary check
  expect_identical(op$steps, 20L)
  expect_length(op$objective, 21L)  # the start and each step
  expect_identical(op$status, "maxit")
  expect_gt(op$last_change, op$tol)
  expect_identical(c(op$backend, op$device, op$dtype, op$optimizer),
                   c("eager", "cpu", "float64", "lbfgs"))
  expect_true(op$seconds >= 0)
})

test_that("criteria follow PLNmodels' formulas", {
  fit <- fit_short()
  n <- 116; p <- 114; d <- 1
  expect_identical(fit$nb_param, p * d + p * (p + 1) / 2)
  expect_equal(fit$loglik, sum(fit$loglik_vec))
  expect_equal(fit$BIC, fit$loglik - 0.5 * log(n) * fit$nb_param)
  expect_equal(fit$entropy, 0.5 * sum(log(2 * pi * exp(1) * fit$var_par$S2)))
  expect_equal(fit$ICL, fit$BIC - fit$entropy)
  expect_equal(fit$criteria, data.frame(nb_param = fit$nb_param, loglik = fit$loglik,
                                        BIC = fit$BIC, ICL = fit$ICL))
  X <- matrix(1, n, 1)
  ## PLNmodels 1.3's convention: var_par$M includes X B, latent_pos is M - X B
  expect_equal(unname(fit$latent_pos), unname(fit$var_par$M - X %*% fit$model_par$B))
  expect_equal(unname(fit$latent), unname(log(unclass(oaks$Offset)) + fit$var_par$M))
  expect_equal(fit$fitted, exp(fit$latent + fit$var_par$S2 / 2))
  ## the engine's loglik_vec is PLNmodels' J_i at the returned parameters
  expect_equal(unname(fit$loglik_vec),
               unname(ref_loglik_vec(unclass(oaks$Abundance), log(unclass(oaks$Offset)), X,
                                     fit$model_par$B, fit$latent_pos, fit$var_par$S,
                                     fit$model_par$Omega)), tolerance = 1e-8)
})

test_that("S3 methods extract what they should", {
  fit <- fit_short()
  expect_identical(coef(fit), fit$model_par$B)
  expect_identical(sigma(fit), fit$model_par$Sigma)
  expect_identical(fitted(fit), fit$fitted)
  expect_identical(nobs(fit), 116L)
  ll <- logLik(fit)
  expect_s3_class(ll, "logLik")
  expect_equal(as.numeric(ll), fit$loglik)
  expect_identical(attr(ll, "df"), fit$nb_param)
  expect_identical(attr(ll, "nobs"), 116L)
  expect_equal(stats::BIC(fit), -2 * fit$loglik + log(116) * fit$nb_param)
  ## the two conventions of ?PLNfit_torch-methods, "Information criteria": PLNmodels' fit$BIC
  ## (larger is better) and stats::BIC() (smaller is better)
  expect_equal(stats::BIC(fit), -2 * fit$BIC)
  expect_equal(stats::AIC(fit), -2 * fit$loglik + 2 * fit$nb_param)
  expect_equal(fit$ICL, fit$BIC - fit$entropy)
  expect_output(print(fit), "Poisson log-normal fit")
  expect_output(print(fit), "backend eager, device cpu, float64")
  expect_output(print(fit), "stopped at maxit")
  pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_invisible(plot(fit))
  expect_identical(dim(vcov(fit)), c(114L, 114L)) # PLNmodels' shape: one block per species
})

test_that("predict() gives the latent mean and the expected counts of new samples", {
  fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
  nd <- oaks[c(1, 50, 100), ]
  link <- predict(fit, newdata = nd)
  X <- model.matrix(~ tree, nd)
  expect_equal(link, log(unclass(nd$Offset)) + X %*% coef(fit), ignore_attr = TRUE)
  expect_identical(dimnames(link), list(rownames(nd), colnames(oaks$Abundance)))
  resp <- predict(fit, newdata = nd, type = "response")
  expect_equal(resp, exp(sweep(link, 2, diag(sigma(fit)) / 2, "+")))
  ## a newdata holding one level of the factor keeps the fit's coding
  nd_res <- oaks[oaks$tree == "resistant", ][1:2, ]
  expect_equal(predict(fit, newdata = nd_res)[, 1],
               log(nd_res$Offset[, 1]) + sum(coef(fit)[c(1, 3), 1]), ignore_attr = TRUE)
  ## without newdata: the fitted latent layer and fitted counts
  expect_identical(predict(fit), fit$latent)
  expect_identical(predict(fit, type = "response"), fitted(fit))
  expect_error(predict(fit, newdata = oaks[1:2, c("tree", "Sample")]), "`newdata`")
  expect_error(predict(fit, type = "probability"))
})

test_that("predict() names a variable of the model that `newdata` lacks", {
  ## an offset taken from a local variable of the function that fitted: its rows are the fit's
  fit_local <- function() {
    lo <- log(oaks$Offset)
    PLN(Abundance ~ 1 + offset(lo), data = oaks)
  }
  fit <- fit_local()
  expect_error(predict(fit, newdata = oaks[1:3, ]),
               "`newdata` has no column `lo`, a variable of the model \\(in offset\\(lo\\)\\); the `lo` of the formula's environment has 116 rows, not the 3 of `newdata`")
  expect_equal(predict(fit, newdata = oaks), fit$latent - fit$latent_pos, ignore_attr = TRUE)
  fit2 <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
  expect_error(predict(fit2, newdata = oaks[1:2, c("tree", "Sample")]),
               "`newdata` has no column `Offset`.*add it to `newdata`")
})
