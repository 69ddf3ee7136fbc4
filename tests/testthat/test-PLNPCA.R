## PLNPCA(): the API as PLNmodels', its criteria, sparse counts, backends, project(), plots, errors.

oaks_pca <- local({
  fam <- NULL
  function() {
    if (is.null(fam))
      fam <<- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 1:3)
    fam
  }
})

test_that("PLNPCA returns a family with PLNmodels' fields and criteria", {
  pca <- oaks_pca()
  expect_s3_class(pca, "PLNPCAfamily_torch")
  expect_equal(pca$ranks, 1:3)
  expect_named(pca$fits, c("1", "2", "3"))
  expect_equal(pca$criteria$rank, 1:3)
  n <- nrow(oaks); p <- ncol(oaks$Abundance)
  for (q in 1:3) {
    m <- pca$getModel(q)
    expect_s3_class(m, "PLNPCAfit_torch")
    expect_equal(m$rank, q)
    expect_equal(dim(m$model_par$C), c(p, q))
    expect_equal(dim(m$model_par$B), c(1L, p))
    expect_equal(dim(m$model_par$Sigma), c(p, p))
    expect_equal(dim(m$var_par$M), c(n, q))
    expect_equal(dim(m$scores), c(n, q))
    expect_equal(dim(m$rotation), c(p, q))
    expect_equal(m$nb_param, p * (1 + q) - q * (q - 1) / 2)
    expect_equal(m$loglik, sum(m$loglik_vec))
    expect_equal(m$BIC, m$loglik - 0.5 * log(n) * m$nb_param)
    expect_equal(m$ICL, m$BIC - 0.5 * (n * q * log(2 * pi * exp(1)) + sum(log(m$var_par$S2))))
    expect_identical(m$optim_par$status, "converged")
    expect_true(all(diff(m$optim_par$objective) > 0))
    expect_true(m$R_squared > 0 && m$R_squared < 1)
    expect_equal(sum(m$percent_var), m$R_squared, tolerance = 1e-3)
    expect_equal(crossprod(m$rotation), diag(q), tolerance = 1e-8, ignore_attr = TRUE)
  }
  ## a larger rank fits at least as well (one of its starts is the smaller one's optimum)
  expect_true(all(diff(pca$criteria$loglik) > 0))
  ## both of PLNmodels' styles
  expect_identical(fit_as_list(pca$getBestModel("BIC")), fit_as_list(getBestModel(pca, "BIC")))
  expect_identical(getBestModel(pca)$rank, pca$criteria$rank[which.max(pca$criteria$ICL)])
  expect_identical(fit_as_list(getModel(pca, 2)), fit_as_list(pca$fits[["2"]]))
  expect_identical(fit_as_list(getModel(pca, index = 3)), fit_as_list(pca$fits[["3"]]))
})

test_that("logliks per rank reach PLNmodels' (inst/extdata/pca-reference.csv)", {
  ref <- utils::read.csv(system.file("extdata", "pca-reference.csv", package = "plntorch"))
  pca <- oaks_pca()
  r <- ref[ref$data == "oaks" & ref$rank %in% 1:3, ]
  tol <- pmax(0.1, 1e-5 * abs(r$plnmodels_loglik))
  expect_true(all(pca$criteria$loglik[match(r$rank, pca$ranks)] >= r$plnmodels_loglik - tol))
  mol <- PLNPCA(Abundance ~ 1, data = mollusk, ranks = 1:4)
  r <- ref[ref$data == "mollusk" & ref$rank %in% 1:4, ]
  tol <- pmax(0.1, 1e-5 * abs(r$plnmodels_loglik))
  expect_true(all(mol$criteria$loglik[match(r$rank, mol$ranks)] >= r$plnmodels_loglik - tol))
})

test_that("sparse counts, dense counts and every backend give the same fit", {
  skip_if_not_installed("Matrix")
  dat <- mollusk
  dense <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = dat, ranks = 1:2)
  Ysp <- Matrix::Matrix(unclass(dat$Abundance), sparse = TRUE)
  Offset <- dat$Offset
  sparse <- PLNPCA(Ysp ~ 1 + offset(log(Offset)), ranks = 1:2)
  expect_equal(sparse$criteria$loglik, dense$criteria$loglik, tolerance = 1e-5) # the same optimum, to tol
  expect_identical(rownames(sparse$fits[[1]]$model_par$C), colnames(dat$Abundance))
  for (b in c("eager", "script")) {
    other <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = dat, ranks = 1:2,
                    control = PLNPCA_param(backend = b))
    expect_equal(other$criteria$loglik, dense$criteria$loglik, tolerance = 1e-5) # the same optimum, to tol
  }
  ## subset and weights as in lm()
  sub <- PLNPCA(Ysp ~ 1 + offset(log(Offset)), ranks = 1, subset = 1:100)
  expect_equal(sub$fits[[1]]$n, 100)
  w <- PLNPCA(Abundance ~ 1, data = dat, ranks = 1, weights = rep(2, nrow(dat)))
  u <- PLNPCA(Abundance ~ 1, data = dat, ranks = 1)
  expect_equal(w$fits[[1]]$loglik, 2 * u$fits[[1]]$loglik, tolerance = 1e-6)
})

