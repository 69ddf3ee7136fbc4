## On the CPU the same data and options give bit-identical results, run to run.

test_that("CPU fits are bit-identical run to run, for every backend and optimiser", {
  df <- small_data()
  for (b in intersect(c("eager", "script", "fused"), pln_backends()$backends)) {
    for (opt in c("lbfgs", "rprop", "adam")) {
      ctrl <- PLN_param(backend = b, optimizer = opt, maxit = 60, tol = 0)
      f1 <- PLN(Y ~ f + x + offset(log(depth)), data = df, control = ctrl)
      f2 <- PLN(Y ~ f + x + offset(log(depth)), data = df, control = ctrl)
      drop_time <- function(f) {
        f <- fit_as_list(f, drop = "call")
        f$optim_par[c("seconds", "setup_seconds")] <- NULL
        f
      }
      expect_identical(drop_time(f1), drop_time(f2), info = paste(b, opt))
    }
    m1 <- PLNtorch$new(Y = df$Y, O = log(df$depth), backend = b)$fit(40, lr = 0.05)
    m2 <- PLNtorch$new(Y = df$Y, O = log(df$depth), backend = b)$fit(40, lr = 0.05)
    expect_identical(m1$B, m2$B, info = b)
    expect_identical(m1$ELBO_list, m2$ELBO_list, info = b)
  }
})
