## The covariance structures of PLN_param(covariance = ): at or above PLNmodels' log-likelihoods
## on every validation set (inst/extdata/covariance-reference.csv, written by
## inst/bench/validation.R --covariance ... --reference), every backend the same optimum, and
## the shapes and parameter counts PLNmodels gives.
reference <- utils::read.csv(system.file("extdata", "covariance-reference.csv", package = "plntorch"))

structure_control <- function(covariance, p, ...) {
  PLN_param(covariance = covariance, ...,
            Omega = if (covariance == "fixed") diag(p),
            C = if (covariance == "genpop") 0.5^abs(outer(seq_len(p), seq_len(p), "-")))
}

structure_fit <- function(row, ...) {
  env <- new.env()
  utils::data(list = row$data, package = "plntorch", envir = env)
  rhs <- if (row$offset) paste(row$rhs, "+ offset(log(Offset))") else row$rhs
  PLN(stats::as.formula(paste("Abundance ~", rhs)), data = env[[row$data]],
      control = structure_control(row$covariance, row$p, ...))
}

test_that("every structure is at or above PLNmodels' best on every validation set", {
  expect_setequal(unique(reference$covariance), c("diagonal", "spherical", "fixed", "genpop"))
  for (i in seq_len(nrow(reference))) {
    row <- reference[i, ]
    info <- sprintf("%s ~ %s [%s]", row$data, row$rhs, row$covariance)
    fit <- suppressWarnings(structure_fit(row))
    tol <- if (row$data == "microcosm") 2.2 else max(0.1, 1e-5 * abs(row$best_loglik))
    expect_gte(fit$loglik, row$best_loglik - tol)
    ## "boundary": variances that collapse to 0 (test-status.R), named, the supremum above
    expect_true(fit$optim_par$status %in% c("converged", "boundary"), info = info)
    expect_identical(length(fit$optim_par$boundary) > 0, fit$optim_par$status == "boundary",
                     info = info)
    expect_true(all(diff(fit$optim_par$objective) > 0), info = info)
    expect_identical(fit$vcov_model, row$covariance)
  }
})

test_that("every backend reaches the same optimum for every structure", {
  row <- reference[reference$data == "mollusk" & reference$rhs != "1", ][1, ]
  for (cv in c("diagonal", "spherical", "fixed", "genpop")) {
    row$covariance <- cv
    fits <- lapply(pln_backends()$backends, function(b) suppressWarnings(structure_fit(row, backend = b)))
    ## each stops within its tolerance (1e-8 relative) of the optimum, rounding apart. Where the
    ## optimum is on the boundary (the diagonal structure here: variances collapsing to 0), the
    ## backends approach it along their own paths and stop at different distances from it: they
    ## agree on the supremum, loglik + boundary_gap, and on the species that collapse.
    sup <- function(f) f$loglik + f$optim_par$boundary_gap
    for (f in fits) {
      expect_equal(sup(f), sup(fits[[1]]), tolerance = 1e-6, info = cv)
      expect_identical(f$optim_par$boundary, fits[[1]]$optim_par$boundary, info = cv)
      expect_gte(f$optim_par$boundary_gap, 0)
    }
    if (cv == "diagonal") expect_identical(fits[[1]]$optim_par$status, "boundary")
  }
})

test_that("parameter counts, shapes and the structures' own parameters are PLNmodels'", {
  p <- ncol(oaks$Abundance); d <- 3
  fits <- lapply(setNames(nm = c("full", "diagonal", "spherical", "fixed", "genpop")), function(cv)
    PLN(Abundance ~ tree + offset(log(Offset)), data = oaks, control = structure_control(cv, p)))
  expect_identical(vapply(fits, `[[`, numeric(1), "nb_param"),
                   c(full = p * d + p * (p + 1) / 2, diagonal = p * d + p,
                     spherical = p * d + 1, fixed = p * d, genpop = p * d + 2))
  for (f in fits) {
    expect_identical(dim(f$model_par$Sigma), c(p, p))
    ## "fixed" reports the covariance of its variational parameters beside the given Omega
    if (f$vcov_model != "fixed")
      expect_equal(unname(f$model_par$Sigma %*% f$model_par$Omega), diag(p), tolerance = 1e-6,
                   info = f$vcov_model)
    expect_equal(f$BIC, f$loglik - log(f$n) * f$nb_param / 2)
  }
  S <- fits$diagonal$model_par$Sigma
  expect_identical(S[upper.tri(S)], rep(0, p * (p - 1) / 2))
  expect_equal(unname(diag(S)), unname(colMeans(fits$diagonal$latent_pos^2 + fits$diagonal$var_par$S2)))
  expect_equal(unname(fits$spherical$model_par$Sigma),
               diag(mean(fits$spherical$latent_pos^2 + fits$spherical$var_par$S2), p))
  expect_equal(unname(fits$fixed$model_par$Omega), diag(p))
  g <- fits$genpop$gen_par
  expect_true(g$rho > 0 && g$rho < 1 && g$sigma2 > 0)
  C <- 0.5^abs(outer(seq_len(p), seq_len(p), "-"))
  expect_equal(unname(fits$genpop$model_par$Sigma), g$sigma2 * (g$rho * C + (1 - g$rho) * diag(p)))
  expect_null(fits$full$gen_par)
  expect_output(print(fits$genpop), "genpop covariance")
})

test_that("the first-order rules run every structure too", {
  p <- ncol(oaks$Abundance)
  for (cv in c("diagonal", "genpop")) {
    fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
               control = structure_control(cv, p, optimizer = "rprop", maxit = 300, tol = 0))
    best <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks, control = structure_control(cv, p))
    expect_true(is.finite(fit$loglik))
    expect_lt(fit$loglik, best$loglik + 1e-6)
    expect_gt(fit$loglik, best$loglik - 0.01 * abs(best$loglik))
  }
})

test_that("a structure's matrices are checked, naming the argument", {
  p <- ncol(oaks$Abundance)
  expect_error(PLN_param(covariance = "fixed"), "`Omega` is required when covariance = \"fixed\"")
  expect_error(PLN_param(covariance = "genpop"), "`C` is required when covariance = \"genpop\"")
  expect_error(PLN_param(Omega = diag(3)), "`Omega` is used only with covariance = \"fixed\"")
  expect_error(PLN_param(covariance = "bogus"), "`covariance` must be one of")
  expect_error(PLN_param(covariance = "fixed", Omega = matrix(1:6, 2)), "`Omega` must be a square numeric matrix")
  expect_error(PLN_param(covariance = "fixed", Omega = matrix(c(1, 2, 3, 1), 2)), "`Omega` must be symmetric")
  expect_error(PLN_param(covariance = "fixed", Omega = -diag(2)), "`Omega` must be positive definite")
  expect_error(PLN_param(covariance = "genpop", C = 2 * diag(2)), "`C` must be a correlation matrix")
  expect_error(PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
                   control = PLN_param(covariance = "fixed", Omega = diag(3))),
               sprintf("`Omega` must be %d x %d, one row and column per species", p, p))
})
