## Fits and collections are R6 objects with PLNmodels' class names after plntorch's, fields and
## methods; plntorch's S3 methods dispatch first.

r6_pln <- local({
  fit <- NULL
  function() {
    if (is.null(fit))
      fit <<- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
    fit
  }
})

r6_pca <- local({
  fam <- NULL
  function() {
    if (is.null(fam))
      fam <<- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = trichoptera, ranks = 1:3)
    fam
  }
})

test_that("class vectors put plntorch's classes before PLNmodels' and R6", {
  fit <- r6_pln()
  expect_identical(class(fit), c("PLNfit_torch", "PLNfit", "R6"))
  expect_true(inherits(fit, "PLNfit"))
  expect_true(R6::is.R6(fit))
  pca <- r6_pca()
  expect_identical(class(pca), c("PLNPCAfamily_torch", "PLNPCAfamily", "PLNfamily_torch",
                                 "PLNfamily", "R6"))
  expect_true(inherits(pca, "PLNfamily"))
  m <- getModel(pca, 2)
  expect_identical(class(m), c("PLNPCAfit_torch", "PLNPCAfit", "PLNfit_torch", "PLNfit", "R6"))
  expect_true(inherits(m, "PLNPCAfit") && inherits(m, "PLNfit"))
})

test_that("plntorch's S3 methods dispatch first, and the base's reach PLN-PCA fits", {
  fit <- r6_pln()
  expect_identical(coef(fit), fit$model_par$B)
  expect_identical(sigma(fit), fit$model_par$Sigma)
  expect_identical(fitted(fit), fit$fitted)
  expect_identical(nobs(fit), 116L)
  expect_s3_class(logLik(fit), "logLik")
  expect_identical(as.numeric(logLik(fit)), fit$loglik)
  expect_output(print(fit), "Poisson log-normal fit \\(plntorch\\), full covariance")
  expect_output(fit$print(), "Poisson log-normal fit \\(plntorch\\)")
  expect_identical(utils::getS3method("print", class(fit)[1L]), plntorch:::print.PLNfit_torch)
  ## PLN-PCA: its own print and plot, the base's coef, sigma, logLik, nobs, fitted
  m <- getModel(r6_pca(), 2)
  expect_output(print(m), "Poisson log-normal PCA of rank 2")
  expect_identical(coef(m), m$model_par$B)
  expect_identical(sigma(m), m$model_par$Sigma)
  expect_identical(nobs(m), m$n)
  expect_identical(attr(logLik(m), "df"), m$nb_param)
  A <- fitted(m)
  S2C <- tcrossprod(m$var_par$S2, m$model_par$C^2)
  expect_equal(A, exp(m$latent + S2C / 2))
  expect_identical(dimnames(A), dimnames(m$latent))
  expect_equal(residuals(m, type = "response"), m$responses - A)
  expect_identical(vcov(m, type = "covariance"), m$model_par$Sigma)
})

test_that("fields read as before: fit$loglik, fit$model_par$B, the criteria", {
  fit <- r6_pln()
  expect_equal(fit$loglik, sum(fit$loglik_vec))
  expect_identical(dim(fit$model_par$B), c(3L, 114L))
  expect_identical(fit$criteria$loglik, fit$loglik)
  expect_equal(fit$BIC, fit$loglik - 0.5 * log(fit$n) * fit$nb_param)
  expect_equal(fit$ICL, fit$BIC - fit$entropy)
  expect_true(all(c("model_par", "var_par", "latent", "fitted", "loglik", "criteria", "optim_par",
                    "update", "optimize", "predict", "postTreatment") %in% names(fit)))
})

