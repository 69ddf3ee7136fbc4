## The R6 class of a PLN-PCA fit: a fit of the base (R/fit-base.R) with PLN-PCA's fields (rank,
## C, scores, rotation, ...), its latent layer built on request when large, and $project().

#' PLN-PCA fits: the R6 class of the models of PLNPCA()
#'
#' Each model of a [PLNPCA()] collection (`getModel(pca, q)`) is an object of
#' this class, a [PLNfit_torch] with PLN-PCA's fields, as PLNmodels'
#' `PLNPCAfit`. Its class vector is `c("PLNPCAfit_torch", "PLNPCAfit",
#' "PLNfit_torch", "PLNfit", "R6")`.
#'
#' @section Fields:
#' Those of [PLNfit_torch], with
#' * `rank` (q); `model_par`: `B` (d x p), `C` (p x q loadings), `Sigma = C
#'   (M' W M + diag(colSums(W S2))) C' / sum(w)` (p x p, of rank q);
#'   `var_par`: `M`, `S2`, `S` (n x q); `vcov_model`: `"rank"`;
#' * `nb_param = p d + p q - q (q - 1) / 2`, `entropy`, `R_squared` (from the
#'   engine, see [PLNPCA()]), `loglik`, `loglik_vec`, `BIC`, `ICL`,
#'   `criteria`;
#' * `scores`, `rotation`, `percent_var`, `eig`, `corr_circle`: PLNmodels'
#'   visualisation (the SVD of the centred M C');
#' * `latent` (O + X B + M C'), `latent_pos` (M C'): stored when n p is at
#'   most `getOption("plntorch.pca_store_latent", 1e7)`, built when read
#'   otherwise (see [PLNPCA()], "What is computed where"); `fitted`
#'   (exp(latent + S2 (C * C)' / 2), PLNmodels' fitted values of PLN-PCA),
#'   built when read, under the same size limit;
#' * `responses`: the counts, for dense counts (`NULL` for sparse ones);
#'   `covariates`: the model matrix X (as [model.matrix()] gives it, named);
#'   `optim_par`, `call`, `formula`, `terms`, `xlevels`, `contrasts`,
#'   `weights`.
#'
#' @section Methods:
#' * `$project(newdata, control = PLNPCA_param())`: the scores of new samples
#'   in the fit's axes (their variational scores fitted with B and C held,
#'   then centred and rotated as `scores`); `newdata` is a data frame with the
#'   variables of the fit's formula, counts included (dense or sparse).
#' * `$update(B, Sigma, C, M, S2, Ji, R2, Z, A, monitoring)`: PLNmodels'
#'   setter; the fields that follow from B, C, M and S2 (Sigma, latent,
#'   scores, rotation, criteria, ...) are recomputed, unless given.
#' * `$predict()`, `$print()`, `$show()`, `$clone()` as [PLNfit_torch].
#'
#' What the base offers and PLN-PCA fits do not: standard errors
#' ([standard_error()], [summary()][summary.PLNfit_torch()], `vcov(type =
#' "main")`), [predict_cond()], `predict(responses = )` at level 1 (use
#' `$project()`), `$optimize()` and `$postTreatment()` (fit with
#' [PLNPCA()]), and [residuals()] of sparse counts: each is an error saying
#' so. `coef()`, `sigma()`, `vcov(type = "covariance")`, `fitted()`,
#' `residuals()` (dense counts), `logLik()`, `nobs()` and `predict()`
#' (`newdata` without `responses`: the population prediction `O + X B`, or
#' on the response scale `exp(O + X B + diag(Sigma) / 2)`) work as for a
#' [PLN()] fit.
#'
#' @format An [R6::R6Class] generator; the objects are made by [PLNPCA()].
#' @seealso [PLNPCA()], [plot.PLNPCAfit_torch()], [PLNfit_torch]
#' @export
#' @examples
#' pca <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 1:2)
#' m <- getModel(pca, 2)
#' class(m)
#' head(m$scores)
#' m$percent_var
PLNPCAfit_torch <- R6::R6Class(
  classname = c("PLNPCAfit_torch", "PLNPCAfit"),
  inherit = PLNfit_torch,
  public = list(
    ## internal: PLNPCA() makes them. `parts`: an environment holding X, O, w, the sample names
    ## and the dense counts Y, shared by the fits of a family.
    initialize = function(fields, parts) {
      super$initialize(fields, w = parts$w)
      private$parts <- parts
      invisible(self)
    },

    project = function(newdata, control = PLNPCA_param()) {
      project_pca(self, newdata, control)
    },

    update = function(B = NA, Sigma = NA, Omega = NA, C = NA, M = NA, S2 = NA, Ji = NA, R2 = NA,
                      Z = NA, A = NA, monitoring = NA) {
      if (!identical(Omega, NA))
        stop_arg("`Omega`: a PLN-PCA fit has no Omega (its Sigma = C C' is of rank q).")
      if (!identical(A, NA))
        stop_arg("`A`: the fitted values of a PLN-PCA fit follow from B, C, M and S2 (set those).")
      f <- private$.f
      given <- function(x) !identical(x, NA)
      mp <- f$model_par; vp <- f$var_par
      if (given(B)) mp$B <- private$same_shape(B, mp$B, "B")
      if (given(C)) mp$C <- private$same_shape(C, mp$C, "C")
      if (given(M)) vp$M <- private$same_shape(M, vp$M, "M")
      if (given(S2)) vp$S2 <- private$same_shape(S2, vp$S2, "S2")
      Ji <- if (given(Ji)) {
        if (!is.numeric(Ji) || length(Ji) != f$n)
          stop_arg(sprintf("`Ji` must be a numeric vector of length n = %d.", f$n))
        stats::setNames(as.double(Ji), names(f$loglik_vec))
      } else f$loglik_vec
      new <- pca_fit_fields(mp$B, mp$C, vp$M, vp$S2, Ji, if (given(R2)) R2 else f$R_squared,
                            private$parts)
      if (given(Sigma)) new$model_par$Sigma <- private$same_shape(Sigma, new$model_par$Sigma, "Sigma")
      if (given(Z)) {
        new$latent <- private$same_shape(Z, matrix(0, f$n, f$p), "Z")
        dimnames(new$latent) <- list(private$parts$samples, rownames(mp$C))
      }
      f[names(new)] <- new
      if (given(monitoring)) f$optim_par <- monitoring
      private$.f <- f
      invisible(self)
    },

    optimize = function(...) {
      stop_arg("$optimize() is not available for PLN-PCA fits: fit the rank again with ",
               "PLNPCA(..., ranks = ", self$rank, ").")
    },

    postTreatment = function(...) {
      stop_arg("$postTreatment() is not available for PLN-PCA fits: PLNPCA() computes their ",
               "R_squared, and they have no standard errors (as in PLNmodels).")
    }
  ),
  private = list(
    parts = NULL  # X, O (n x p, or n x 1 for sparse counts), w, sample names, Y (dense counts)
  ),
  ## PLN-PCA's fields beyond the base's (written out: this file is collated before fit-base.R)
  active = list(
    rank = function(value) {
      if (missing(value)) private$.f$rank else private$.f$rank <- value
    },
    scores = function(value) {
      if (missing(value)) private$.f$scores else private$.f$scores <- value
    },
    rotation = function(value) {
      if (missing(value)) private$.f$rotation else private$.f$rotation <- value
    },
    percent_var = function(value) {
      if (missing(value)) private$.f$percent_var else private$.f$percent_var <- value
    },
    eig = function(value) {
      if (missing(value)) private$.f$eig else private$.f$eig <- value
    },
    corr_circle = function(value) {
      if (missing(value)) private$.f$corr_circle else private$.f$corr_circle <- value
    },
    covariates = function(value) {
      if (missing(value)) private$parts$X
      else stop_arg("the covariates of a PLN-PCA fit are its family's: refit with PLNPCA() for others.")
    },
    responses = function(value) {
      if (missing(value)) private$parts$Y
      else stop_arg("the counts of a PLN-PCA fit are its family's: refit with PLNPCA() for others.")
    },
    latent = function(value) {
      if (!missing(value)) return(private$.f$latent <- value)
      x <- private$.f$latent
      if (is.null(x)) pca_latent(private$.f, private$parts, "latent") else x
    },
    latent_pos = function(value) {
      if (!missing(value)) return(private$.f$latent_pos <- value)
      x <- private$.f$latent_pos
      if (is.null(x)) pca_latent(private$.f, private$parts, "latent_pos") else x
    },
    fitted = function(value) {
      if (!missing(value)) stop_arg("the fitted values of a PLN-PCA fit follow from its parameters: set those with $update().")
      pca_latent(private$.f, private$parts, "fitted")
    }
  )
)

