## Formula handling: what reaches the engine must be what PLNmodels would build.
ctrl_quick <- PLN_param(backend = "eager")

test_that("offsets, factors and interactions become O and X as in PLNmodels", {
  df <- small_data()
  fit <- PLN(Y ~ f * x + offset(log(depth)), data = df, control = ctrl_quick)
  X <- model.matrix(~ f * x, df)
  expect_identical(rownames(coef(fit)), colnames(X))
  expect_identical(fit$d, ncol(X))
  expect_equal(unname(fit$latent - fit$var_par$M), matrix(log(df$depth), 30, 4))
  expect_identical(fit$xlevels, list(f = c("a", "b", "c")))
  expect_identical(fit$contrasts, list(f = "contr.treatment"))

  ## several offset() terms are summed; a matrix offset is taken whole
  df$half <- df$depth / 2
  fit2 <- PLN(Y ~ 1 + offset(log(half)) + offset(rep(log(2), 30)), data = df, control = ctrl_quick)
  expect_equal(unname(fit2$latent - fit2$var_par$M), matrix(log(df$depth), 30, 4))
  df$Omat <- matrix(log(df$depth), 30, 4) + matrix(1:4, 30, 4, byrow = TRUE)
  fit3 <- PLN(Y ~ 1 + offset(Omat), data = df, control = ctrl_quick)
  expect_equal(unname(fit3$latent - fit3$var_par$M), unname(df$Omat))

  ## no offset term: O = 0
  fit4 <- PLN(Y ~ x, data = df, control = ctrl_quick)
  expect_equal(unname(fit4$latent), unname(fit4$var_par$M))
})

test_that("the same O and X through PLN() and through PLNtorch give the same fit", {
  df <- small_data()
  ctrl <- PLN_param(maxit = 40, backend = "eager", init = "tutorial", tol = 0)
  fit <- PLN(Y ~ f + offset(log(depth)), data = df, control = ctrl)
  m <- PLNtorch$new(Y = df$Y, O = log(df$depth), X = model.matrix(~ f, df), backend = "eager")
  m$fit(N_iter = 40, lr = fit$optim_par$lr, tol = 0, optimizer = fit$optim_par$optimizer)
  ## lbfgs records the start too; PLNtorch keeps the ELBO after each step
  expect_equal(fit$optim_par$objective[-1], m$ELBO_list)
  expect_equal(coef(fit), m$B)
})

test_that("subset selects samples and drops unused levels", {
  df <- small_data()
  fit <- PLN(Y ~ f + offset(log(depth)), data = df, subset = f != "c", control = ctrl_quick)
  expect_identical(fit$n, 20L)
  expect_identical(rownames(fit$var_par$M), rownames(df)[df$f != "c"])
  expect_identical(rownames(coef(fit)), c("(Intercept)", "fb"))
  fit_idx <- PLN(Y ~ x + offset(log(depth)), data = df, subset = 1:12, control = ctrl_quick)
  expect_identical(fit_idx$n, 12L)
})

test_that("a formula without data finds its variables in its environment", {
  df <- small_data()
  Ymat <- df$Y; xv <- df$x; lo <- log(df$depth)
  fit <- PLN(Ymat ~ xv + offset(lo), control = ctrl_quick)
  expect_identical(rownames(coef(fit)), c("(Intercept)", "xv"))
  expect_identical(colnames(coef(fit)), colnames(df$Y))
  form <- Y ~ x + offset(log(depth))
  expect_identical(PLN(form, data = df, control = ctrl_quick)$formula, form)
})

test_that("weights enter the ELBO and the loglik", {
  df <- small_data()
  w <- rep(c(1, 2, 3), 10)
  fit <- PLN(Y ~ x + offset(log(depth)), data = df, weights = w, control = ctrl_quick)
  expect_equal(fit$loglik, sum(w * fit$loglik_vec))
  expect_identical(fit$weights, w)
  ## weights can name a column of data
  df$w <- w
  fit_col <- PLN(Y ~ x + offset(log(depth)), data = df, weights = w, control = ctrl_quick)
  expect_equal(fit_col$loglik, fit$loglik)
})

test_that("integer weights fit like duplicated rows", {
  df <- small_data()
  w <- rep(c(1, 2), 15)
  ctrl <- PLN_param(maxit = 5000, tol = 1e-12)
  fit_w <- PLN(Y ~ x + offset(log(depth)), data = df, weights = w, control = ctrl)
  dup <- df[rep(seq_len(nrow(df)), w), ]
  fit_d <- PLN(Y ~ x + offset(log(depth)), data = dup, control = ctrl)
  expect_equal(fit_w$loglik, fit_d$loglik, tolerance = 1e-5)
  expect_equal(coef(fit_w), coef(fit_d), tolerance = 1e-3)
  expect_equal(sigma(fit_w), sigma(fit_d), tolerance = 1e-3)
})