test_that("$predict() is predict(), $update() sets fields and keeps the criteria in step", {
  fit <- r6_pln()
  expect_identical(fit$predict(oaks[1:4, ], type = "response"),
                   predict(fit, oaks[1:4, ], type = "response"))
  expect_identical(fit$predict(), fit$latent)
  g <- fit$clone()
  Ji <- g$loglik_vec - 1
  g$update(Ji = Ji, R2 = 0.5)
  expect_equal(g$loglik, fit$loglik - fit$n)
  expect_equal(g$BIC, fit$BIC - fit$n)
  expect_equal(g$criteria$loglik, g$loglik)
  expect_identical(g$R_squared, 0.5)
  expect_identical(names(g$loglik_vec), names(fit$loglik_vec))
  ## the clone is a copy: the original is unchanged
  expect_equal(fit$loglik, sum(fit$loglik_vec))
  expect_false(isTRUE(all.equal(fit$loglik, g$loglik)))
  ## B: latent_pos follows (M - X B); S2: S and the entropy follow
  B2 <- fit$model_par$B + 0.1
  g$update(B = B2, S2 = fit$var_par$S2 * 2)
  expect_identical(g$model_par$B, B2)
  expect_equal(g$latent_pos, fit$latent_pos - fit$covariates %*% matrix(0.1, 3, 114),
               ignore_attr = TRUE)
  expect_equal(g$var_par$S, sqrt(2 * fit$var_par$S2))
  expect_equal(g$entropy, fit$entropy + 0.5 * fit$n * fit$p * log(2))
  expect_error(g$update(B = matrix(0, 2, 2)), "`B` must be a 3 x 114 matrix")
  ## a reference: `h <- g` is g
  h <- g
  h$update(R2 = 0.25)
  expect_identical(g$R_squared, 0.25)
})

test_that("$optimize() continues from the fit's state; $postTreatment() stores the variances", {
  fit <- r6_pln()
  g <- fit$clone()
  ## from a perturbed start, a refit climbs back to the fit's optimum
  g$update(B = fit$model_par$B + 0.05)
  expect_silent(g$optimize())
  expect_equal(g$loglik, fit$loglik, tolerance = 1e-5)
  expect_identical(g$optim_par$status, "converged")
  expect_identical(g$call, fit$call)
  expect_equal(g$R_squared, fit$R_squared, tolerance = 1e-4)
  expect_null(g$uncertainty)
  expect_error(g$optimize(covariates = matrix(1, 116, 1)), "continues from the fit's parameters")
  ## the post-treatments on demand are those computed at fitting time
  h <- fit$clone()
  suppressWarnings(h$postTreatment(list(variational_var = TRUE, sandwich_var = TRUE)))
  expect_setequal(names(h$uncertainty), c("variational", "sandwich"))
  expect_null(fit$uncertainty)
  expect_identical(sqrt(h$uncertainty$sandwich$var_B), suppressWarnings(standard_error(fit)))
  expect_identical(sqrt(h$uncertainty$variational$var_B),
                   suppressWarnings(standard_error(fit, "variational")))
})

test_that("collections: models, criteria, getModel and getBestModel in both styles", {
  pca <- r6_pca()
  expect_named(pca$models, c("1", "2", "3"))
  expect_identical(pca$fits, pca$models)
  expect_identical(names(pca$criteria), c("rank", "nb_param", "loglik", "BIC", "ICL"))
  expect_identical(pca$criteria$loglik, vapply(pca$models, function(m) m$loglik, 0, USE.NAMES = FALSE))
  expect_identical(pca$ranks, 1:3)
  best <- pca$getBestModel("ICL")
  expect_identical(best$rank, pca$ranks[which.max(pca$criteria$ICL)])
  expect_identical(fit_as_list(best), fit_as_list(getBestModel(pca, "ICL")))
  expect_identical(pca$getModel(2)$loglik, getModel(pca, 2)$loglik)
  ## getModel() returns a copy (as PLNmodels' $clone()): changing it leaves the collection
  m <- getModel(pca, 2)
  m$update(R2 = 0)
  expect_false(identical(pca$models[["2"]]$R_squared, 0))
  expect_error(getModel(pca, 9), "`var` must be one of the ranks fitted \\(1, 2, 3\\)")
  expect_error(pca$getModel(), "give the rank as `var`")
  expect_output(print(pca), "Collection of 3 PLN-PCA models \\(plntorch\\)")
  expect_output(pca$print(), "best rank by BIC:")
  pdf(NULL)
  on.exit(dev.off())
  expect_silent(pca$plot("BIC"))
})

