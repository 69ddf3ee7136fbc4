## The default fit reaches the optimum on every validation data set: at or above the better of
## PLNmodels 1.3.2's builtin and nlopt log-likelihoods (inst/extdata/validation-reference.csv),
## less max(0.1, 1e-5 |loglik|) (microcosm: 2.2 units), with an ELBO that rises at every step and
## a stop at a stationary point.
reference <- utils::read.csv(system.file("extdata", "validation-reference.csv", package = "plntorch"))

validation_fit <- function(row, ...) {
  env <- new.env()
  utils::data(list = row$data, package = "plntorch", envir = env)
  rhs <- if (row$offset) paste(row$rhs, "+ offset(log(Offset))") else row$rhs
  PLN(stats::as.formula(paste("Abundance ~", rhs)), data = env[[row$data]], ...)
}

expect_stationary_rise <- function(fit, info) {
  op <- fit$optim_par
  expect_identical(op$status, "converged", info = info)
  expect_true(all(diff(op$objective) > 0), info = info)
  expect_lt(op$last_change, op$tol)
  expect_lt(op$predicted_change, op$tol)
  expect_equal(fit$loglik, op$objective[length(op$objective)], tolerance = 1e-10, info = info)
}

test_that("the default fit is at or above PLNmodels' best on every validation set", {
  for (i in seq_len(nrow(reference))) {
    row <- reference[i, ]
    info <- paste(row$data, "~", row$rhs)
    fit <- validation_fit(row)
    tol <- if (row$data == "microcosm") 2.2 else max(0.1, 1e-5 * abs(row$best_loglik))
    expect_gte(fit$loglik, row$best_loglik - tol)
    expect_stationary_rise(fit, info)
  }
})

test_that("every backend runs the same default optimiser to the same optimum", {
  row <- reference[reference$data == "mollusk" & reference$rhs != "1", ]
  fits <- lapply(pln_backends()$backends, function(b)
    validation_fit(row, control = PLN_param(backend = b)))
  for (f in fits) {
    expect_stationary_rise(f, f$optim_par$backend)
    expect_equal(f$loglik, fits[[1]]$loglik, tolerance = 1e-8)
  }
})

test_that("a fit stopped by maxit warns with the remaining change, and can go on", {
  expect_warning(fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks,
                            control = PLN_param(maxit = 15)),
                 "stopped at maxit = 15 steps before converging: the ELBO's last relative change was [0-9.e-]+ and the next step's predicted one [0-9.e-]+ \\(tol = 1e-08\\)")
  expect_identical(fit$optim_par$status, "maxit")
  expect_true(all(diff(fit$optim_par$objective) > 0))
  more <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks,
              control = PLN_param(init = list(B = coef(fit), M = fit$var_par$M, S = fit$var_par$S)))
  expect_identical(more$optim_par$status, "converged")
  expect_gt(more$loglik, fit$loglik)
  expect_equal(more$optim_par$objective[1], fit$loglik, tolerance = 1e-10)
})

test_that("covariates on any scale give the fit of their rescaled version", {
  df <- oaks
  df$dist <- df$distTOground
  df$dist_big <- df$distTOground * 1e7
  df$date <- as.POSIXct("2024-06-01", tz = "UTC") + 86400 * df$distTOground
  base <- PLN(Abundance ~ dist + offset(log(Offset)), data = df)
  intercept_only <- PLN(Abundance ~ 1 + offset(log(Offset)), data = df)
  for (v in c("dist_big", "date")) {
    fit <- PLN(stats::as.formula(paste("Abundance ~", v, "+ offset(log(Offset))")), data = df)
    expect_equal(fit$loglik, base$loglik, tolerance = 1e-7, info = v)
    expect_gte(fit$loglik, intercept_only$loglik)
    expect_equal(unname(fitted(fit)), unname(fitted(base)), tolerance = 1e-5, info = v)
  }
})

test_that("float32 with counts near 1e8 gives float64's log-likelihood, not an impossible one", {
  set.seed(3)
  n <- 40; p <- 5
  depth <- round(runif(n, 5e7, 2e8))
  Y <- matrix(rpois(n * p, depth %o% c(0.1, 0.2, 0.3, 0.15, 0.25) * exp(rnorm(n * p, 0, 0.3))), n, p)
  f64 <- PLN(Y ~ 1 + offset(log(depth)))
  for (b in pln_backends()$backends) {
    f32 <- PLN(Y ~ 1 + offset(log(depth)), control = PLN_param(backend = b, dtype = "float32"))
    expect_lt(f32$loglik, 0)
    expect_equal(f32$loglik, f64$loglik, tolerance = 1e-5, info = b)
  }
})
