## The R6 fit base: the class of PLN() fits, and the parent of every family's fit (PLN-PCA's
## today). Its fields are those of PLNmodels' PLNfit (model_par, var_par, latent, fitted,
## loglik, criteria, ...) plus plntorch's own (responses, covariates, call, terms, uncertainty,
## ...); every S3 method of "PLNfit_torch" (coef, sigma, vcov, fitted, residuals, predict,
## standard_error, nobs, plot, summary, logLik, print) applies to every family's fit unless the
## family overrides it.

## The stored fields of a fit, each an active binding over private$.f (read, and set by
## assignment for compatibility with the list fits of plntorch <= 0.1: `fit$uncertainty$x <- `).
.fit_fields <- c("n", "p", "d", "model_par", "var_par", "optim_par", "latent", "latent_pos",
                 "fitted", "nb_param", "vcov_model", "gen_par", "loglik", "loglik_vec", "BIC",
                 "ICL", "entropy", "R_squared", "criteria", "responses", "covariates", "call",
                 "formula", "terms", "xlevels", "contrasts", "weights", "uncertainty")

## One active binding per name, reading and writing private$.f[[name]]. Written out as literal
## functions (R6 replaces their environments, so they cannot close over `name`).
field_bindings <- function(names) {
  stats::setNames(lapply(names, function(nm) eval(bquote(function(value) {
    if (missing(value)) private$.f[[.(nm)]] else private$.f[[.(nm)]] <- value
  }), baseenv())), names)
}

