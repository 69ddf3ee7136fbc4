## Methods of PLNPCA()'s family and fit objects.

#' @export
print.PLNPCAfit_torch <- function(x, ...) {
  cat(sprintf("Poisson log-normal PCA of rank %d (plntorch): %d samples, %d species, %d covariate(s)\n",
              x$rank, x$n, x$p, x$d))
  print(x$criteria, row.names = FALSE)
  cat(sprintf(" %d steps (%s) in %.2f s, backend %s on %s\n", x$optim_par$steps,
              x$optim_par$status, x$optim_par$seconds, x$optim_par$backend, x$optim_par$device))
  cat(" fields: $model_par (B, C, Sigma), $var_par, $scores, $rotation, $percent_var, $loglik,",
      "$BIC, $ICL, $project(newdata)\n")
  invisible(x)
}

#' PCA maps of a PLN-PCA fit
#'
#' Biplots of PLNmodels' visualisation of a fit: the individual map (the
#' samples' `scores` on two principal axes, coloured by a factor), the
#' variable map (the species' correlations with the axes, in the unit circle),
#' or both side by side. Base graphics.
#'
#' @param x a `PLNPCAfit_torch` object, a model of [PLNPCA()].
#' @param map `"individual"`, `"variable"` or `"both"`.
#' @param axes the two axes to draw (default the first two, or the single one
#'   of a rank-1 fit against the sample index).
#' @param ind_cols a factor (or vector) of length n colouring the samples.
#' @param var_cols a factor (or vector) of length p colouring the species.
#' @param main a title (default by map).
#' @param ... passed to [graphics::plot()].
#' @return `x`, invisibly.
#' @examples
#' pca <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 2)
#' plot(getModel(pca, 2), map = "individual", ind_cols = oaks$tree)
#' @export
plot.PLNPCAfit_torch <- function(x, map = c("individual", "variable", "both"), axes = NULL,
                                 ind_cols = NULL, var_cols = NULL, main = NULL, ...) {
  map <- check_choice(map[1L], "map", c("individual", "variable", "both"))
  if (is.null(axes)) axes <- seq_len(min(2L, x$rank))
  if (!is.numeric(axes) || !length(axes) || length(axes) > 2L || any(!axes %in% seq_len(x$rank)) ||
      anyDuplicated(axes))
    stop_arg(sprintf("`axes` must be one or two distinct axes of the fit, among 1..%d; got %s.", x$rank,
                     describe_value(axes)))
  check_cols <- function(cols, len, arg) {
    if (is.null(cols)) return(rep(1L, len))
    if (length(cols) != len)
      stop_arg(sprintf("`%s` must have length %d; got %d.", arg, len, length(cols)))
    as.factor(cols)
  }
  ind <- check_cols(ind_cols, x$n, "ind_cols")
  var <- check_cols(var_cols, x$p, "var_cols")
  lab <- function(a) sprintf("axis %d (%.1f%%)", a, 100 * x$percent_var[a])
  if (map == "both") {
    old <- graphics::par(mfrow = c(1L, 2L))
    on.exit(graphics::par(old))
  }
  draw <- function(coords, cols, what) {
    xy <- if (length(axes) == 2L) coords[, axes, drop = FALSE] else cbind(seq_len(nrow(coords)), coords[, axes])
    k <- max(2L, nlevels(factor(cols)))
    pal <- if (k <= 8L) grDevices::palette.colors(k, "Okabe-Ito") else grDevices::hcl.colors(k)
    col <- pal[as.integer(factor(cols))]
    if (what == "variable") {
      graphics::plot(xy, type = "n", asp = 1, xlim = c(-1, 1), ylim = c(-1, 1),
                     xlab = lab(axes[1L]), ylab = if (length(axes) == 2L) lab(axes[2L]) else "",
                     main = if (is.null(main)) "Variable factor map" else main, ...)
      graphics::symbols(0, 0, circles = 1, inches = FALSE, add = TRUE, fg = "grey60")
      graphics::arrows(0, 0, xy[, 1L], xy[, 2L], length = 0.05, col = col)
      graphics::text(xy, labels = rownames(coords), pos = 3, cex = 0.6, col = col)
    } else {
      graphics::plot(xy, pch = 19, col = col,
                     xlab = if (length(axes) == 2L) lab(axes[1L]) else "sample",
                     ylab = lab(axes[length(axes)]),
                     main = if (is.null(main)) "Individual factor map" else main, ...)
      graphics::abline(h = 0, v = 0, lty = 3, col = "grey60")
    }
    if (is.factor(cols) && nlevels(cols) > 1L)
      graphics::legend("topright", legend = levels(cols), col = pal[seq_len(nlevels(cols))],
                       pch = 19, bty = "n", cex = 0.7)
  }
  if (map %in% c("individual", "both")) draw(x$scores, ind, "individual")
  if (map %in% c("variable", "both")) draw(x$corr_circle, var, "variable")
  invisible(x)
}

## project(newdata): the scores of new samples. Their variational scores M (and S) are fitted with
## B and C held at the fit's values (the variational step), then placed in the fit's PCA axes as
## PLNmodels does: latent positions M C', centred, times the rotation (as (M centred) (C' rotation),
## no n x p array: sparse newdata stay sparse all the way).
project_pca <- function(fit, newdata, control = PLNPCA_param()) {
  if (missing(newdata) || !is.data.frame(newdata))
    stop_arg("`newdata` must be a data frame with the variables of the fit's formula.")
  control <- as_plnpca_param(control)
  md <- model_data(call = as.call(list(quote(stats::model.frame), formula = fit$formula,
                                       data = quote(newdata))),
                   caller = environment(), formula = fit$formula, data = newdata, sparse_ok = TRUE)
  dat <- md$dat
  if (dat$p != fit$p)
    stop_arg(sprintf("the counts of `newdata` have %d species; the fit has %d.", dat$p, fit$p))
  if (!identical(dat$names$covariates, rownames(fit$model_par$B)))
    stop_arg("the covariates of `newdata` do not give the fit's model matrix (columns ",
             paste(rownames(fit$model_par$B), collapse = ", "), ").")
  q <- fit$rank
  C <- fit$model_par$C
  ## scores at the prior's mean: a least-squares start on C can put exp() out of range
  start <- list(B = fit$model_par$B, C = C, M = matrix(0, dat$n, q), S = matrix(0.1, dat$n, q))
  res <- pca_engine_fit(dat, q, control, start = start, fixed_model = TRUE)
  M <- res$fits[[1L]]$M
  ## (M C' centred) rotation = (M centred) (C' rotation): no n x p array
  scores <- sweep(M, 2L, colMeans(M)) %*% crossprod(C, fit$rotation)
  dimnames(scores) <- list(dat$names$samples, colnames(fit$rotation))
  scores
}
