## Issue 22, third pass: post-treatments never lose a fit; uncertainty that cannot be estimated is
## not printed as significant.

## the R^2 of a fit with its null model fitted by glm(), species by species
glm_rsquared <- function(fit, X, O) {
  Y <- fit$responses
  O <- matrix(O, nrow(Y), ncol(Y))
  null <- sapply(seq_len(ncol(Y)), function(j)
    suppressWarnings(stats::glm.fit(X, Y[, j], offset = O[, j], family = stats::poisson(),
                                    control = stats::glm.control(epsilon = 1e-10, maxit = 100)))$fitted.values)
  ll <- function(L) sum(ifelse(Y == 0, 0, Y * (L - O)) - exp(L))
  (ll(fit$latent) - ll(log(null))) / (ll(log(Y)) - ll(log(null)))
}

test_that("R^2's null model agrees with glm() on poly(), ns(), POSIXct and offset-shifted designs", {
  data(trichoptera, package = "plntorch", envir = environment())
  tr <- trichoptera
  tr$time <- as.POSIXct("2000-01-01", tz = "UTC") + 3 * 86400 * seq_len(nrow(tr))
  tr$date <- as.Date(tr$time)
  tr$T8 <- tr$Temperature * 1e8
  off <- log(tr$Offset)
  cases <- list(
    list(~ poly(Temperature, 3) + offset(log(Offset)), ~ poly(Temperature, 3), off),
    list(~ splines::ns(Temperature, 3), ~ splines::ns(Temperature, 3), 0),
    list(~ time, ~ time, 0),
    list(~ Temperature + offset(log(Offset) + 1000), ~ Temperature, off + 1000))
  r2 <- numeric(0)
  for (cs in cases) {
    fit <- PLN(stats::update(cs[[1]], Abundance ~ .), data = tr)
    X <- stats::model.matrix(cs[[2]], tr)
    expect_true(is.finite(fit$R_squared), label = deparse(cs[[1]]))
    expect_equal(fit$R_squared, glm_rsquared(fit, X, cs[[3]]), tolerance = 1e-6,
                 label = deparse(cs[[1]]))
    ## and the fitted means of the null model per species
    null <- exp(plntorch:::null_model_poisson(fit$responses, X, matrix(cs[[3]], fit$n, fit$p), rep(1, fit$n)))
    ref <- sapply(seq_len(fit$p), function(j)
      suppressWarnings(stats::glm.fit(X, fit$responses[, j], offset = rep_len(cs[[3]], fit$n),
                                      family = stats::poisson()))$fitted.values)
    expect_equal(unname(null), unname(ref), tolerance = 1e-6)
    r2 <- c(r2, fit$R_squared)
  }
  ## invariant to the covariates' scale and type, and to a shift of the offsets
  fit_T <- PLN(Abundance ~ Temperature, data = tr)
  fit_T8 <- PLN(Abundance ~ T8, data = tr)
  expect_equal(fit_T8$R_squared, fit_T$R_squared, tolerance = 1e-6)
  fit_date <- PLN(Abundance ~ date, data = tr)
  expect_equal(fit_date$R_squared, r2[3], tolerance = 1e-6)
  fit_off <- PLN(Abundance ~ Temperature + offset(log(Offset)), data = tr)
  expect_equal(r2[4], fit_off$R_squared, tolerance = 1e-6)
})

test_that("R^2 never loses a fit: NA with one warning, or not computed when not asked for", {
  data(trichoptera, package = "plntorch", envir = environment())
  ## n = 1: the null model is the saturated one
  one <- trichoptera[1, ]
  one$Abundance <- one$Abundance[, one$Abundance[1, ] > 0, drop = FALSE]
  expect_warning(f1 <- PLN(Abundance ~ 1, data = one),
                 "R_squared is NA: with n = 1 sample")
  expect_true(is.na(f1$R_squared))
  expect_false(is.null(coef(f1)))
  ## config_post = list(rsquared = FALSE): no R^2, no warning
  f2 <- PLN(Abundance ~ poly(Temperature, 3) + offset(log(Offset)), data = trichoptera,
            control = PLN_param(config_post = list(rsquared = FALSE)))
  expect_true(is.na(f2$R_squared))
  ## an error of the null model becomes NA with one warning
  bad <- list(Y = f2$responses, X = matrix("x", f2$n, 2), O = f2$latent * 0, w = rep(1, f2$n))
  expect_warning(r2 <- plntorch:::safe_rsquared(f2$latent, bad),
                 "R_squared is NA: its null model .* could not be fitted")
  expect_true(is.na(r2))
})

