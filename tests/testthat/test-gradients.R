## Gradients of J (pln-model.md): autograd == script == analytic == finite differences,
## and the formulas of pln-model.md, on small float64 data.
test_that("engine gradients agree with each other, the formulas and finite differences", {
  set.seed(42)
  n <- 8; p <- 5; d <- 2
  X <- cbind(1, rnorm(n))
  O <- matrix(rnorm(n * p, 1, 0.3), n, p)
  Y <- matrix(rpois(n * p, 5), n, p)
  w <- runif(n, 0.5, 2)
  B <- matrix(rnorm(d * p, 0, 0.3), d, p)
  M <- matrix(rnorm(n * p, 0, 0.3), n, p)
  S <- matrix(runif(n * p, 0.3, 1), n, p)
  Omega <- random_spd(p)
  dat <- check_pln_data(Y, O, X, w)

  methods <- c("autograd", "script", "analytic")
  res <- lapply(methods, function(m) engine_objective(dat, B, M, S, Omega, method = m))
  names(res) <- methods
  ref <- ref_grad(Y, O, X, w, B, M, S, Omega)
  J <- function(B, M, S) engine_objective(dat, B, M, S, Omega, method = "analytic")$objective
  fd <- list(B = finite_diff(function(b) J(b, M, S), B),
             M = finite_diff(function(m) J(B, m, S), M),
             S = finite_diff(function(s) J(B, M, s), S))
  for (m in methods) {
    expect_equal(res[[m]]$objective, ref_elbo(Y, O, X, w, B, M, S, Omega), tolerance = 1e-10,
                 label = paste(m, "objective"))
    for (par in c("B", "M", "S")) {
      expect_identical(dim(res[[m]][[par]]), dim(ref[[par]]))
      expect_equal(res[[m]][[par]], ref[[par]], tolerance = 1e-10,
                   label = paste(m, "dJ /", par))
      expect_equal(res[[m]][[par]], fd[[par]], tolerance = 1e-6,
                   label = paste(m, "dJ /", par, "vs finite differences"))
    }
  }
})

test_that("float32 objective is close to float64", {
  set.seed(3)
  n <- 8; p <- 5
  Y <- matrix(rpois(n * p, 3), n, p)
  dat <- check_pln_data(Y)
  B <- matrix(0.5, 1, p); M <- matrix(rnorm(n * p, 0, 0.2), n, p); S <- matrix(0.5, n, p)
  Omega <- random_spd(p)
  j64 <- engine_objective(dat, B, M, S, Omega, dtype = "float64")$objective
  j32 <- engine_objective(dat, B, M, S, Omega, dtype = "float32")$objective
  expect_equal(j32, j64, tolerance = 1e-5)
})
