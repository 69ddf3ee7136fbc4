#' Methods for PLN fits
#'
#' Extract the parameters of a [PLN()] fit, or display it.
#'
#' @param object,x a fit returned by [PLN()] (class `"PLNfit_torch"`).
#' @param ... not used.
#' @return
#' * `coef()`: the d x p matrix B of regression coefficients (covariates in rows,
#'   species in columns), or with `type = "covariance"` the p x p Sigma (as
#'   PLNmodels' `coef()`); see [confint.PLNfit_torch()] for their intervals;
#' * `sigma()`: the p x p covariance matrix Sigma of the latent layer;
#' * `fitted()`: the n x p matrix of fitted counts exp(O + X B + M + S2 / 2),
#'   PLNmodels' `fitted()` (see also [residuals.PLNfit_torch()]);
#' * `logLik()`: the variational log-likelihood, of class `"logLik"` with
#'   `df = nb_param` and `nobs = n` (so `stats::AIC()` and `stats::BIC()`
#'   work on a fit, see "Information criteria");
#' * `nobs()`: the number of samples n;
#' * `model.matrix()`: the n x d model matrix X of the fit, as [lm()]'s (samples
#'   in rows, covariate columns named as the rows of `coef()`, with the
#'   attributes `assign` and, for factors, `contrasts`);
#' * `print()`: `x`, invisibly.
#'
#' @section Information criteria:
#' Two conventions meet here, and they differ in sign and scale:
#' * `fit$BIC` and `fit$ICL` (and `fit$criteria`) follow PLNmodels:
#'   `BIC = loglik - log(n) * nb_param / 2` and `ICL = BIC - entropy`, where
#'   `entropy` is the entropy of the variational distribution of the latent
#'   layer. **Larger is better.**
#' * `stats::BIC(fit)` and `stats::AIC(fit)`, through `logLik()`, are on the
#'   deviance scale of `lm()` and `glm()` fits:
#'   `BIC(fit) = -2 * loglik + log(n) * nb_param = -2 * fit$BIC` and
#'   `AIC(fit) = -2 * loglik + 2 * nb_param`. **Smaller is better.**
#'
#' Both rank models the same way. The variational log-likelihood is a lower
#' bound of the log-likelihood, so these criteria are approximations too.
#'
#' For the uncertainty of B see [standard_error()], [vcov.PLNfit_torch()] and
#' [summary.PLNfit_torch()].
#' @name PLNfit_torch-methods
#' @importFrom stats coef fitted logLik nobs predict sigma model.matrix
#' @examples
#' fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
#' fit
#' coef(fit)[, 1:4]
#' sigma(fit)[1:3, 1:3]
#' fitted(fit)[1:3, 1:4]
#' logLik(fit)
#' nobs(fit)
#' head(model.matrix(fit))
#' c(PLNmodels_BIC = fit$BIC, stats_BIC = stats::BIC(fit))   # stats::BIC(fit) = -2 * fit$BIC
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
                     boundary = sprintf("approaching the boundary: %d variance(s) collapse to 0 (not converged)",
                                        length(op$boundary)),
                     "stopped at maxit (not converged)"), op$seconds))
  print(format(x$criteria, digits = 8), row.names = FALSE)
  invisible(x)
}

#' @rdname PLNfit_torch-methods
#' @param type for `coef()`, as in PLNmodels: `"main"` (default), the d x p
#'   matrix B of regression coefficients; `"covariance"`, the p x p covariance
#'   matrix Sigma of the latent layer (as `sigma()`).
#' @export
coef.PLNfit_torch <- function(object, type = c("main", "covariance"), ...) {
  type <- check_choice(type[1L], "type", c("main", "covariance"))
  if (type == "covariance") object$model_par$Sigma else object$model_par$B
}

