## predict(responses = ) and predict_cond(): the VE step on the engine, the Gaussian conditional,
## the checks of their arguments, and agreement with PLNmodels 1.3.2
## (inst/extdata/prediction-reference.csv, written by inst/bench/toolbox-prediction.R).

fit_oaks <- function() PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)

test_that("predict() with the fitted samples' counts gives back the fit's latent layer", {
  fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks, control = PLN_param(tol = 1e-11))
  link <- predict(fit, newdata = oaks, responses = oaks$Abundance)
  expect_identical(dimnames(link), dimnames(fit$latent))
  ## the VE step maximises the same ELBO at the fit's B and Omega: its M and S are the fit's, to the
  ## precision of the two optimisations (the fit's tol 1e-11, the VE step's 1e-10: ~5e-4 on M
  ## measured, largest at a zero count, a flat direction of the ELBO)
  expect_lt(max(abs(link - fit$latent)), 2e-3)
  resp <- predict(fit, newdata = oaks, responses = oaks$Abundance, type = "response")
  expect_lt(max(abs(resp - fitted(fit)) / pmax(1, fitted(fit))), 2e-3)
  ## level = 0: the population prediction, as without responses
  expect_identical(predict(fit, newdata = oaks[1:3, ], responses = oaks$Abundance[1:3, ], level = 0),
                   predict(fit, newdata = oaks[1:3, ]))
  ## columns matched by name, in any order; a data frame works
  Y <- oaks$Abundance[1:4, ]
  ref <- predict(fit, newdata = oaks[1:4, ], responses = Y)
  rev_Y <- Y[, rev(colnames(Y))]
  expect_equal(predict(fit, newdata = oaks[1:4, ], responses = rev_Y), ref, tolerance = 1e-10)
  expect_equal(predict(fit, newdata = oaks[1:4, ], responses = as.data.frame(unclass(Y))), ref,
               tolerance = 1e-10)
  ## one sample, of one level of the factor (a model matrix of rank 1)
  one <- predict(fit, newdata = oaks[7, ], responses = oaks$Abundance[7, , drop = FALSE])
  expect_equal(dim(one), c(1L, fit$p))
  expect_lt(max(abs(one - fit$latent[7, ])), 2e-3)
  ## one sample's counts as a named vector
  expect_equal(predict(fit, newdata = oaks[7, ], responses = unclass(oaks$Abundance)[7, ]), one,
               tolerance = 1e-12)
})

test_that("the VE step converges from far: coefficients drifted to -Inf, counts of new samples", {
  ## fitted without every fifth leaf, some species are absent from a level of `tree` and their
  ## coefficients drift far (hundreds): the VE step starts hundreds of units from its optimum
  new_rows <- seq(5, nrow(oaks), by = 5)
  fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks[-new_rows, ])
  expect_gt(max(abs(coef(fit))), 100)
  expect_warning(pred <- predict(fit, oaks[new_rows, ], responses = oaks$Abundance[new_rows, ]), NA)
  expect_true(all(is.finite(pred)))
})

test_that("predict() with counts moves a sample's prediction towards its counts", {
  fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
  nd <- oaks[1:2, ]
  Y <- unclass(oaks$Abundance)[1:2, ]
  pop <- predict(fit, newdata = nd)
  sp <- colnames(Y)[1]
  lo <- Y; lo[, sp] <- 0
  hi <- Y; hi[, sp] <- 5000
  p_lo <- predict(fit, newdata = nd, responses = lo)
  p_hi <- predict(fit, newdata = nd, responses = hi)
  expect_true(all(p_hi[, sp] > p_lo[, sp]))
  expect_true(all(p_hi[, sp] > pop[, sp]))
  expect_true(all(p_lo[, sp] < pop[, sp]))
})