test_that("three continuous covariates on different scales: the fit and its R^2 survive", {
  set.seed(22)
  n <- 60; p <- 6
  df <- data.frame(a = stats::rnorm(n, 1e4, 2e3), b = stats::runif(n, 0, 1e-3),
                   c = stats::rnorm(n))
  eta <- outer(1e-4 * (df$a - 1e4) + 1e3 * df$b + 0.3 * df$c, rep(1, p)) +
    matrix(stats::rnorm(n * p, 1, 0.5), n, p)
  df$Y <- matrix(stats::rpois(n * p, exp(eta)), n, p)
  fit <- PLN(Y ~ a + b + c, data = df)
  X <- stats::model.matrix(~ a + b + c, df)
  expect_equal(fit$R_squared, glm_rsquared(fit, X, 0), tolerance = 1e-6)
  expect_true(fit$R_squared > 0 && fit$R_squared < 1)
})

test_that("genpop refuses a C that is not positive semi-definite, naming C", {
  C <- matrix(0.9, 3, 3); diag(C) <- 1; C[1, 3] <- C[3, 1] <- -0.9
  expect_error(PLN_param(covariance = "genpop", C = C),
               "`C` must be positive semi-definite .*smallest eigenvalue is -")
  ## rounding is tolerated: a rank-deficient correlation matrix
  v <- c(1, 1, -1); C0 <- outer(v, v)
  expect_silent(PLN_param(covariance = "genpop", C = C0 + 1e-12))
})

test_that("refits get the fit's design check: a level with one sample gives NA jackknife and bootstrap SEs, one warning", {
  data(trichoptera, package = "plntorch", envir = environment())
  tr <- trichoptera
  tr$g <- factor(c("a", rep(c("b", "c"), 24)))
  expect_warning(fj <- PLN(Abundance ~ g, data = tr,
                           control = PLN_param(config_post = list(jackknife = TRUE))),
                 "1 of the 49 jackknife refits have collinear covariates \\(e.g. without sample '1'.*jackknife standard errors are NA")
  se <- standard_error(fj, "jackknife")
  expect_true(all(is.na(se)))  # with treatment contrasts no coefficient is identified without 'a'
  ## a level with two samples: each refit keeps one, every SE is finite and no warning
  tr$h <- factor(c("a", "a", rep(c("b", "c"), length.out = 47)))
  expect_silent(fh <- PLN(Abundance[, c("Hym", "Psy", "All")] ~ h, data = tr,
                          control = PLN_param(config_post = list(jackknife = TRUE))))
  expect_true(all(is.finite(standard_error(fh, "jackknife"))))
  expect_true(max(standard_error(fh, "jackknife")) < 1e3)
  ## the bootstrap: resamples that miss the level cannot estimate its coefficients
  set.seed(1)
  expect_warning(fb <- PLN(Abundance ~ g, data = tr,
                           control = PLN_param(config_post = list(bootstrap = 8))),
                 "of the 8 bootstrap refits have collinear covariates")
  expect_true(all(is.na(standard_error(fb, "bootstrap")["gb", ])))
  expect_false(is.null(coef(fb)))
  ## batched refits (batch = 3): the rank-deficient resamples are refitted alone; a covariate
  ## they identify keeps a finite SE
  set.seed(3)
  expect_warning(fbb <- PLN(Abundance[, c("Hym", "Psy", "All")] ~ g + Temperature, data = tr,
                            control = PLN_param(config_post = list(bootstrap = 6, batch = 3))),
                 "bootstrap refits have collinear covariates")
  se <- standard_error(fbb, "bootstrap")
  expect_true(all(is.na(se[c("(Intercept)", "gb", "gc"), ])))
  expect_true(all(is.finite(se["Temperature", ]) & se["Temperature", ] > 0))
  expect_equal(sum(fbb$uncertainty$bootstrap$status), 6)
})

