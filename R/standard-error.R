#' Standard errors of the coefficients of a PLN fit
#'
#' Component-wise standard errors of B (or of Omega), as PLNmodels computes
#' them, with the same names and defaults:
#' * `"sandwich"` (default): the sandwich (robust) estimator of PLNmodels, the
#'   variance of an M-estimator of B whose "bread" H = sum_i w_i kron(P_i,
#'   x_i x_i') uses per sample P_i = (Sigma + diag(D_i))^-1, D_ij = 1 / A_ij +
#'   S_ij^4 / (1 + S_ij^2 (A_ij + Omega_jj)), A the fitted counts, and whose
#'   "meat" sums the outer products of the scores w_i (y_i - A_i) kron x_i. It
#'   accounts for the latent layer's variance, and its 95% intervals cover B
#'   at close to that rate (`inst/bench/coverage.R`, `vignette("toolbox")`);
#' * `"variational"`: per species the inverse of X' diag(w A_j) X, the
#'   curvature of the ELBO in B with the variational parameters held fixed.
#'   Cheap, but it ignores the latent layer's variance and is far too small
#'   when Sigma is large (PLNmodels: "highly underestimated"); for Omega,
#'   PLNmodels' 2 Omega_jj Omega_kk / n;
#' * `"jackknife"`: from n refits, each leaving out one sample;
#' * `"bootstrap"`: from refits on multinomial resamples of the samples.
#'
#' The sandwich and variational standard errors are computed when asked for
#' unless the fit stores them (`PLN_param(config_post = list(sandwich_var =
#' TRUE, variational_var = TRUE))`); the jackknife and the bootstrap refit the
#' model (warm started from the fit, on its engine, backend and device), so
#' they are computed only at fitting time, through `config_post = list(jackknife
#' = TRUE)` or `list(bootstrap = R)`.
#'
#' @param object a fit returned by [PLN()].
#' @param type `"sandwich"` (default), `"variational"`, `"jackknife"` or
#'   `"bootstrap"`.
#' @param parameter `"B"` (default) or `"Omega"` (variational, jackknife and
#'   bootstrap only, as in PLNmodels; not for `covariance = "fixed"`, where
#'   Omega is given).
#' @param ... not used.
#' @details With weights, the variational information is weighted (X' diag(w
#'   A_j) X), and the sandwich takes w_i in its bread and w_i^2 in its meat, so
#'   that it does not change when every weight is multiplied by one number.
#'   The sandwich's cost is n Cholesky factors of p x p matrices and one of the
#'   pd x pd bread; PLNmodels' code also forms n pd x pd Kronecker products and
#'   the pd x pd meat, which this one never forms (the variances are the
#'   squared norms of the rows of H^-1 G', G the n x pd scores).
#'
#'   A species absent from every sample of a level of a factor has no finite
#'   coefficient for it (see [PLN()], "Convergence"): the fit drifts towards
#'   -Inf, the fitted counts there vanish, and with them the sandwich's bread
#'   and meat, which would then report a small variance (PLNmodels' code
#'   reports numbers of any sign there). Such coefficients (those loading on a
#'   direction of the species' coefficients that no positive count sees and
#'   whose information is near zero) get the sandwich standard error `NA`, with
#'   a warning; the others are computed without them. The variational,
#'   jackknife and bootstrap standard errors of these coefficients are `NA`
#'   too, by the same rule, and so are the variational ones of a species whose
#'   information is singular or not positive definite (whatever the scale of
#'   the covariates).
#'
#'   Uncertainty that cannot be estimated is `NA`, never a small number: each
#'   estimator needs more samples than covariate columns (n > d; the jackknife
#'   n >= max(3, d + 2), as its refits leave one sample out), else
#'   `standard_error()` is an error naming it (and `PLN()` refuses such a
#'   `config_post` before fitting). A jackknife or bootstrap refit whose
#'   design is rank-deficient (a level of a factor left out) gets the fit's
#'   check: it is refitted on the columns it identifies, and the coefficients
#'   it cannot identify get the standard error `NA`, with one warning.
#' @return A matrix of standard errors of the shape of B (d x p, with the
#'   dimnames of `coef(object)`), or of Omega (p x p).
#' @seealso [vcov.PLNfit_torch()] for the covariance matrices, [summary.PLNfit_torch()]
#'   for a table with z values, [PLN_param()] (`config_post`).
#' @export
#' @examples
#' fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
#' standard_error(fit)[, 1:4]
#' standard_error(fit, type = "variational")[, 1:4]
#' standard_error(fit, parameter = "Omega", type = "variational")[1:3, 1:3]
#' ## the jackknife refits the model once per sample (trichoptera: 49 samples)
#' fit_jk <- PLN(Abundance ~ 1 + offset(log(Offset)), data = trichoptera,
#'               control = PLN_param(config_post = list(jackknife = TRUE)))
#' standard_error(fit_jk, type = "jackknife")[, 1:4]
#' fit_jk$uncertainty$jackknife$seconds
standard_error <- function(object, type = c("sandwich", "variational", "jackknife", "bootstrap"),
                           parameter = c("B", "Omega"), ...) {
  UseMethod("standard_error", object)
}