## The base's methods that PLN-PCA fits do not offer: a one-line error each.
pca_unavailable <- function(what, instead = NULL) {
  stop_arg(what, " is not available for PLN-PCA fits", if (!is.null(instead)) paste0(": ", instead),
           ".")
}

#' @export
standard_error.PLNPCAfit_torch <- function(object, type = c("sandwich", "variational", "jackknife", "bootstrap"),
                                           parameter = c("B", "Omega"), ...) {
  pca_unavailable("standard_error()", "PLN-PCA has no standard errors of B (as in PLNmodels)")
}

#' @export
summary.PLNPCAfit_torch <- function(object, ...) {
  pca_unavailable("summary()", "it tabulates standard errors of B, which PLN-PCA has not; print(fit) shows the criteria")
}

#' @export
vcov.PLNPCAfit_torch <- function(object, type = c("main", "covariance"), ...) {
  type <- check_choice(type[1L], "type", c("main", "covariance"))
  if (type == "covariance") return(object$model_par$Sigma)
  pca_unavailable("vcov(type = \"main\")", "PLN-PCA has no covariance of B; vcov(fit, type = \"covariance\") gives Sigma")
}

#' @export
predict_cond.PLNPCAfit_torch <- function(object, newdata, cond_responses,
                                         type = c("link", "response"), var_par = FALSE) {
  pca_unavailable("predict_cond()", "fit PLN() for conditional predictions")
}

#' @export
predict.PLNPCAfit_torch <- function(object, newdata, responses = NULL,
                                    type = c("link", "response"), level = 1, ...) {
  if (!missing(newdata) && !is.null(newdata) && !is.null(responses) && !identical(level, 0) &&
      !identical(level, 0L))
    pca_unavailable("predict(responses = ) at level 1",
                    "fit$project(newdata) gives the scores of new samples from their counts")
  NextMethod()
}

#' @export
residuals.PLNPCAfit_torch <- function(object, type = c("pearson", "response"), ...) {
  if (is.null(object$responses))
    pca_unavailable("residuals() of sparse counts", "the fit keeps no n x p counts")
  NextMethod()
}