test_that("too few samples for an estimator: an error naming it, before fitting; summary() shows NA, no stars", {
  data(trichoptera, package = "plntorch", envir = environment())
  one <- trichoptera[1, ]
  one$Abundance <- one$Abundance[, one$Abundance[1, ] > 0, drop = FALSE]
  expect_error(PLN(Abundance ~ 1, data = one, control = PLN_param(config_post = list(bootstrap = 10))),
               "`config_post` asks for bootstrap: the bootstrap standard errors need at least 2 samples")
  expect_error(PLN(Abundance[, c("Hym", "Psy", "All")] ~ 1, data = trichoptera[1:2, ],
                   control = PLN_param(config_post = list(jackknife = TRUE))),
               "`config_post` asks for jackknife: the jackknife standard errors need at least 3 samples")
  f3 <- suppressWarnings(PLN(Abundance[, 1:5] ~ Temperature + Wind, data = trichoptera[1:3, ]))
  for (type in c("sandwich", "variational"))
    expect_error(standard_error(f3, type), sprintf("`type` = \"%s\": the %s standard errors need at least 4 samples", type, type))
  expect_warning(s <- summary(f3), "need at least 4 samples.*The standard errors are NA")
  expect_true(all(is.na(s$coefficients$`z value`)) && all(is.na(s$coefficients$`Pr(>|z|)`)))
  out <- utils::capture.output(print(s))
  expect_false(any(grepl("\\*", out)))
})

test_that("summary() shows no z value or stars for a zero or non-finite standard error", {
  data(trichoptera, package = "plntorch", envir = environment())
  fit <- PLN(Abundance[, 1:4] ~ Temperature, data = trichoptera,
             control = PLN_param(config_post = list(variational_var = TRUE)))
  u <- fit$uncertainty
  u$variational$var_B[1, 1] <- 0
  u$variational$var_B[2, 2] <- Inf
  fit$uncertainty <- u
  co <- summary(fit, type = "variational")$coefficients
  expect_true(is.na(co$`z value`[1]) && is.na(co$`Pr(>|z|)`[1]))
  expect_true(is.na(co$`z value`[4]) && is.na(co$`Pr(>|z|)`[4]))
  expect_true(all(is.finite(co$`z value`[-c(1, 4)])))
})

test_that("variational SEs of coefficients with no finite estimate are NA, as the sandwich's (oaks ~ tree)", {
  data(oaks, package = "plntorch", envir = environment())
  fit <- PLN(Abundance ~ tree, data = oaks)
  expect_warning(v <- standard_error(fit, "variational"), "their variational standard errors are NA")
  expect_warning(s <- standard_error(fit), "their sandwich standard errors are NA")
  expect_identical(is.na(v), is.na(s))
  expect_lt(max(v, na.rm = TRUE), 10)   # was 4.9e35
  ## and the scale of a covariate changes neither which nor how large (variational)
  X <- fit$covariates
  A <- as.matrix(fit$fitted)
  r1 <- plntorch:::post_variational_B(X, A, rep(1, fit$n))
  r2 <- plntorch:::post_variational_B(X %*% diag(c(1, 1e8, 1e-8)), A, rep(1, fit$n))
  expect_identical(r1$ok, r2$ok)
  expect_equal(r2$var[, r2$ok], r1$var[, r1$ok] * c(1, 1e-16, 1e16), tolerance = 1e-6)
})

test_that("coef(type = 'covariance') is Sigma; confint() gives the Wald intervals of B", {
  data(trichoptera, package = "plntorch", envir = environment())
  fit <- PLN(Abundance[, 1:4] ~ Temperature, data = trichoptera)
  expect_identical(coef(fit, type = "covariance"), sigma(fit))
  expect_identical(coef(fit), fit$model_par$B)
  expect_error(coef(fit, type = "sigma"), "`type`")
  ci <- confint(fit)
  expect_identical(dim(ci), c(8L, 2L))
  expect_identical(colnames(ci), c("2.5 %", "97.5 %"))
  se <- as.vector(standard_error(fit))
  expect_equal(unname(ci[, 2] - ci[, 1]), 2 * stats::qnorm(0.975) * se)
  expect_equal(unname(rowMeans(ci)), as.vector(coef(fit)))
  ci90 <- confint(fit, parm = "Hym_Temperature", level = 0.9, type = "variational")
  expect_identical(rownames(ci90), "Hym_Temperature")
  expect_equal(unname(ci90[1, 2] - ci90[1, 1]),
               2 * stats::qnorm(0.95) * standard_error(fit, "variational")["Temperature", "Hym"])
  expect_error(confint(fit, parm = "nope"), "`parm` names unknown coefficient")
  expect_error(confint(fit, level = 2), "`level` must be a number between 0 and 1")
  expect_error(confint(fit, type = "jackknife"), "this fit has no jackknife estimate")
})
