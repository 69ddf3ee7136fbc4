#' Summary of a PLN fit: coefficients with standard errors
#'
#' A coefficient table as [summary.lm()] gives, one row per species and
#' covariate: the estimate, its standard error (see [standard_error()]), the z
#' value (estimate / standard error) and the two-sided p-value of the normal
#' test that the coefficient is zero; with the fit's log-likelihood, BIC and
#' ICL.
#'
#' @param object a fit returned by [PLN()].
#' @param type the standard errors: `NULL` (default) takes the first stored
#'   in the fit among `"sandwich"`, `"jackknife"`, `"bootstrap"` and
#'   `"variational"` (see `PLN_param(config_post = )`), and computes
#'   `"sandwich"` when none is; or one of these names.
#' @param x a summary returned by `summary()`.
#' @param max_rows the number of rows of the table to print (the first
#'   species' rows); `Inf` prints all of them.
#' @param digits significant digits to print, a whole number from 1 to 22.
#' @param signif.stars whether to mark small p-values with stars, as
#'   [printCoefmat()] does.
#' @param ... not used.
#' @return `summary()`: an object of class `"summary.PLNfit_torch"`, a list with
#'   `call`, `type` (of standard error), `coefficients` (a data frame with
#'   columns `species`, `covariate`, `Estimate`, `Std. Error`, `z value`,
#'   `Pr(>|z|)`, p d rows, species-major), `criteria` (`nb_param`, `loglik`,
#'   `BIC`, `ICL`), `n`, `p`, `d`, `covariance`, `status`. `print()`: `x`,
#'   invisibly.
#'
#'   Rows whose standard error cannot be estimated (`NA`, with a warning from
#'   [standard_error()]: a coefficient with no finite estimate, a singular
#'   information, too few samples for the estimator), or is not a positive
#'   finite number, have the z value and p-value `NA`, and no stars.
#' @export
#' @examples
#' fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
#' s <- summary(fit)
#' s
#' head(s$coefficients)
#' print(s, max_rows = 6)
summary.PLNfit_torch <- function(object, type = NULL, ...) {
  types <- c("sandwich", "jackknife", "bootstrap", "variational")
  if (is.null(type)) {
    stored <- intersect(types, names(object$uncertainty))
    type <- if (length(stored)) stored[1L] else "sandwich"
  }
  type <- check_choice(type, "type", types)
  B <- object$model_par$B
  ## a summary never errors after the fit: standard errors that cannot be computed are NA
  se <- tryCatch(standard_error(object, type = type), error = function(e) {
    warning(conditionMessage(e), " The standard errors are NA.", call. = FALSE)
    matrix(NA_real_, nrow(B), ncol(B), dimnames = dimnames(B))
  })
  ## no z value (nor p-value, nor stars) where the standard error is NA, not finite or not
  ## positive, nor where the estimate is not finite
  se <- as.vector(se)
  ok <- is.finite(se) & se > 0 & is.finite(as.vector(B))
  z <- ifelse(ok, as.vector(B) / se, NA_real_)
  coefs <- data.frame(
    species = rep(colnames(B), each = nrow(B)), covariate = rep(rownames(B), ncol(B)),
    Estimate = as.vector(B), `Std. Error` = as.vector(se), `z value` = z,
    `Pr(>|z|)` = 2 * stats::pnorm(-abs(z)), check.names = FALSE, stringsAsFactors = FALSE)
  structure(list(call = object$call, type = type, coefficients = coefs,
                 criteria = object$criteria, n = object$n, p = object$p, d = object$d,
                 covariance = object$vcov_model, status = object$optim_par$status),
            class = "summary.PLNfit_torch")
}

#' @rdname summary.PLNfit_torch
#' @export
print.summary.PLNfit_torch <- function(x, max_rows = 20L, digits = max(3L, getOption("digits") - 3L),
                                       signif.stars = getOption("show.signif.stars"), ...) {
  if (!(is.numeric(max_rows) && length(max_rows) == 1L && !is.na(max_rows) && max_rows >= 1))
    stop_arg("`max_rows` must be a number >= 1 (Inf: every row); got ", describe_value(max_rows), ".")
  if (!(is.numeric(digits) && length(digits) == 1L && !is.na(digits) && digits == round(digits) &&
        digits >= 1 && digits <= 22))
    stop_arg("`digits` must be a whole number from 1 to 22; got ", describe_value(digits), ".")
  cat(sprintf("Poisson log-normal fit (plntorch), %s covariance, %s\n", x$covariance,
              if (identical(x$status, "converged")) "converged" else paste("not converged:", x$status)))
  if (!is.null(x$call)) cat("Call: ", deparse1(x$call), "\n", sep = "")
  cat(sprintf("\nCoefficients (%d species x %d covariate column(s)), %s standard errors:\n",
              x$p, x$d, x$type))
  co <- x$coefficients
  shown <- seq_len(min(nrow(co), max_rows))
  tab <- as.matrix(co[shown, c("Estimate", "Std. Error", "z value", "Pr(>|z|)")])
  rownames(tab) <- paste(co$species[shown], co$covariate[shown], sep = " : ")
  stats::printCoefmat(tab, digits = digits, signif.stars = signif.stars, has.Pvalue = TRUE,
                      P.values = TRUE, na.print = "NA")
  if (nrow(co) > length(shown))
    cat(sprintf("... %d more rows (%d species in all): print(summary(fit), max_rows = Inf) or summary(fit)$coefficients\n",
                nrow(co) - length(shown), x$p))
  cr <- x$criteria
  cat(sprintf("\nn = %d samples; %d parameters\nlog-likelihood: %s   BIC: %s   ICL: %s\n",
              x$n, as.integer(cr$nb_param), format(cr$loglik, nsmall = 2),
              format(cr$BIC, nsmall = 2), format(cr$ICL, nsmall = 2)))
  invisible(x)
}
