## fit$R_squared (PLNmodels' approximate R^2), fitted() and residuals().

test_that("compute_rsquared() is PLNmodels' formula with a converged Poisson GLM as null model", {
  df <- small_data()
  X <- stats::model.matrix(~ f + x, df)
  O <- matrix(log(df$depth), nrow(df), ncol(df$Y))
  w <- seq(0.5, 2, length.out = nrow(df))
  dat <- list(Y = unclass(df$Y) + 0, X = X, O = O, w = w)
  ## the null model, species by species with glm()
  null <- sapply(seq_len(ncol(dat$Y)), function(j)
    stats::glm.fit(X, dat$Y[, j], weights = w, offset = O[, j], family = stats::poisson(),
                   control = stats::glm.control(epsilon = 1e-12, maxit = 100))$linear.predictors)
  expect_equal(null_model_poisson(dat$Y, X, O, w), null, tolerance = 1e-7, ignore_attr = TRUE)
  ## an intercept only: in closed form
  null1 <- sapply(seq_len(ncol(dat$Y)), function(j)
    stats::glm.fit(X[, 1, drop = FALSE], dat$Y[, j], weights = w, offset = O[, j],
                   family = stats::poisson(),
                   control = stats::glm.control(epsilon = 1e-12, maxit = 100))$linear.predictors)
  expect_equal(null_model_poisson(dat$Y, X[, 1, drop = FALSE], O, w), null1, tolerance = 1e-9,
               ignore_attr = TRUE)
  ll <- function(L) { yl <- ifelse(dat$Y == 0, 0, dat$Y * L); sum(w * rowSums(yl - exp(L))) }
  latent <- log(dat$Y + 0.5)
  expect_equal(compute_rsquared(latent, dat),
               (ll(latent) - ll(null)) / (ll(log(dat$Y)) - ll(null)), tolerance = 1e-9)
  ## the ends of the scale: the null model's latent layer gives 0, the saturated one 1
  expect_equal(compute_rsquared(null, dat), 0, tolerance = 1e-9)
  expect_equal(compute_rsquared(log(dat$Y + 1e-300), dat), 1, tolerance = 1e-9)
})

test_that("R_squared of every fit agrees with PLNmodels' (inst/extdata/rsquared-reference.csv)", {
  f <- system.file("extdata", "rsquared-reference.csv", package = "plntorch")
  if (!nzchar(f)) f <- test_path("..", "..", "inst", "extdata", "rsquared-reference.csv")
  ref <- utils::read.csv(f, stringsAsFactors = FALSE)
  ref <- ref[ref$data %in% c("trichoptera", "barents", "oaks"), ]
  expect_gte(nrow(ref), 5L)
  for (k in seq_len(nrow(ref))) {
    env <- new.env()
    utils::data(list = ref$data[k], package = "plntorch", envir = env)
    dat <- env[[ref$data[k]]]
    form <- stats::as.formula(paste("Abundance ~", ref$rhs[k],
                                    if (ref$offset[k]) "+ offset(log(Offset))"))
    fit <- PLN(form, data = dat)
    expect_true(fit$R_squared > 0 && fit$R_squared < 1)
    ## the fits differ a little (log-likelihoods within the validation tolerance), and so does
    ## R^2: within 3e-3 of PLNmodels' (a null model without the covariates is 5e-3 to 7e-2 off)
    expect_equal(fit$R_squared, ref$PLNmodels_R_squared[k], tolerance = 3e-3,
                 label = paste(ref$data[k], "~", ref$rhs[k]))
  }
})

test_that("fitted() and residuals() follow their definitions", {
  df <- small_data()
  fit <- PLN(Y ~ f + x + offset(log(depth)), data = df)
  Y <- unclass(df$Y) + 0
  A <- exp(fit$latent + fit$var_par$S2 / 2)
  expect_equal(fitted(fit), A)
  expect_identical(fit$responses, Y)
  expect_identical(residuals(fit, type = "response"), Y - fitted(fit))
  expect_identical(residuals(fit), (Y - fitted(fit)) / sqrt(fitted(fit)))
  expect_identical(residuals(fit, "pearson"), residuals(fit))
  expect_identical(dimnames(residuals(fit)), dimnames(Y))
  ## the latent layer fits each count: the Pearson residuals are smaller than Poisson noise
  expect_lt(mean(residuals(fit)^2), 1)
  expect_error(residuals(fit, type = "deviance"), "`type` must be one of \"pearson\", \"response\"")
  ## a subset: counts of the samples fitted only
  sub <- PLN(Y ~ x, data = df, subset = 1:12)
  expect_identical(sub$responses, Y[1:12, ])
  expect_identical(dim(residuals(sub)), c(12L, 4L))
})