test_that("a PLN-PCA fit's $project() and its lazy latent layer", {
  m <- getModel(r6_pca(), 2)
  expect_identical(dim(suppressWarnings(m$project(trichoptera[1:5, ]))), c(5L, 2L))
  expect_equal(unname(m$project(trichoptera)), unname(m$scores), tolerance = 1e-3)
  stored <- m$latent
  old <- options(plntorch.pca_store_latent = 10, plntorch.max_dense_bytes = NULL)
  on.exit(options(old))
  small <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = trichoptera, ranks = 2)
  s2 <- getModel(small, 2)
  expect_null(s2$.__enclos_env__$private$.f$latent)  # not stored
  expect_equal(s2$latent, stored)                     # built when read
  expect_equal(s2$latent_pos, tcrossprod(s2$var_par$M, s2$model_par$C), ignore_attr = TRUE)
  options(plntorch.max_dense_bytes = 100)
  expect_error(s2$latent, "fit\\$latent is a 49 x 17 matrix .* above options\\(plntorch.max_dense_bytes\\)")
  expect_error(fitted(s2), "fit\\$fitted is a 49 x 17 matrix")
})

test_that("the base's methods PLN-PCA fits do not offer are one-line errors", {
  m <- getModel(r6_pca(), 2)
  expect_error(standard_error(m), "standard_error\\(\\) is not available for PLN-PCA fits")
  expect_error(summary(m), "summary\\(\\) is not available for PLN-PCA fits")
  expect_error(vcov(m), "vcov\\(type = \"main\"\\) is not available for PLN-PCA fits")
  expect_error(predict_cond(m, trichoptera[1:3, ], trichoptera$Abundance[1:3, 1:2]),
               "predict_cond\\(\\) is not available for PLN-PCA fits")
  expect_error(predict(m, trichoptera[1:3, ], responses = trichoptera$Abundance[1:3, ]),
               "is not available for PLN-PCA fits: fit\\$project")
  expect_error(m$optimize(), "\\$optimize\\(\\) is not available for PLN-PCA fits")
  expect_error(m$postTreatment(), "\\$postTreatment\\(\\) is not available for PLN-PCA fits")
  expect_error(m$update(Omega = diag(17)), "no Omega")
  ## the population prediction works, as for a PLN() fit
  pr <- predict(m, trichoptera[1:3, ])
  expect_equal(pr, log(trichoptera$Offset[1:3]) + matrix(m$model_par$B, 3, 17, byrow = TRUE),
               ignore_attr = TRUE)
  expect_identical(m$predict(), m$latent)
})

test_that("PLN-PCA's $update() recomputes what follows from B, C, M and S2", {
  m <- getModel(r6_pca(), 2)
  g <- m$clone()
  g$update(C = m$model_par$C * 2)
  expect_equal(g$model_par$Sigma, 4 * m$model_par$Sigma)
  expect_equal(g$latent_pos, 2 * m$latent_pos)
  expect_equal(g$scores, 2 * m$scores, tolerance = 1e-8, ignore_attr = TRUE)
  expect_equal(m$latent_pos, tcrossprod(m$var_par$M, m$model_par$C), ignore_attr = TRUE) # m unchanged
})

test_that("fits survive saveRDS() / readRDS()", {
  fit <- r6_pln()
  f <- tempfile(fileext = ".rds")
  on.exit(unlink(f))
  saveRDS(fit, f)
  back <- readRDS(f)
  expect_identical(class(back), class(fit))
  expect_identical(back$model_par, fit$model_par)
  expect_identical(coef(back), coef(fit))
  pca <- r6_pca()
  saveRDS(pca, f)
  back <- readRDS(f)
  expect_identical(class(back), class(pca))
  expect_identical(back$criteria, pca$criteria)
  m <- getModel(pca, 2); b <- getModel(back, 2)
  expect_identical(b$latent, m$latent)
  expect_identical(fitted(b), fitted(m))
  expect_identical(b$responses, m$responses)
  ## the fits of a family share its data (one environment), in memory and in the file
  expect_identical(back$models[[1]]$.__enclos_env__$private$parts,
                   back$models[[3]]$.__enclos_env__$private$parts)
})
