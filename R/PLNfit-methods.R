#' Methods for PLN fits
#'
#' Extract the parameters of a [PLN()] fit, or display it.
#'
#' @param object,x a fit returned by [PLN()] (class `"PLNfit_torch"`).
#' @param ... not used.
#' @return
#' * `coef()`: the d x p matrix B of regression coefficients (covariates in rows,
#'   species in columns);
#' * `sigma()`: the p x p covariance matrix Sigma of the latent layer;
#' * `fitted()`: the n x p matrix of fitted counts exp(O + X B + M + S2 / 2);
#' * `logLik()`: the variational log-likelihood, of class `"logLik"` with
#'   `df = nb_param` and `nobs = n`;
#' * `nobs()`: the number of samples n;
#' * `print()`: `x`, invisibly.
#'
#' For the uncertainty of B see [standard_error()], [vcov.PLNfit_torch()] and
#' [summary.PLNfit_torch()].
#' @name PLNfit_torch-methods
#' @importFrom stats coef fitted logLik nobs predict sigma
#' @examples
#' fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
#' fit
#' coef(fit)[, 1:4]
#' sigma(fit)[1:3, 1:3]
#' fitted(fit)[1:3, 1:4]
#' logLik(fit)
#' nobs(fit)
NULL

#' @rdname PLNfit_torch-methods
#' @export
print.PLNfit_torch <- function(x, ...) {
  op <- x$optim_par
  cat(sprintf("Poisson log-normal fit (plntorch), %s covariance\n", x$vcov_model))
  if (!is.null(x$call)) cat("Call: ", deparse1(x$call), "\n", sep = "")
  covariates <- rownames(x$model_par$B)
  if (length(covariates) > 6L) covariates <- c(covariates[1:5], "...")
  cat(sprintf("  %d samples, %d species, %d covariate column(s): %s\n",
              x$n, x$p, x$d, paste(covariates, collapse = ", ")))
  cat(sprintf("  engine: backend %s, device %s, %s, optimizer %s (%s), %d thread(s)\n",
              op$backend, op$device, op$dtype, op$optimizer,
              if (identical(op$optimizer, "lbfgs")) paste("tol", format(op$tol))
              else paste("lr", format(op$lr)), op$threads))
  cat(sprintf("  %d steps, %s, %.3f s\n", op$steps,
              switch(op$status, converged = "converged",
                     stalled = "stalled at the precision of its dtype (not converged)",
                     "stopped at maxit (not converged)"), op$seconds))
  print(format(x$criteria, digits = 8), row.names = FALSE)
  invisible(x)
}

#' @rdname PLNfit_torch-methods
#' @export
coef.PLNfit_torch <- function(object, ...) object$model_par$B

#' @rdname PLNfit_torch-methods
#' @export
sigma.PLNfit_torch <- function(object, ...) object$model_par$Sigma

#' @rdname PLNfit_torch-methods
#' @export
fitted.PLNfit_torch <- function(object, ...) object$fitted

#' @rdname PLNfit_torch-methods
#' @export
logLik.PLNfit_torch <- function(object, ...) {
  structure(object$loglik, df = object$nb_param, nobs = object$n, class = "logLik")
}

#' @rdname PLNfit_torch-methods
#' @export
nobs.PLNfit_torch <- function(object, ...) object$n

#' Predict with a PLN fit
#'
#' @param object a fit returned by [PLN()].
#' @param newdata an optional data frame with the covariates of the model, and
#'   the variables of its `offset()` terms. When missing, the fitted values are
#'   returned.
#' @param type `"link"` (default), the latent mean, or `"response"`, the
#'   expected counts.
#' @param ... not used.
#' @return An n x p matrix (samples of `newdata` in rows, species in columns).
#'   With `newdata`, `"link"` is `O + X B` and `"response"` is
#'   `exp(O + X B + diag(Sigma) / 2)`, the expected counts of new samples. With
#'   no `newdata`, `"link"` is the fitted latent layer `O + X B + M` (`object$latent`)
#'   and `"response"` is `fitted(object)`.
#' @export
#' @examples
#' fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
#' predict(fit, newdata = oaks[1:5, ])[, 1:4]
#' predict(fit, newdata = oaks[1:5, ], type = "response")[, 1:4]
predict.PLNfit_torch <- function(object, newdata, type = c("link", "response"), ...) {
  type <- match.arg(type)
  if (missing(newdata) || is.null(newdata))
    return(if (type == "link") object$latent else object$fitted)
  if (!is.data.frame(newdata)) newdata <- as.data.frame(newdata)
  tt <- stats::delete.response(object$terms)
  check_newdata_vars(tt, newdata)
  frame <- tryCatch(
    stats::model.frame(tt, newdata, xlev = object$xlevels, na.action = stats::na.pass),
    error = function(e) stop_arg("`newdata` must hold the covariates of the model and the ",
                                 "variables of its offset() terms: ", conditionMessage(e)))
  X <- stats::model.matrix(tt, frame, contrasts.arg = object$contrasts)
  B <- object$model_par$B
  n <- nrow(X); p <- ncol(B)
  O <- stats::model.offset(frame)
  if (is.null(O)) O <- 0
  O <- as.matrix(O)
  if (!(length(O) == 1L || (nrow(O) == n && ncol(O) %in% c(1L, p))))
    stop_arg(sprintf("the offset of `newdata` must be %d x %d or a vector of length %d.", n, p, n))
  link <- matrix(O, n, p) + X %*% B
  dimnames(link) <- list(rownames(newdata), colnames(B))
  if (type == "link") return(link)
  exp(sweep(link, 2L, diag(object$model_par$Sigma) / 2, "+"))
}

#' Plot the ELBO trace of a PLN fit
#'
#' Draws `log(-ELBO)` against the optimisation step, the view of the torch PLN
#' tutorials (the ELBO is negative, so the curve goes down as the fit improves).
#'
#' @param x a fit returned by [PLN()].
#' @param ... further arguments passed to [graphics::plot()].
#' @return `x`, invisibly.
#' @importFrom graphics plot
#' @export
#' @examples
#' fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
#' plot(fit)
plot.PLNfit_torch <- function(x, ...) {
  op <- x$optim_par
  plot_log_neg_elbo(op$objective,
                    main = sprintf("PLN fit: %s backend, %s", op$backend, op$optimizer), ...)
  invisible(x)
}

## log(-ELBO) against step; shared by plot.PLNfit_torch() and PLNtorch.
plot_log_neg_elbo <- function(elbo, from = 1L, main = "ELBO trace", ...) {
  if (!length(elbo)) stop_arg("there is no ELBO trace to plot: fit the model first.")
  steps <- seq_along(elbo)
  keep <- steps >= from & elbo < 0
  if (!all(keep[steps >= from]))
    warning("non-negative ELBO values left out of the log(-ELBO) plot.", call. = FALSE)
  graphics::plot(steps[keep], log(-elbo[keep]), type = "l",
                 xlab = "optimisation step", ylab = "log(-ELBO)", main = main, ...)
}