#' @rdname standard_error
#' @export
standard_error.PLNfit_torch <- function(object, type = c("sandwich", "variational", "jackknife", "bootstrap"),
                                        parameter = c("B", "Omega"), ...) {
  type <- check_choice(type[1L], "type", c("sandwich", "variational", "jackknife", "bootstrap"))
  parameter <- check_choice(parameter[1L], "parameter", c("B", "Omega"))
  res <- uncertainty(object, type)
  if (parameter == "B") return(sqrt(res$var_B))
  if (identical(object$vcov_model, "fixed"))
    stop_arg("`parameter` = \"Omega\": Omega is given, not estimated, with covariance = \"fixed\".")
  if (is.null(res$var_Omega))
    stop_arg(sprintf("`parameter` = \"Omega\" has no %s standard error (as in PLNmodels): use type = \"variational\", \"jackknife\" or \"bootstrap\".",
                     type))
  sqrt(res$var_Omega)
}

## The stored post-treatment of `type`, or the cheap ones computed now.
uncertainty <- function(object, type, full = FALSE) {
  why <- uncertainty_n_problem(type, object$n, object$d)
  if (!is.null(why)) stop_arg(sprintf("`type` = \"%s\": %s.", type, why))
  res <- object$uncertainty[[type]]
  if (!is.null(res) && !(full && type == "sandwich" && is.null(res$vcov_B))) return(res)
  switch(type,
    variational = variance_variational(object),
    sandwich = variance_sandwich(object, full = if (full) TRUE else NULL),
    stop_arg(sprintf(paste0(
      "`type` = \"%s\": this fit has no %s estimate; it refits the model, so it is computed ",
      "when fitting: PLN(..., control = PLN_param(config_post = list(%s)))."),
      type, type, if (type == "jackknife") "jackknife = TRUE" else "bootstrap = 100")))
}

#' Covariance matrix of the coefficients of a PLN fit
#'
#' As PLNmodels' `vcov()`: the covariance matrix of vec(B), the coefficients
#' species by species (`type = "main"`), or Sigma (`type = "covariance"`).
#'
#' @param object a fit returned by [PLN()].
#' @param type `"main"` (default): the pd x pd covariance of the coefficients,
#'   rows and columns named `species_covariate`, species-major (the d
#'   coefficients of the first species, then those of the second...);
#'   `"covariance"`: Sigma, as [sigma()].
#' @param method the estimator (see [standard_error()]): `"variational"`
#'   (default, as PLNmodels' `vcov()`; block diagonal, one d x d block per
#'   species), `"sandwich"` (full), `"jackknife"` or `"bootstrap"` (block
#'   diagonal; need `config_post` at fitting time). The square roots of the
#'   diagonal are `standard_error(object, method)`.
#' @param ... not used.
#' @importFrom stats vcov
#' @return A pd x pd matrix (`"main"`) or p x p (`"covariance"`).
#' @export
#' @examples
#' fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
#' V <- vcov(fit)
#' dim(V)
#' V[1:3, 1:3]
#' vcov(fit, method = "sandwich")[1:3, 1:3]
vcov.PLNfit_torch <- function(object, type = c("main", "covariance"),
                              method = c("variational", "sandwich", "jackknife", "bootstrap"), ...) {
  type <- check_choice(type[1L], "type", c("main", "covariance"))
  if (type == "covariance") return(object$model_par$Sigma)
  method <- check_choice(method[1L], "method", c("variational", "sandwich", "jackknife", "bootstrap"))
  B <- object$model_par$B
  d <- nrow(B); p <- ncol(B); pd <- d * p
  if (8 * as.double(pd)^2 > getOption("plntorch.max_memory", 8e9))
    stop_arg(sprintf("`type` = \"main\": the %d x %d covariance of B needs %.1f GB: use standard_error() for the variances.",
                     pd, pd, 8 * pd^2 / 1e9))
  res <- uncertainty(object, method, full = TRUE)
  if (method == "sandwich") return(res$vcov_B)
  V <- matrix(0, pd, pd, dimnames = rep(list(vec_names(B)), 2L))
  for (j in seq_len(p)) {
    idx <- (j - 1L) * d + seq_len(d)
    V[idx, idx] <- res$vcov_B[, , j]
  }
  V
}