#' Confidence intervals for the coefficients of a PLN fit
#'
#' Wald intervals of the regression coefficients B, estimate +- qnorm((1 +
#' level) / 2) standard errors, from [standard_error()].
#'
#' @param object a fit returned by [PLN()].
#' @param parm the coefficients: names of vec(B) as [vcov.PLNfit_torch()]
#'   names them (`"species_covariate"`), or their numbers (species-major: the
#'   d coefficients of the first species, then those of the second...);
#'   default all.
#' @param level the confidence level, in (0, 1).
#' @param type the standard errors (see [standard_error()]): `"sandwich"`
#'   (default), `"variational"`, `"jackknife"` or `"bootstrap"` (the last two
#'   only when computed at fitting time).
#' @param ... not used.
#' @return A (p d) x 2 matrix, one row per coefficient (named
#'   `"species_covariate"`), columns the lower and upper limits labelled as
#'   [stats::confint()] labels them (`"2.5 %"`, `"97.5 %"`). Coefficients whose
#'   standard error cannot be estimated (see [standard_error()]) have `NA`
#'   limits; an estimator that cannot be computed for the fit (too few
#'   samples, a jackknife or bootstrap not run) is an error naming it.
#' @importFrom stats confint
#' @export
#' @examples
#' fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
#' ci <- confint(fit)
#' head(ci)
#' confint(fit, parm = paste0(colnames(coef(fit))[1], "_(Intercept)"), level = 0.9)
confint.PLNfit_torch <- function(object, parm, level = 0.95,
                                 type = c("sandwich", "variational", "jackknife", "bootstrap"), ...) {
  if (!is.numeric(level) || length(level) != 1L || is.na(level) || level <= 0 || level >= 1)
    stop_arg("`level` must be a number between 0 and 1; got ", describe_value(level), ".")
  type <- check_choice(type[1L], "type", c("sandwich", "variational", "jackknife", "bootstrap"))
  B <- object$model_par$B
  nms <- vec_names(B)
  if (missing(parm)) {
    idx <- seq_along(nms)
  } else if (is.character(parm) && !anyNA(parm)) {
    idx <- match(parm, nms)
    if (anyNA(idx))
      stop_arg(sprintf("`parm` names unknown coefficient(s) %s; names are \"species_covariate\", e.g. \"%s\".",
                       name_list(parm[is.na(idx)]), nms[1L]))
  } else if (is.numeric(parm) && !anyNA(parm) && all(parm == round(parm)) && all(parm >= 1) &&
             all(parm <= length(nms))) {
    idx <- as.integer(parm)
  } else {
    stop_arg(sprintf("`parm` must be coefficient names (\"species_covariate\") or numbers in 1..%d; got %s.",
                     length(nms), describe_value(parm)))
  }
  se <- as.vector(standard_error(object, type = type))[idx]
  a <- (1 - level) / 2
  q <- stats::qnorm(1 - a)
  est <- as.vector(B)[idx]
  ci <- cbind(est - q * se, est + q * se)
  pct <- paste(format(100 * c(a, 1 - a), trim = TRUE, scientific = FALSE, digits = 3), "%")
  dimnames(ci) <- list(nms[idx], pct)
  ci
}

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

#' @rdname PLNfit_torch-methods
#' @export
model.matrix.PLNfit_torch <- function(object, ...) {
  X <- object$covariates
  if (is.null(X))
    stop_arg("this fit holds no model matrix (its `covariates` field is NULL).")
  assign <- attr(X, "assign")
  X <- matrix(as.double(X), nrow(X), ncol(X),
              dimnames = list(rownames(object$var_par$M), rownames(object$model_par$B)))
  if (!is.null(assign)) attr(X, "assign") <- assign
  if (length(object$contrasts)) attr(X, "contrasts") <- object$contrasts
  X
}