test_that("`subset` forms that model.frame() would misread are named in the error", {
  df <- small_data()
  expect_error(PLN(Y ~ x, data = df, subset = c(NA, rep(TRUE, 29))),
               "`subset` is NA at position 1: give TRUE or FALSE for every sample")
  expect_error(PLN(Y ~ x, data = df, subset = c(1:5, 100)),
               "`subset` selects row\\(s\\) 100 outside 1..30")
  expect_error(PLN(Y ~ x, data = df, subset = c(3, NA)), "`subset` is NA at position 2")
  expect_error(PLN(Y ~ x, data = df, subset = c(TRUE, FALSE)),
               "`subset` must hold one TRUE or FALSE per sample \\(n = 30\\); got 2")
  expect_error(PLN(Y ~ x, data = df, subset = c(-1, 2)), "`subset` mixes positive and negative")
  expect_error(PLN(Y ~ x, data = df, subset = c(1.5, 2)), "`subset` must hold whole row numbers")
  expect_error(PLN(Y ~ x, data = df, subset = c("s1", "zz")), "`subset` names row\\(s\\).*: zz")
  expect_error(PLN(Y ~ x, data = df, subset = f), "`subset` must be a logical vector.*factor")
  expect_error(PLN(Y ~ x, data = df, subset = nope > 0), "`subset` could not be evaluated.*nope")
  expect_error(PLN(Y ~ x, data = df, subset = -(1:30)), "`subset` selects no sample")
  ## the forms lm() takes work
  expect_identical(PLN(Y ~ x, data = df, subset = -(1:5), control = ctrl_quick)$n, 25L)
  expect_identical(PLN(Y ~ x, data = df, subset = c("s1", "s3", "s5", "s7"), control = ctrl_quick)$n, 4L)
  expect_identical(PLN(Y ~ x, data = df, subset = TRUE, control = ctrl_quick)$n, 30L)
  local_idx <- function() { idx <- 1:12; PLN(Y ~ x, data = df, subset = idx, control = ctrl_quick) }
  expect_identical(local_idx()$n, 12L)
})

test_that("formulas written with `$`, as lm() takes them, work", {
  df <- small_data()
  fit <- PLN(df$Y ~ df$x + offset(log(df$depth)), control = ctrl_quick)
  ref <- PLN(Y ~ x + offset(log(depth)), data = df, control = ctrl_quick)
  expect_identical(rownames(coef(fit)), c("(Intercept)", "df$x"))
  expect_equal(unname(coef(fit)), unname(coef(ref)))
  expect_identical(PLN(df$Y ~ 1, control = ctrl_quick)$p, 4L)
  fit_oaks <- PLN(oaks$Abundance ~ oaks$tree)
  expect_identical(rownames(coef(fit_oaks)),
                   c("(Intercept)", "oaks$treeintermediate", "oaks$treeresistant"))
  expect_error(PLN(nodf$Y ~ 1), "`formula` names variable\\(s\\).*: nodf")
})

test_that("`.` stands for the other columns of `data`; matrix columns are refused by name", {
  expect_error(PLN(Abundance ~ ., data = oaks),
               "`formula` uses `.`.*matrix column\\(s\\) Offset.*Abundance ~ . - Offset")
  expect_error(PLN(Y ~ .), "`formula` uses `.`.*`data` is missing")
  df <- small_data()
  fit <- PLN(Y ~ . - depth + offset(log(depth)), data = df, control = ctrl_quick)
  ref <- PLN(Y ~ f + x + offset(log(depth)), data = df, control = ctrl_quick)
  expect_identical(coef(fit), coef(ref))
  df$Omat <- df$Y * 2
  expect_error(PLN(Y ~ ., data = df), "matrix column\\(s\\) Omat")
})

test_that("duplicated species names are made unique, with a warning", {
  Y <- small_data()$Y
  colnames(Y)[2] <- colnames(Y)[1]
  expect_warning(fit <- PLN(Y ~ 1, control = ctrl_quick),
                 "the response `Y` has duplicated species \\(column\\) names \\(sp1\\): made unique.*sp1.1")
  expect_identical(colnames(coef(fit)), c("sp1", "sp1.1", "sp3", "sp4"))
  expect_identical(rownames(sigma(fit)), colnames(coef(fit)))
  expect_warning(m <- PLNtorch$new(Y), "`Y` has duplicated species")
  expect_identical(colnames(m$B), c("sp1", "sp1.1", "sp3", "sp4"))
  ## rows repeated by a subset keep the data frame's unique row names, without a word
  df <- small_data()
  expect_silent(fit <- PLN(Y ~ 1, data = df, subset = c(1, 1, 2), control = ctrl_quick))
  expect_identical(rownames(fit$var_par$M), c("s1", "s1.1", "s2"))
})

test_that("the fit does not depend on the scale of the weights (lbfgs and Adam)", {
  df <- small_data()
  fit1 <- PLN(Y ~ x + offset(log(depth)), data = df, weights = rep(1, 30))
  fit_tiny <- PLN(Y ~ x + offset(log(depth)), data = df, weights = rep(1e-12, 30))
  expect_identical(fit_tiny$optim_par$status, "converged")
  expect_equal(coef(fit_tiny), coef(fit1), tolerance = 1e-8)
  expect_equal(fit_tiny$optim_par$objective, 1e-12 * fit1$optim_par$objective, tolerance = 1e-8)
  ## Adam's eps (1e-8) swamped gradients of weights 1e-12: 3000 steps left B 4.8 away on oaks
  adam <- PLN_param(optimizer = "adam", lr = 0.05, maxit = 300, tol = 0)
  a1 <- PLN(Y ~ x + offset(log(depth)), data = df, control = adam)
  a_pow2 <- PLN(Y ~ x + offset(log(depth)), data = df, weights = rep(2^-40, 30), control = adam)
  expect_identical(coef(a_pow2), coef(a1))
  expect_identical(a_pow2$optim_par$objective, 2^-40 * a1$optim_par$objective)
  a_tiny <- PLN(Y ~ x + offset(log(depth)), data = df, weights = rep(1e-12, 30), control = adam)
  expect_equal(coef(a_tiny), coef(a1), tolerance = 1e-3)
  expect_equal(a_tiny$loglik, 1e-12 * a1$loglik, tolerance = 1e-4)
})
