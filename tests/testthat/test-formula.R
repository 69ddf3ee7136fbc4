## Formula handling: what reaches the engine must be what PLNmodels would build.
ctrl_quick <- PLN_param(backend = "eager")

test_that("offsets, factors and interactions become O and X as in PLNmodels", {
  df <- small_data()
  fit <- PLN(Y ~ f * x + offset(log(depth)), data = df, control = ctrl_quick)
  X <- model.matrix(~ f * x, df)
  expect_identical(rownames(coef(fit)), colnames(X))
  expect_identical(fit$d, ncol(X))
  expect_equal(unname(fit$latent - fit$latent_pos), matrix(log(df$depth), 30, 4))
  expect_identical(fit$xlevels, list(f = c("a", "b", "c")))
  expect_identical(fit$contrasts, list(f = "contr.treatment"))

  ## several offset() terms are summed; a matrix offset is taken whole
  df$half <- df$depth / 2
  fit2 <- PLN(Y ~ 1 + offset(log(half)) + offset(rep(log(2), 30)), data = df, control = ctrl_quick)
  expect_equal(unname(fit2$latent - fit2$latent_pos), matrix(log(df$depth), 30, 4))
  df$Omat <- matrix(log(df$depth), 30, 4) + matrix(1:4, 30, 4, byrow = TRUE)
  fit3 <- PLN(Y ~ 1 + offset(Omat), data = df, control = ctrl_quick)
  expect_equal(unname(fit3$latent - fit3$latent_pos), unname(df$Omat))

  ## no offset term: O = 0
  fit4 <- PLN(Y ~ x, data = df, control = ctrl_quick)
  expect_equal(unname(fit4$latent), unname(fit4$latent_pos))
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
