## PLNPCA() without n x p arrays: the engine's start, R^2 and axes against the dense R formulas
## they replace, and a sparse fit whose R memory stays far below one n x p array.

## The dense R computation of R^2's terms that the engine replaced (PLNmodels' formula): a
## per-species glm.fit for the null model, Poisson log-likelihoods on dense n x p arrays.
r2_terms_dense <- function(Y, O, X, w, fits) {
  lf <- function(y) { y[y == 0] <- 1; y * log(y) - y + log(8 * y^3 + 4 * y^2 + y + 1 / 30) / 6 + log(pi) / 2 }
  ll <- function(Z) sum(w * (rowSums(Y * Z) - rowSums(exp(Z)) - rowSums(lf(Y))))
  Om <- O[, rep_len(seq_len(ncol(O)), ncol(Y)), drop = FALSE]
  Bnull <- vapply(seq_len(ncol(Y)), function(j)
    stats::coefficients(suppressWarnings(stats::glm.fit(
      X, Y[, j], weights = w, offset = Om[, j], family = stats::poisson(),
      control = stats::glm.control(epsilon = 1e-3, maxit = 10)))), numeric(ncol(X)))
  sat <- Y * log(Y); sat[Y == 0] <- 0
  list(lmin = ll(Om + X %*% matrix(Bnull, ncol(X))),
       lmax = sum(w * (rowSums(sat) - rowSums(Y) - rowSums(lf(Y)))),
       loglik = vapply(fits, function(f) ll(Om + X %*% f$B + tcrossprod(f$M, f$C)), 0),
       Bnull = matrix(Bnull, ncol(X)))
}

as_csr <- function(Y) {
  S <- methods::as(Matrix::Matrix(Y, sparse = TRUE), "RsparseMatrix")
  list(rowptr = as.double(S@p), col = as.double(S@j), val = as.double(S@x), n = nrow(Y), p = ncol(Y))
}

ctl <- list(device = "cpu", dtype = "float64")

test_that("R^2's terms equal the dense R formula to 1e-10 (dense and sparse counts, weights, offsets)", {
  skip_if_not_installed("Matrix")
  set.seed(2)
  Y <- unclass(oaks$Abundance)[, 1:40]; storage.mode(Y) <- "double"
  n <- nrow(Y); p <- ncol(Y)
  X <- stats::model.matrix(~ tree + distTOground, oaks)
  fits <- list(list(B = matrix(rnorm(ncol(X) * p, 0, 0.3), ncol(X)), C = matrix(rnorm(p * 2, 0, 0.3), p),
                    M = matrix(rnorm(n * 2), n)))
  lo <- log(rowSums(Y) + 1)
  for (case in 1:3) {
    O <- switch(case, matrix(lo), matrix(lo), matrix(lo + rnorm(n * p, 0, 0.1), n))
    w <- if (case == 1) rep(1, n) else runif(n, 0.5, 2)
    ref <- r2_terms_dense(Y, O, X, w, fits)
    for (Yarg in list(Y, as_csr(Y))) {
      got <- plntorch:::pca_poisson_engine(Yarg, O, X, w, fits, ctl)
      expect_equal(got$lmin, ref$lmin, tolerance = 1e-10)
      expect_equal(got$lmax, ref$lmax, tolerance = 1e-10)
      expect_equal(got$loglik, ref$loglik, tolerance = 1e-10)
      expect_equal(got$Bnull, ref$Bnull, tolerance = 1e-8, ignore_attr = TRUE)
    }
  }
  ## an aliased covariate: coefficient 0 (glm.fit: NA), the other terms unchanged
  X2 <- cbind(X, X[, 2])
  got <- plntorch:::pca_poisson_engine(Y, O, X2, w, list(), ctl)
  expect_equal(got$Bnull[ncol(X2), ], rep(0, p))
  expect_equal(got$lmin, ref$lmin, tolerance = 1e-10)
})

test_that("a fit's R_squared is PLNmodels' formula computed densely", {
  pca <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 1:2)
  Y <- unclass(oaks$Abundance); storage.mode(Y) <- "double"
  fits <- lapply(pca$fits, function(f) list(B = unname(f$model_par$B), C = unname(f$model_par$C),
                                            M = unname(f$var_par$M)))
  O <- log(unclass(oaks$Offset)); storage.mode(O) <- "double"
  ref <- r2_terms_dense(Y, O, matrix(1, nrow(Y)), rep(1, nrow(Y)), fits)
  expect_equal(unname(vapply(pca$fits, `[[`, 0, "R_squared")),
               unname((ref$loglik - ref$lmin) / (ref$lmax - ref$lmin)), tolerance = 1e-10)
})

