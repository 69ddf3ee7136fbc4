## A status is earned (?PLN, "Convergence"): "converged" only at a stationary point with finite
## objective, gradient and predicted gain; absurd starts are errors naming `init`; float32 fits
## go on to float32's precision; variances that collapse are reported, not "converged".

tricho_formula <- Abundance ~ Wind + Temperature + offset(log(Offset))

test_that("an absurd start given in `init` is an error naming it, for every optimiser", {
  p <- ncol(trichoptera$Abundance); n <- nrow(trichoptera)
  for (opt in c("lbfgs", "rprop"))
    for (init in list(list(B = matrix(8, 3, p)), list(S = matrix(30, n, p)),
                      list(S = matrix(15, n, p))))
      expect_error(PLN(tricho_formula, data = trichoptera,
                       control = PLN_param(optimizer = opt, init = init, maxit = 20)),
                   "^the starting values given in `init` \\(B, M, S\\) are absurd: the ELBO there is -[0-9.]+e\\+[0-9]+, against -[0-9.]+ at the package's own start",
                   info = paste(opt, names(init)))
  m <- PLNtorch$new(Y = trichoptera$Abundance, O = log(trichoptera$Offset),
                    X = stats::model.matrix(~ Wind + Temperature, trichoptera))
  m$S[] <- 30
  expect_error(m$fit(20, optimizer = "lbfgs"),
               "^the current `m\\$B`, `m\\$M` and `m\\$S` are absurd")
})

test_that("sensible starts are accepted: a previous fit, far means, the tutorial start", {
  fit <- PLN(tricho_formula, data = trichoptera)
  again <- PLN(tricho_formula, data = trichoptera,
               control = PLN_param(init = list(B = coef(fit), M = fit$var_par$M, S = fit$var_par$S)))
  expect_identical(again$optim_par$status, "converged")
  expect_gte(again$loglik, fit$loglik - 1e-6 * abs(fit$loglik))
  far <- PLN(tricho_formula, data = trichoptera,
             control = PLN_param(init = list(M = matrix(-100, nrow(trichoptera), 17))))
  expect_identical(far$optim_par$status, "converged")
  expect_equal(far$loglik, fit$loglik, tolerance = 1e-6)
  m <- PLNtorch$new(Y = trichoptera$Abundance, O = log(trichoptera$Offset))
  expect_silent(m$fit(5))
})

test_that("float32 converges at its precision, not short of it with a NaN predicted gain", {
  f64 <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
  f32 <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks,
             control = PLN_param(dtype = "float32"))
  expect_identical(f64$optim_par$status, "converged")
  expect_identical(f32$optim_par$status, "converged")
  expect_true(is.finite(f32$optim_par$predicted_change))
  ## float32's tol is 1e-6 relative: within a few of it (it stopped 9e-4 short, after 14 steps)
  expect_lt(abs(f32$loglik - f64$loglik), 1e-5 * abs(f64$loglik))
})

test_that("collapsing variances of the diagonal structure are reported, not converged", {
  expect_warning(
    fit <- PLN(Abundance ~ site + season, data = mollusk,
               control = PLN_param(covariance = "diagonal")),
    "the diagonal covariance's optimum is on its boundary: the latent variance of species .* collapses to 0")
  op <- fit$optim_par
  expect_identical(op$status, "boundary")
  expect_true(length(op$boundary) >= 4 && all(op$boundary %in% colnames(mollusk$Abundance)))
  expect_gt(op$boundary_gap, 0)
  ## those species' variances are the smallest, and the GLM's maximum is the supremum: a longer
  ## run gets closer to it, never above
  sig <- diag(fit$model_par$Sigma)
  expect_true(max(sig[op$boundary]) < min(sig[setdiff(names(sig), op$boundary)]))
  longer <- suppressWarnings(PLN(Abundance ~ site + season, data = mollusk,
                                 control = PLN_param(covariance = "diagonal", tol = 1e-12,
                                                     maxit = 3000)))
  expect_gt(longer$loglik, fit$loglik)
  expect_lt(longer$loglik, fit$loglik + op$boundary_gap + 1e-3)
  expect_output(print(fit), "approaching the boundary: [0-9]+ variance\\(s\\) collapse to 0")
  ## an interior optimum is still "converged", with no species named
  sph <- PLN(Abundance ~ site + season, data = mollusk, control = PLN_param(covariance = "spherical"))
  expect_identical(sph$optim_par$status, "converged")
  expect_identical(sph$optim_par$boundary, character(0))
})
