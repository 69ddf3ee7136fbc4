## A diverging optimiser ends in an error naming the step and a remedy, never in absurd or
## non-finite numbers (see "Divergence" in ?PLN).

test_that("an ELBO that falls far below its start is a divergence, not convergence", {
  ## Rprop with lr = 10 used to "converge" after 8 steps at loglik -2.3e24.
  for (b in intersect(c("eager", "script", "fused"), pln_backends()$backends)) {
    expect_error(PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
                     control = PLN_param(backend = b, optimizer = "rprop", lr = 10, maxit = 300)),
                 "diverged at step [0-9]+: the ELBO fell from .* lower lr", info = b)
  }
})

test_that("float32 overflow of exp() ends in the divergence error, not NaN output", {
  for (opt in c("rprop", "adam")) {
    expect_error(PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
                     control = PLN_param(backend = "fused", dtype = "float32", optimizer = opt,
                                         lr = if (opt == "rprop") 10 else 5, maxit = 300)),
                 "(diverged|non-finite) at step [0-9]+.*float64", info = opt)
  }
})

test_that("PLNtorch keeps its state when a fit diverges, and can go on", {
  m <- PLNtorch$new(Y = oaks$Abundance, O = log(oaks$Offset), backend = "fused")
  m$fit(N_iter = 50, lr = 0.05)
  B <- m$B
  expect_error(m$fit(N_iter = 100, lr = 50), "diverged|non-finite")
  expect_identical(m$B, B)
  m$fit(N_iter = 20, lr = 0.05)
  expect_true(all(is.finite(m$B)) && is.finite(m$loglik))
})

test_that("sane fits are not flagged", {
  fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
             control = PLN_param(optimizer = "rprop", lr = 0.05, maxit = 400, tol = 0))
  expect_true(is.finite(fit$loglik))
  expect_gt(fit$loglik, fit$optim_par$objective[1] - 1)
})

test_that("starting values out of range are named as `init`, for every backend, dtype and optimiser", {
  df <- small_data()
  n <- 30; p <- 4
  starts <- list(list(S = matrix(1e-300, n, p)), list(S = matrix(1e200, n, p)),
                 list(M = matrix(1e5, n, p)), list(B = matrix(1e3, 1, p)))
  for (b in intersect(c("eager", "script", "fused"), pln_backends()$backends))
    for (dt in c("float64", "float32"))
      for (opt in c("lbfgs", "adam", "rprop"))
        for (init in starts)
          expect_error(PLN(Y ~ 1, data = df,
                           control = PLN_param(backend = b, dtype = dt, optimizer = opt,
                                               init = init, maxit = 5)),
                       "^the ELBO is not finite at the starting values given in `init` \\(B, M, S\\)",
                       info = paste(b, dt, opt, names(init)))
  expect_error(PLN(Y ~ 1, data = df, control = PLN_param(init = list(S = matrix(NaN, n, p)))),
               "`init\\$S` must hold finite values; found NaN at \\[1, 1\\]")
  expect_error(PLN(Y ~ 1, data = df, control = PLN_param(init = list(M = matrix(0, 2, 2)))),
               "`init\\$M` must be 30 x 4; got 2 x 2")
})
