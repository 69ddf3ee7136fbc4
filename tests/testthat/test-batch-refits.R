## Batched refits (PLN_param(config_post = list(batch = ))): the jackknife's and the bootstrap's
## refits solved several at once in one engine call, each a weight vector over all the samples
## (0: left out), against one engine call per refit on the rows it keeps (batch = 0).

## trichoptera's species present in most samples: coefficients that the data determine (a
## species seen in 3 samples has a likelihood flat in its intercept, which a tolerance on the ELBO
## leaves undetermined to ~1e-3 relative, whatever the optimiser), all 49 samples.
tricho_small <- function(p = 6) {
  e <- new.env()
  data("trichoptera", package = "plntorch", envir = e)
  tr <- e$trichoptera
  keep <- order(colSums(tr$Abundance > 0), decreasing = TRUE)[seq_len(p)]
  tr$Abundance <- unclass(tr$Abundance)[, keep]
  tr
}

## Both ways stop within the optimiser's tolerance of each refit's optimum: a tight tol makes
## that distance small next to the differences tested.
fit_refits <- function(dat, cfg, seed = 1, tol = 1e-12, ...) {
  set.seed(seed)  # the bootstrap's draws
  PLN(Abundance ~ Wind + offset(log(Offset)), data = dat,
      control = PLN_param(config_post = cfg, tol = tol, ...))
}

rel_diff <- function(a, b) max(abs(a - b)) / max(abs(b))

test_that("batched jackknife refits equal one refit per engine call, for any batch size", {
  dat <- tricho_small()
  seq_fit <- fit_refits(dat, list(jackknife = TRUE, batch = 0))
  ref <- seq_fit$uncertainty$jackknife
  expect_identical(ref$batch, 0L)
  expect_true(all(names(ref$status) == "converged"))
  for (b in c(1L, 2L, 7L)) {  # 7 does not divide the 49 refits
    fit <- fit_refits(dat, list(jackknife = TRUE, batch = b))
    jk <- fit$uncertainty$jackknife
    expect_identical(jk$batch, b)
    expect_identical(jk$refits, 49L)
    expect_identical(length(jk$steps), 49L)
    expect_true(all(jk$steps >= 1L))
    expect_identical(names(jk$status), "converged")
    expect_identical(dim(jk$vcov_B), dim(ref$vcov_B))
    expect_identical(dimnames(jk$var_B), dimnames(ref$var_B))
    ## B within 1e-6 (Omega 1e-5); the variances and the bias are sums of the refits' small deviations from
    ## their mean (the bias times n - 1), which magnify the refits' differences n-fold and more
    expect_lt(rel_diff(jk$mean_B, ref$mean_B), 1e-6)
    expect_lt(rel_diff(jk$mean_Omega, ref$mean_Omega), 1e-5)
    expect_lt(rel_diff(jk$var_B, ref$var_B), 1e-4)
    expect_lt(rel_diff(jk$var_Omega, ref$var_Omega), 1e-4)
    expect_lt(rel_diff(jk$bias_B, ref$bias_B), 1e-2)
  }
})

test_that("batched bootstrap refits equal one refit per engine call", {
  dat <- tricho_small()
  ref <- fit_refits(dat, list(bootstrap = 6, batch = 0), seed = 7)$uncertainty$bootstrap
  bt <- fit_refits(dat, list(bootstrap = 6, batch = 4), seed = 7)$uncertainty$bootstrap
  expect_identical(bt$batch, 4L)
  expect_identical(bt$refits, 6L)
  expect_identical(names(bt$status), "converged")
  expect_lt(rel_diff(bt$mean_B, ref$mean_B), 1e-6)
  expect_lt(rel_diff(bt$mean_Omega, ref$mean_Omega), 1e-5)
  expect_lt(rel_diff(bt$var_B, ref$var_B), 1e-4)
  expect_lt(rel_diff(bt$var_Omega, ref$var_Omega), 1e-4)
  ## "auto" on the CPU: one refit per engine call (batching measured slower there)
  auto <- fit_refits(dat, list(bootstrap = 6), seed = 7)$uncertainty$bootstrap
  expect_identical(auto$batch, 0L)
  expect_lt(rel_diff(auto$var_B, ref$var_B), 1e-12)
})