test_that("scores, rotation, eig and corr_circle equal the SVD of the centred M C' up to sign", {
  pca <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 3)
  m <- getModel(pca, 3)
  sv <- svd(scale(tcrossprod(m$var_par$M, m$model_par$C), TRUE, FALSE), nu = 3, nv = 3)
  sg <- sign(colSums(sv$v * m$rotation))
  expect_equal(m$eig, sv$d[1:3]^2, tolerance = 1e-10)
  expect_equal(unname(m$rotation), sweep(sv$v, 2, sg, `*`), tolerance = 1e-8)
  expect_equal(unname(m$scores), sweep(sv$u, 2, sg * sv$d[1:3], `*`), tolerance = 1e-8)
  corr <- sv$v * rep(sv$d[1:3], each = nrow(sv$v)); corr <- corr / sqrt(rowSums(corr^2))
  expect_equal(unname(m$corr_circle), sweep(corr, 2, sg, `*`), tolerance = 1e-8)
  expect_equal(m$latent_pos, tcrossprod(m$var_par$M, m$model_par$C), ignore_attr = TRUE)
})

test_that("the randomized start on sparse counts is the exact one when its subspace covers p", {
  skip_if_not_installed("Matrix")
  set.seed(3)
  n <- 60; p <- 9
  Y <- matrix(rpois(n * p, exp(rnorm(n * p, 0.5))), n); storage.mode(Y) <- "double"
  O <- matrix(log(runif(n, 0.5, 2))); X <- cbind(1, rnorm(n)); w <- runif(n, 0.5, 2)
  ex <- plntorch:::pca_start_engine(Y, O, X, w, 3, "exact", ctl)
  rd <- plntorch:::pca_start_engine(as_csr(Y), O, X, w, 3, "randomized", ctl)
  ## the dense R computation the engine replaced
  L <- log1p(Y) - O[, rep(1, p)]
  B <- qr.coef(qr(X * sqrt(w)), L * sqrt(w))
  s <- svd(L - X %*% B, nu = 3, nv = 3)
  expect_equal(ex$B, B, tolerance = 1e-10, ignore_attr = TRUE)
  expect_equal(rd$B, B, tolerance = 1e-10, ignore_attr = TRUE)
  for (st in list(ex, rd)) {
    expect_equal(tcrossprod(st$M, st$C), tcrossprod(sqrt(n) * s$u, s$v %*% diag(s$d[1:3]) / sqrt(n)),
                 tolerance = 1e-8)
    expect_equal(abs(crossprod(st$M, s$u)) / sqrt(n), diag(3), tolerance = 1e-8)
  }
  ## a larger p: the randomized subspace approximates the leading one
  p <- 80
  Y <- matrix(rpois(n * p, exp(outer(rnorm(n), rnorm(p)) + 0.3)), n); storage.mode(Y) <- "double"
  ex <- plntorch:::pca_start_engine(Y, O, X, w, 2, "exact", ctl)
  rd <- plntorch:::pca_start_engine(as_csr(Y), O, X, w, 2, "randomized", ctl)
  expect_equal(tcrossprod(rd$M, rd$C), tcrossprod(ex$M, ex$C), tolerance = 1e-3)
})

test_that("a sparse fit builds no n x p array in R; latent on request, with a size limit", {
  skip_if_not_installed("Matrix")
  set.seed(4)
  n <- 20000; p <- 1000
  nz <- stats::rbinom(n * p, 1, 0.0025) == 1
  Ysp <- Matrix::sparseMatrix(i = ((which(nz) - 1) %% n) + 1, j = ((which(nz) - 1) %/% n) + 1,
                              x = as.double(1 + stats::rpois(sum(nz), 2)), dims = c(n, p))
  colnames(Ysp) <- paste0("g", seq_len(p))
  old <- options(plntorch.pca_store_latent = 0)
  on.exit(options(old))
  gc(reset = TRUE)
  base <- gc()["Vcells", "used"]
  fam <- suppressWarnings(PLNPCA(Ysp ~ 1, ranks = 2,
                                 control = PLNPCA_param(maxit = 5, start = "svd")))
  peak <- (gc()["Vcells", "max used"] - base) * 8
  if (nzchar(Sys.getenv("PLNTORCH_TEST_VERBOSE"))) message("R heap peak of the sparse fit: ", peak / 1e6, " MB")
  ## below a quarter of one dense n x p double array (160 MB): R's arrays are of the non-zeros'
  ## size (5e4: the checks and CSR of the counts), of n (names, n x q), or p x p (Sigma, 8 MB)
  expect_lt(peak, 8 * n * p / 4)
  m <- getModel(fam, 2)
  expect_null(m$.__enclos_env__$private$.f$latent)  # not stored
  expect_true(is.finite(m$R_squared))
  ## built on request, equal to its definition
  expect_equal(m$latent_pos, tcrossprod(m$var_par$M, m$model_par$C), ignore_attr = TRUE)
  expect_equal(m$latent, m$latent_pos + rep(m$model_par$B[1, ], each = n), ignore_attr = TRUE)
  expect_identical(dimnames(m$latent), list(NULL, colnames(Ysp)))
  options(plntorch.max_dense_bytes = 1e6)
  expect_error(m$latent, "20000 x 1000 matrix \\(160 MB\\), above options\\(plntorch.max_dense_bytes\\)")
  ## project() on sparse newdata: scores of the fitted cells
  nd <- data.frame(row.names = seq_len(50))
  nd$Ysp <- Ysp[1:50, ]
  expect_equal(dim(m$project(nd)), c(50L, 2L))
})