#' Plot a PLN fit: its ELBO trace or its latent correlations
#'
#' `type = "gap"` (the default) draws the gap between the largest ELBO of the
#' trace (for a converged fit, its final one) and the ELBO at each step, on a
#' log scale: the view that shows convergence. A converged `"lbfgs"` fit's gap
#' falls by orders of magnitude; the dashed line is the stopping threshold
#' (`tol` times the final |ELBO|: the fit stops once a step gains less than
#' that). `type = "elbo"` draws `log(-ELBO)` against the step instead, the
#' view of the torch PLN tutorials (the ELBO is negative, so the curve goes
#' down as the fit improves); on that scale the last steps of a fit are a flat
#' line.
#'
#' `type = "correlation"` draws a heat map of the latent correlation matrix
#' `cov2cor(sigma(x))`, blue negative and red positive, with a colour key;
#' the species are grouped by a hierarchical clustering of their correlations
#' (`order = "hclust"`, complete linkage on 1 - correlation) unless
#' `order = "none"`. Species names are written when at most 60 species are
#' drawn: select them with `species` (names or column numbers) or `top` (the
#' `top` species of largest total fitted count).
#'
#' `type = "coefficients"` draws the coefficients of B with their confidence
#' intervals (estimate +- qnorm((1 + level) / 2) standard errors, sandwich by
#' default), one panel per covariate; `species`, and through `...` the
#' arguments `covariates`, `level`, `max_species` and `se_type` (the standard
#' errors: `"sandwich"`, `"variational"`, `"jackknife"` or `"bootstrap"`).
#'
#' @param x a fit returned by [PLN()].
#' @param type `"gap"` (default), `"elbo"`, `"correlation"` or `"coefficients"`,
#'   see above.
#' @param from for the ELBO trace: first step to draw, a whole number from the
#'   trace's first step (0, the start, for `"lbfgs"`; 1 for Adam and Rprop).
#'   `NULL` (default): step 1, or the start when the fit took a single step.
#' @param species,top,order for `type = "correlation"` (`species` also for
#'   `"coefficients"`): the species to draw
#'   (`NULL`: all; names or column numbers), how many of the most abundant of
#'   them to keep (`NULL`: all), and their order (`"hclust"` or `"none"`).
#' @param ... further arguments passed to [graphics::plot()] (ELBO trace) or
#'   [graphics::image()] (correlation).
#' @return `x`, invisibly.
#' @importFrom graphics plot
#' @export
#' @examples
#' fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
#' plot(fit)                  # gap to the final ELBO, log scale
#' plot(fit, type = "elbo")   # log(-ELBO), as in the torch tutorials
#' plot(fit, type = "correlation", top = 25)   # the 25 most abundant species
#' fit2 <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
#' plot(fit2, type = "coefficients", max_species = 15)   # 95% sandwich intervals
plot.PLNfit_torch <- function(x, type = c("gap", "elbo", "correlation", "coefficients"), from = NULL,
                              species = NULL, top = NULL, order = c("hclust", "none"), ...) {
  type <- check_choice(type[1L], "type", c("gap", "elbo", "correlation", "coefficients"))
  switch(type,
    gap = ,
    elbo = plot_fit_trace(x, type = type, from = from, ...),
    correlation = plot_correlation(x, species = species, top = top, order = order, ...),
    coefficients = plot_coefficients(x, species = species, ...))
  invisible(x)
}

## plot(fit)'s ELBO trace: the fit's trace, its steps numbered as its optimiser numbers them.
plot_fit_trace <- function(x, type, from, main = NULL, ...) {
  op <- x$optim_par
  if (is.null(main))
    main <- sprintf("PLN fit: %s backend, %s, %d steps (%s)", op$backend, op$optimizer,
                    op$steps, op$status)
  elbo <- op$objective
  ## lbfgs records the start (step 0) and each step; Adam and Rprop the ELBO before each step
  lbfgs <- identical(op$optimizer, "lbfgs")
  steps <- if (lbfgs) seq_along(elbo) - 1L else seq_along(elbo)
  plot_elbo_trace(elbo, steps = steps, from = from, type = type,
                  tol = if (lbfgs && type == "gap") op$tol, main = main, ...)
}