test_that("predict_cond() is the Gaussian conditional of the VE step's observed block", {
  fit <- fit_oaks()
  sp <- colnames(oaks$Abundance)
  obs <- sp[c(1, 5, 9, 20)]
  nd <- oaks[c(3, 60, 110), ]
  Yo <- oaks$Abundance[c(3, 60, 110), obs]
  pred <- predict_cond(fit, nd, Yo, var_par = TRUE)
  unobs <- setdiff(sp, obs)
  expect_identical(dimnames(pred), list(rownames(nd), unobs))
  expect_identical(attr(pred, "type"), "link")
  S <- attr(pred, "S")
  expect_equal(dim(S), c(length(unobs), length(unobs), 3L))
  expect_equal(dim(attr(pred, "M")), c(3L, length(unobs)))
  ## the observed block's VE step is predict()'s on a fit of those species alone, with B_o and
  ## Omega = Sigma_oo^-1 fixed: redo it through the engine and apply the formulas in plain R
  Sigma <- sigma(fit)
  o <- sp %in% obs
  A <- Sigma[!o, o] %*% solve(Sigma[o, o])
  sub <- fit$clone()  # a copy: fit is an R6 object (a reference)
  sub$p <- length(obs)
  sub$model_par <- list(B = coef(fit)[, o], Sigma = Sigma[o, o], Omega = solve(Sigma[o, o]))
  nd_o <- nd
  nd_o$Offset <- I(unclass(nd$Offset)[, o])
  ve <- predict(sub, nd_o, responses = Yo)
  X <- model.matrix(~ tree, nd)
  M_res <- ve - log(unclass(nd$Offset)[, o]) - X %*% coef(fit)[, o]
  expect_equal(attr(pred, "M"), M_res %*% t(A), ignore_attr = TRUE, tolerance = 1e-6)
  expect_equal(unclass(pred)[, ], log(unclass(nd$Offset)[, !o]) + X %*% coef(fit)[, !o] + M_res %*% t(A),
               ignore_attr = TRUE, tolerance = 1e-6)
  S2 <- predict(sub, nd_o, responses = Yo, type = "response") /
    exp(ve)  # exp(S2 / 2)
  S2 <- 2 * log(S2)
  S_ref <- A %*% (S2[2, ] * t(A)) + Sigma[!o, !o] - A %*% Sigma[o, !o]
  expect_equal(S[, , 2], S_ref, ignore_attr = TRUE, tolerance = 1e-6)
  ## response: exp(link + diag(S) / 2)
  resp <- predict_cond(fit, nd, Yo, type = "response")
  expect_equal(unclass(resp)[2, ], exp(unclass(pred)[2, ] + diag(S[, , 2]) / 2),
               ignore_attr = TRUE, tolerance = 1e-10)
  expect_null(attr(resp, "S"))
  ## every species observed but one: a single column, its variance S[1, 1, i]
  last <- predict_cond(fit, nd, oaks$Abundance[c(3, 60, 110), sp[-7]], type = "response",
                       var_par = TRUE)
  expect_identical(dimnames(last), list(rownames(nd), sp[7]))
  expect_equal(dim(attr(last, "S")), c(1L, 1L, 3L))
  link_last <- predict_cond(fit, nd, oaks$Abundance[c(3, 60, 110), sp[-7]])
  expect_equal(log(unclass(last)[, 1]), unclass(link_last)[, 1] + attr(last, "S")[1, 1, ] / 2,
               ignore_attr = TRUE, tolerance = 1e-10)
  ## columns in any order: the same prediction
  expect_equal(predict_cond(fit, nd, Yo[, rev(obs)]), predict_cond(fit, nd, Yo), tolerance = 1e-10)
})

test_that("a species that co-varies with an observed one follows its counts", {
  fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
  Sigma <- sigma(fit)
  C <- cov2cor(Sigma)
  diag(C) <- 0
  k <- which(abs(C) == max(abs(C)), arr.ind = TRUE)[1, ]
  obs <- colnames(Sigma)[k[1]]; tgt <- colnames(Sigma)[k[2]]
  nd <- oaks[1, ]
  low <- predict_cond(fit, nd, matrix(0, 1, 1, dimnames = list(NULL, obs)))[, tgt]
  high <- predict_cond(fit, nd, matrix(2000, 1, 1, dimnames = list(NULL, obs)))[, tgt]
  expect_equal(sign(high - low), sign(C[k[1], k[2]]), ignore_attr = TRUE)
})

test_that("wrong newdata, responses or cond_responses stop with an error naming the argument", {
  fit <- fit_oaks()
  nd <- oaks[1:3, ]
  Y <- unclass(oaks$Abundance)[1:3, ]
  expect_error(predict(fit, responses = Y), "`responses` needs `newdata`")
  expect_error(predict(fit, nd, responses = Y[1:2, ]), "`responses` must have one row per sample of `newdata` \\(3\\); got 2")
  expect_error(predict(fit, nd, responses = Y[, -5]), "`responses` lacks 1 species of the fit: ")
  bad <- Y; bad[2, 3] <- NA
  expect_error(predict(fit, nd, responses = bad), "`responses` contains missing values")
  bad <- Y; bad[1, 1] <- 1.5
  expect_error(predict(fit, nd, responses = bad), "`responses` must hold counts: found non-integer")
  bad <- Y; bad[1, 1] <- -1
  expect_error(predict(fit, nd, responses = bad), "`responses` must hold counts: found negative")
  expect_error(predict(fit, nd, responses = unname(Y)[, -1]), "`responses` must have one column per species of the fit \\(114\\)")
  bad <- Y; colnames(bad)[1] <- "nope"
  expect_error(predict(fit, nd, responses = bad), "`responses` has column\\(s\\) that are not species of the fit: nope")
  expect_error(predict(fit, nd, responses = matrix("a", 3, 114)), "`responses` must be a numeric matrix")
  expect_error(predict(fit, nd, responses = Y, level = 2), "`level` must be 0")
  nd_na <- nd; nd_na$tree[2] <- NA
  expect_error(predict(fit, nd_na, responses = Y), "`newdata` contains missing values")

  Yo <- Y[, 1:3]
  expect_error(predict_cond(fit, cond_responses = Yo), "`newdata` is missing")
  expect_error(predict_cond(fit, nd), "`cond_responses` is missing")
  expect_error(predict_cond(fit, nd, Yo[1:2, ]), "`cond_responses` must have one row per sample of `newdata` \\(3\\); got 2")
  expect_error(predict_cond(fit, nd, unname(Yo)), "`cond_responses` must have column names")
  expect_error(predict_cond(fit, nd, Y), "`cond_responses` observes every species of the fit")
  bad <- Yo; colnames(bad)[2] <- "nope"
  expect_error(predict_cond(fit, nd, bad), "`cond_responses` has column\\(s\\) that are not species of the fit: nope")
  bad <- Yo; colnames(bad)[2] <- colnames(bad)[1]
  expect_error(predict_cond(fit, nd, bad), "`cond_responses` names a species twice")
  bad <- Yo; bad[3, 3] <- NA
  expect_error(predict_cond(fit, nd, bad), "`cond_responses` contains missing values")
  bad <- Yo; bad[3, 3] <- 0.25
  expect_error(predict_cond(fit, nd, bad), "`cond_responses` must hold counts")
  expect_error(predict_cond(fit, nd, Yo, var_par = NA), "`var_par` must be TRUE or FALSE")
  expect_error(predict_cond(fit, nd[, c("tree", "Sample")], Yo), "`newdata` has no column `Offset`")
})