#' Fits of plntorch: the R6 class of PLN() fits
#'
#' [PLN()] returns an object of this class; the fits of the other families
#' (e.g. [PLNPCAfit_torch] of [PLNPCA()]) inherit from it. Its class vector is
#' `c("PLNfit_torch", "PLNfit", "R6")`: PLNmodels' class name after
#' plntorch's, so `inherits(fit, "PLNfit")` holds and plntorch's S3 methods
#' dispatch first.
#'
#' @section Fields:
#' Those of PLNmodels' `PLNfit`, read as `fit$name` (active bindings over the
#' stored values):
#' * `n`, `p`, `d`: samples, species, covariate columns;
#' * `model_par`: `B` (d x p), `Sigma`, `Omega` (p x p);
#' * `var_par`: `M` (n x p, X B included), `S2`, `S`;
#' * `latent` (Z = O + M), `latent_pos` (M - X B), `fitted` (exp(Z + S2 / 2));
#' * `loglik`, `loglik_vec`, `nb_param`, `BIC`, `ICL`, `entropy`, `criteria`
#'   (a one-row data frame of `nb_param`, `loglik`, `BIC`, `ICL`),
#'   `R_squared`, `vcov_model`, `optim_par`;
#'
#' and plntorch's: `gen_par` (`"genpop"`), `responses` (Y), `covariates`
#' (X), `weights`, `call`, `formula`, `terms`, `xlevels`, `contrasts`,
#' `uncertainty` (see [PLN()], "Value"). A field can be set by assignment
#' (`fit$uncertainty <- NULL`), which changes nothing else; `$update()` keeps
#' the criteria in step with what it sets.
#'
#' R6 objects are references: `g <- fit; g$update(...)` changes `fit` too;
#' `g <- fit$clone()` makes a copy. Compare two fits by their fields (`all.equal(f1$model_par, f2$model_par)`),
#' not with `identical(f1, f2)`, which compares the objects' identities.
#'
#' @section Methods:
#' * `$update(B, Sigma, Omega, M, S2, Ji, R2, Z, A, monitoring)`: PLNmodels'
#'   setter. Each argument given (not `NA`) replaces its field: `B`, `Sigma`,
#'   `Omega` in `model_par`; `M`, `S2` in `var_par` (with `S = sqrt(S2)`);
#'   `Ji` the `loglik_vec`; `R2` the `R_squared`; `Z` the `latent`; `A` the
#'   `fitted`; `monitoring` the `optim_par`. `loglik`, `BIC`, `ICL`,
#'   `entropy` and `criteria` follow `Ji` and `S2`; `latent_pos` follows `M`
#'   and `B`; `latent` and `fitted` are not recomputed (give `Z` and `A`), as
#'   in PLNmodels. A matrix of other dimensions than the field's is an error.
#'   Returns the fit, invisibly.
#' * `$optimize(responses, covariates, offsets, weights, config)`: PLNmodels'
#'   call to the optimiser: refits the model from the fit's current `B`, `M`
#'   and `S` (a warm start) and updates every field (`R_squared` included).
#'   Each argument defaults to the fit's own (its counts, model matrix,
#'   offsets, weights, and the [PLN_param()] it was fitted with); `config` is a
#'   [PLN_param()] or a named list of its arguments. The post-treatments of the
#'   former optimum (`uncertainty`) are dropped: `$postTreatment()` computes
#'   them again. Not for the fits of [PLNPCA()].
#' * `$postTreatment(config_post)`: runs the post-treatments of
#'   `PLN_param(config_post = )` on the fit (variational or sandwich
#'   variances, jackknife, bootstrap) and stores them in `uncertainty`.
#' * `$predict(newdata, responses, type, level, ...)`: [predict()] of the fit
#'   ([predict.PLNfit_torch()]); `$predict_cond(newdata, cond_responses, type,
#'   var_par)`: [predict_cond()].
#' * `$print()`, `$show()`: [print()] of the fit.
#' * `$clone()`: a copy (R6).
#'
#' @format An [R6::R6Class] generator; the objects are made by [PLN()].
#' @seealso [PLN()], [PLNfit_torch-methods], [PLNPCAfit_torch]
#' @export
#' @examples
#' fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
#' class(fit)
#' inherits(fit, "PLNfit")
#' fit$loglik
#' fit$model_par$B[, 1:4]
#' all.equal(fit$predict(oaks[1:3, ]), predict(fit, oaks[1:3, ]))
PLNfit_torch <- R6::R6Class(
  classname = c("PLNfit_torch", "PLNfit"),
  public = list(
    ## stores the fields (internal: fits are made by PLN() and the families' functions)
    initialize = function(fields, offsets = NULL, w = NULL, control = NULL) {
      private$.f <- fields
      private$offsets <- offsets
      private$w <- w
      private$control <- control
      invisible(self)
    },

    update = function(B = NA, Sigma = NA, Omega = NA, M = NA, S2 = NA, Ji = NA, R2 = NA, Z = NA,
                      A = NA, monitoring = NA) {
      f <- private$.f
      given <- function(x) !identical(x, NA)
      if (given(B)) f$model_par$B <- private$same_shape(B, f$model_par$B, "B")
      if (given(Sigma)) f$model_par$Sigma <- private$same_shape(Sigma, f$model_par$Sigma, "Sigma")
      if (given(Omega)) f$model_par$Omega <- private$same_shape(Omega, f$model_par$Omega, "Omega")
      if (given(M)) f$var_par$M <- private$same_shape(M, f$var_par$M, "M")
      if (given(S2)) {
        f$var_par$S2 <- private$same_shape(S2, f$var_par$S2, "S2")
        f$var_par$S <- sqrt(f$var_par$S2)
      }
      if (given(Ji)) {
        if (!is.numeric(Ji) || length(Ji) != length(f$loglik_vec))
          stop_arg(sprintf("`Ji` must be a numeric vector of length n = %d.", length(f$loglik_vec)))
        f$loglik_vec <- stats::setNames(as.double(Ji), names(f$loglik_vec))
      }
      if (given(R2)) f$R_squared <- R2
      if (given(Z)) f$latent <- private$same_shape(Z, f$latent, "Z")
      if (given(A)) f$fitted <- private$same_shape(A, f$fitted, "A")
      if (given(monitoring)) f$optim_par <- monitoring
      private$.f <- f
      private$after_update(B = given(B), M = given(M))
      invisible(self)
    },

    optimize = function(responses = self$responses, covariates = self$covariates,
                        offsets = private$offsets, weights = self$weights, config = NULL) {
      if (is.null(private$control))
        stop_arg("this fit holds no control to refit with: refit it with PLN().")
      control <- if (is.null(config)) private$control else as_pln_param(config)
      dat <- check_pln_data(
        Y = responses, O = offsets, X = covariates, w = weights,
        labels = c(Y = "`responses`", O = "`offsets`", X = "`covariates`", w = "`weights`"))
      if (!identical(dim(dat$Y), c(self$n, self$p)) || ncol(dat$X) != self$d)
        stop_arg(sprintf(paste0(
          "$optimize() continues from the fit's parameters: `responses` must be %d x %d and ",
          "`covariates` have %d columns (got %d x %d and %d); fit other data with PLN()."),
          self$n, self$p, self$d, nrow(dat$Y), ncol(dat$Y), ncol(dat$X)))
      dat$names <- list(samples = rownames(self$var_par$M), species = colnames(self$model_par$B),
                        covariates = rownames(self$model_par$B))
      dat$n <- nrow(dat$Y); dat$p <- ncol(dat$Y)
      control$init <- residual_start(list(B = self$model_par$B, M = self$var_par$M,
                                          S = self$var_par$S), dat)
      res <- fit_pln_engine(dat, control)
      warn_not_converged(res)
      f <- private$.f
      keep <- c("call", "formula", "terms", "xlevels", "contrasts")
      private$.f <- c(pln_fit_fields(res, dat, rsquared = control$config_post$rsquared), f[keep],
                      list(weights = weights, covariates = dat$X))
      private$offsets <- dat$O
      private$w <- dat$w
      control$init <- "lm"
      private$control <- control
      invisible(self)
    },

    postTreatment = function(config_post = list(sandwich_var = TRUE)) {
      if (is.null(private$control) || is.null(private$offsets))
        stop_arg("this fit holds no data to post-treat: refit it with PLN().")
      control <- private$control
      control$config_post <- check_config_post(config_post)
      dat <- list(Y = self$responses, O = private$offsets, X = self$covariates, w = private$w,
                  names = list(samples = rownames(self$var_par$M),
                               species = colnames(self$model_par$B),
                               covariates = rownames(self$model_par$B)))
      post_treatment(self, dat, control)
      invisible(self)
    },

    predict = function(newdata, responses = NULL, type = c("link", "response"), level = 1, ...) {
      stats::predict(self, newdata, responses = responses, type = type, level = level, ...)
    },

    predict_cond = function(newdata, cond_responses, type = c("link", "response"),
                            var_par = FALSE) {
      predict_cond(self, newdata, cond_responses, type = type, var_par = var_par)
    },

    show = function(...) {
      print(self, ...)
      invisible(self)
    },

    print = function(...) {
      print(self, ...)
      invisible(self)
    }
  ),
  private = list(
    .f = list(),
    offsets = NULL,  # O, n x p, for $optimize() and $postTreatment()
    w = NULL,        # the weights as the engine took them (1 when none were given)
    control = NULL,  # the PLN_param() of the fit (init dropped)

    ## a matrix replacing a field must keep its dimensions
    same_shape = function(x, old, arg) {
      if (!is.null(old) && !is.null(dim(old)) && !identical(dim(x), dim(old)))
        stop_arg(sprintf("`%s` must be a %s matrix, as the fit's; got %s.", arg,
                         paste(dim(old), collapse = " x "), describe_value(x)))
      if (!is.null(old) && is.null(dimnames(x))) dimnames(x) <- dimnames(old)
      x
    },

    ## what follows the fields that update() set
    after_update = function(B, M) {
      f <- private$.f
      if ((B || M) && !is.null(f$covariates)) {
        lp <- f$var_par$M - f$covariates %*% f$model_par$B
        dimnames(lp) <- dimnames(f$var_par$M)
        f$latent_pos <- lp
      }
      cr <- fit_criteria(f, private$w)
      f[names(cr)] <- cr
      private$.f <- f
    }
  ),
  active = field_bindings(.fit_fields)
)

## loglik, BIC, ICL, entropy and criteria of a PLN fit from its loglik_vec, S2 and nb_param (the
## formulas of new_PLNfit_torch()).
fit_criteria <- function(f, w) {
  loglik <- sum(w * f$loglik_vec)
  BIC <- loglik - 0.5 * log(f$n) * f$nb_param
  entropy <- 0.5 * sum(log(2 * pi * exp(1) * f$var_par$S2))
  ICL <- BIC - entropy
  list(loglik = loglik, BIC = BIC, ICL = ICL, entropy = entropy,
       criteria = data.frame(nb_param = f$nb_param, loglik = loglik, BIC = BIC, ICL = ICL))
}