test_that("the engine's analytic gradient equals autograd's and TorchScript's", {
  set.seed(1)
  n <- 15; p <- 6; q <- 2
  Y <- matrix(as.double(rpois(n * p, 3)), n, p)
  O <- matrix(log(runif(n, 0.5, 2)), n, 1)
  X <- cbind(1, rnorm(n))
  B <- matrix(rnorm(2 * p, 0.5, 0.2), 2, p); C <- matrix(rnorm(p * q, 0, 0.3), p, q)
  M <- matrix(rnorm(n * q), n, q); S <- matrix(runif(n * q, 0.2, 1), n, q)
  w <- runif(n, 0.5, 2)
  a <- plntorch:::pca_objective_engine(Y, O, X, w, B, C, M, S, "autograd", "float64")
  for (m in c("script", "analytic")) {
    b <- plntorch:::pca_objective_engine(Y, O, X, w, B, C, M, S, m, "float64")
    expect_equal(b, a, tolerance = 1e-10)
  }
  ## finite differences in one entry of C
  h <- 1e-6; C1 <- C; C1[3, 2] <- C1[3, 2] + h; C2 <- C; C2[3, 2] <- C2[3, 2] - h
  fd <- (plntorch:::pca_objective_engine(Y, O, X, w, B, C1, M, S, "analytic", "float64")$objective -
           plntorch:::pca_objective_engine(Y, O, X, w, B, C2, M, S, "analytic", "float64")$objective) / (2 * h)
  expect_equal(a$C[3, 2], fd, tolerance = 1e-6)
})

test_that("project() places the fitted samples where their scores are", {
  m <- getModel(oaks_pca(), 2)
  expect_warning(proj <- m$project(oaks[1:30, ]), "only zeros") # 3 species absent from these
  expect_equal(dim(proj), c(30L, 2L))
  all <- m$project(oaks)
  ## the variational step of the fitted samples with B and C held gives back their scores
  expect_equal(unname(all), unname(m$scores), tolerance = 1e-3)
})

test_that("plots draw without error", {
  pdf(NULL)
  on.exit(dev.off())
  pca <- oaks_pca()
  expect_silent(plot(pca))
  expect_silent(pca$plot())
  m <- getModel(pca, 2)
  for (map in c("individual", "variable", "both"))
    expect_silent(plot(m, map = map, ind_cols = oaks$tree))
  expect_silent(plot(getModel(pca, 1)))
})

test_that("bad arguments are refused with errors that name them", {
  expect_error(PLNPCA(Abundance ~ 1, data = oaks, ranks = 0), "`ranks`")
  expect_error(PLNPCA(Abundance ~ 1, data = oaks, ranks = c(1, 1)), "`ranks`")
  expect_error(PLNPCA(Abundance ~ 1, data = oaks, ranks = 200), "below the number of species")
  expect_error(PLNPCA(Abundance ~ 1, data = oaks, control = list(bogus = 1)), "unknown parameter")
  expect_error(PLNPCA_param(start = "cold"), "start")
  expect_error(PLNPCA_param(backend = "gpu"), "backend")
  pca <- oaks_pca()
  expect_error(getModel(pca, 7), "ranks fitted")
  expect_error(getBestModel(pca, "AIC"), "crit")
  expect_error(plot(getModel(pca, 2), map = "x"), "map")
  expect_error(plot(getModel(pca, 2), ind_cols = 1:3), "ind_cols")
  expect_error(getModel(pca, 2)$project(1), "newdata")
})

test_that("a fit too large for the memory allowed is refused before allocation, naming the size", {
  old <- options(plntorch.max_memory = 1e4)
  on.exit(options(old))
  expect_error(PLNPCA(Abundance ~ 1, data = oaks, ranks = 1:2),
               "not enough memory on cpu: this PLN-PCA fit needs about [0-9.]+ [kMG]B")
})