test_that("a sample of weight 0 is removed from a batched refit, whatever its values", {
  dat <- tricho_small()
  fit <- fit_refits(dat, list())
  dbl <- plntorch:::as_double_matrix
  Y <- dbl(fit$responses); X <- dbl(fit$covariates); n <- nrow(Y)
  O <- log(dat$Offset) %o% rep(1, ncol(Y))
  ## sample 5 left out of every refit; 2 and 9 of the second too; sample 1 counted twice in the third
  W <- matrix(1, n, 3); W[5, ] <- 0; W[c(2, 9), 2] <- 0; W[1, 3] <- 2
  ctrl <- plntorch:::resolve_control(PLN_param(tol = 1e-12))
  M <- dbl(fit$latent_pos); S <- dbl(fit$var_par$S)
  run <- function(Y, O, M, S) plntorch:::pln_refit_engine(
    Y, O, X, W, dbl(coef(fit)), M, S, dbl(fit$model_par$Omega), ctrl, 0)
  a <- run(Y, O, M, S)
  expect_identical(a$status, rep("converged", 3))
  ## its counts, offsets and starting values far off: the same refits, to rounding
  Y[5, ] <- 1e4; O[5, ] <- 8; M[5, ] <- -3; S[5, ] <- 5
  b <- run(Y, O, M, S)
  expect_identical(b$steps, a$steps)
  expect_equal(b$B, a$B, tolerance = 1e-12)
  expect_equal(b$Omega_dev_sum, a$Omega_dev_sum, tolerance = 1e-12)
  ## the refit without sample 5 is the fit of the other samples, started from the fit
  start <- function(rows) list(B = coef(fit), M = fit$var_par$M[rows, ], S = fit$var_par$S[rows, ])
  refit_rows <- function(rows) coef(PLN(Abundance ~ Wind + offset(log(Offset)), data = dat[rows, ],
                                        control = PLN_param(tol = 1e-12, init = start(rows))))
  expect_lt(rel_diff(a$B[, 1], as.vector(refit_rows(-5))), 1e-6)
  expect_lt(rel_diff(a$B[, 2], as.vector(refit_rows(-c(2, 5, 9)))), 1e-6)
  ## a weight of 2 counts the sample twice
  expect_lt(rel_diff(a$B[, 3], as.vector(refit_rows(c(1, 1, seq_len(n)[-c(1, 5)])))), 1e-6)
})

test_that("config_post$batch is checked, and refused where batched refits do not apply", {
  expect_identical(PLN_param()$config_post$batch, "auto")
  expect_identical(PLN_param(config_post = list(batch = 4))$config_post$batch, 4L)
  for (bad in list(-1, 2.5, c(1, 2), "yes", NA, Inf, TRUE))
    expect_error(PLN_param(config_post = list(batch = bad)),
                 "`config_post\\$batch` must be \"auto\", 0 .* or a positive whole number")
  dat <- tricho_small()
  expect_error(fit_refits(dat, list(jackknife = TRUE, batch = 2), covariance = "diagonal"),
               "batched refits need optimizer \"lbfgs\" and covariance \"full\"")
  ## "auto" there: one refit per engine call
  diag_fit <- fit_refits(dat, list(jackknife = TRUE), covariance = "diagonal")
  expect_identical(diag_fit$uncertainty$jackknife$batch, 0L)
  ## a batch larger than the memory budget: a message naming the size
  old <- options(plntorch.max_memory = 5e5)
  on.exit(options(old))
  expect_error(fit_refits(dat, list(jackknife = TRUE, batch = 20)),
               "not enough memory on cpu for 20 refit\\(s\\) at once: each needs about")
})