## The ELBO trace, shared by plot.PLNfit_torch() and PLNtorch$plotLogNegElbo(): "gap" draws
## ref - ELBO on a log scale (ref: the largest value of the trace unless given), "elbo" draws
## log(-ELBO). `steps` numbers the values; `from` is a step number; `tol`, when given, draws the
## stopping threshold tol * |ref|. Returns what it drew (step, value), invisibly.
plot_elbo_trace <- function(elbo, steps = seq_along(elbo), from = 1, type = c("gap", "elbo"),
                            ref = NULL, tol = NULL, main = "ELBO trace", ...) {
  type <- match.arg(type)
  if (!length(elbo)) stop_arg("there is no ELBO trace to plot: fit the model first.")
  last <- max(steps)
  ## the gap is zero at the largest value, so a gap plot needs a step before the last
  last_from <- if (type == "gap" && is.null(ref)) last - 1L else last
  if (is.null(from)) {
    ## the default: step 1, or the first step there is when the trace is that short
    from <- max(min(steps), min(1L, last_from))
    if (from > last_from)
      stop_arg("the ELBO trace has a single value: there is no gap to the final ELBO to draw; ",
               "use type = \"elbo\".")
  }
  if (!is.numeric(from) || length(from) != 1L || is.na(from) || from != round(from) ||
      from < min(steps))
    stop_arg(sprintf("`from` must be a single whole step number >= %d (the trace's first step); got %s.",
                     min(steps), describe_value(from)))
  if (from > last_from)
    stop_arg(sprintf("`from` = %s is past the ELBO trace: it has %d steps, so `from` can be at most %d%s.",
                     format(from), last, last_from,
                     if (last_from < last) " (the gap to the final ELBO is zero at the last step)" else ""))
  shown <- steps >= from
  if (type == "elbo") {
    keep <- shown & elbo < 0
    if (!all(keep[shown]))
      warning("non-negative ELBO values left out of the log(-ELBO) plot.", call. = FALSE)
    graphics::plot(steps[keep], log(-elbo[keep]), type = "l",
                   xlab = "optimisation step", ylab = "log(-ELBO)", main = main, ...)
    return(invisible(data.frame(step = steps[keep], value = log(-elbo[keep]))))
  }
  ref_given <- ref
  if (is.null(ref)) ref <- max(elbo)
  else if (!is.numeric(ref) || length(ref) != 1L || !is.finite(ref) || ref < max(elbo[shown]))
    stop_arg(sprintf("`ref` must be a number at or above the largest ELBO of the steps shown (%s); got %s.",
                     format(max(elbo[shown]), digits = 10), describe_value(ref)))
  gap <- ref - elbo
  keep <- shown & gap > 0
  if (!any(keep))
    stop_arg(sprintf("from step %s on, the ELBO trace has no value below %s: nothing to draw on a log scale; give a smaller `from`.",
                     format(from), format(ref, digits = 10)))
  threshold <- if (!is.null(tol) && tol > 0) tol * abs(ref)
  ylim <- range(gap[keep], threshold)
  ylab <- if (!is.null(ref_given)) "ref - ELBO  (log scale)"
          else if (which.max(elbo) == length(elbo)) "final ELBO - ELBO  (log scale)"
          else "largest ELBO - ELBO  (log scale)"
  graphics::plot(steps[keep], gap[keep], type = "l", log = "y", ylim = ylim, yaxt = "n",
                 xlab = "optimisation step", ylab = ylab, main = main, ...)
  ## powers of ten, written as such
  k <- seq(floor(log10(ylim[1])), ceiling(log10(ylim[2])))
  if (length(k) > 8L) k <- k[k %% ceiling(length(k) / 8) == 0]
  graphics::axis(2, at = 10^k, labels = parse(text = paste0("10^", k)), las = 1)
  if (!is.null(threshold)) {
    graphics::abline(h = threshold, lty = 2, col = "grey40")
    graphics::legend("topright", lty = 2, col = "grey40", bty = "n", cex = 0.8,
                     legend = sprintf("stopping threshold: tol x |final ELBO| = %s",
                                      format(signif(threshold, 2))))
  }
  invisible(data.frame(step = steps[keep], value = gap[keep]))
}