test_that("predict() and predict_cond() agree with PLNmodels 1.3.2 on trichoptera", {
  ref <- read.csv(system.file("extdata", "prediction-reference.csv", package = "plntorch"),
                  comment.char = "#")
  get <- function(what) {
    r <- ref[ref$what == what, ]
    m <- matrix(NA_real_, max(r$row), max(r$col))
    m[cbind(r$row, r$col)] <- r$value
    m
  }
  d <- trichoptera
  d$Offset <- I(matrix(d$Offset, nrow(d), ncol(d$Abundance)))
  test <- seq(5, nrow(d), by = 5)
  fit <- PLN(Abundance ~ Wind + Temperature + offset(log(Offset)), data = d[-test, ])
  nd <- d[test, ]
  Y <- unclass(d$Abundance)[test, ]
  sp <- colnames(Y)
  obs <- sp[sort(order(colSums(unclass(d$Abundance)[-test, ]), decreasing = TRUE)[1:8])]
  X <- model.matrix(~ Wind + Temperature, nd)
  O <- log(unclass(nd$Offset))

  ## (1) The VE step alone, from PLNmodels' own B and Sigma: both packages maximise the same
  ## strictly concave function of M and S^2. plntorch's VE step reaches at least PLNmodels' ELBO,
  ## and its M is within the distance PLNmodels stops short at (ftol 1e-8: 0.022 at most on the
  ## link here, in flat directions of zero counts; inst/bench/results/prediction-2026-11-23.md).
  pm <- fit$clone()  # a copy: fit is an R6 object (a reference)
  pm$model_par <- list(B = get("B"), Sigma = get("Sigma"), Omega = solve(get("Sigma")))
  dimnames(pm$model_par$B) <- dimnames(coef(fit))
  dimnames(pm$model_par$Sigma) <- dimnames(pm$model_par$Omega) <- dimnames(sigma(fit))
  link <- predict(pm, nd, responses = Y)
  S2 <- 2 * (log(predict(pm, nd, responses = Y, type = "response")) - link)
  ve_elbo <- function(link, S2) {
    Mres <- link - O - X %*% pm$model_par$B
    Om <- pm$model_par$Omega
    sum(Y * link - exp(link + S2 / 2) + 0.5 * log(S2) - 0.5 * (Mres %*% Om) * Mres -
          0.5 * sweep(S2, 2, diag(Om), "*"))
  }
  expect_gte(ve_elbo(link, S2), ve_elbo(get("predict_link"), get("predict_S2")) - 1e-8)
  expect_lt(max(abs(link - get("predict_link"))), 0.05)
  cond <- predict_cond(pm, nd, Y[, obs], var_par = TRUE)
  expect_lt(max(abs(unclass(cond)[, ] - get("predict_cond_link"))), 0.01)
  expect_lt(max(abs(attr(cond, "M") - get("predict_cond_M"))), 0.01)
  expect_lt(max(abs(t(apply(attr(cond, "S"), 3, diag)) - get("predict_cond_S_diag"))), 1e-3)

  ## (2) The whole pipeline: plntorch's fit differs from PLNmodels' (a higher loglik), and its
  ## predictions differ by about the fits' own difference on the population prediction X B of
  ## those samples (measured: 1.6 and 1.5 against 1.3).
  fits_diff <- max(abs(X %*% (coef(fit) - get("B"))))
  expect_lt(fits_diff, 2)
  expect_lt(max(abs(predict(fit, nd, responses = Y) - get("predict_link"))), 1.5 * fits_diff)
  expect_lt(max(abs(unclass(predict_cond(fit, nd, Y[, obs]))[, ] - get("predict_cond_link"))),
            1.5 * fits_diff)
})
