#' Coefficient plot of a PLN fit
#'
#' Draws the coefficients of B with their confidence intervals, estimate +-
#' qnorm((1 + level) / 2) standard errors (see [standard_error()]), one panel
#' per covariate, species on the vertical axis (base graphics). Coefficients
#' whose standard error is `NA` (separation, see [standard_error()]) are drawn
#' as open points without an interval, clipped to the range of the others.
#'
#' @param fit a fit returned by [PLN()].
#' @param se_type the standard errors, as in [summary.PLNfit_torch()]: `NULL` (the
#'   first stored, else `"sandwich"`) or `"sandwich"`, `"variational"`,
#'   `"jackknife"`, `"bootstrap"`.
#' @param covariates the covariates (rows of `coef(fit)`) to draw, by name or
#'   number; `NULL` (default): all but the intercept when there are others.
#' @param species the species to draw, by name or number; `NULL` (default):
#'   all of them up to `max_species`, else the `max_species` with the largest
#'   |z| on the first drawn covariate.
#' @param level the confidence level of the intervals (default 0.95).
#' @param max_species the most species drawn per panel when `species` is
#'   `NULL` (default 30).
#' @param ... further arguments passed to [graphics::plot()] (e.g. `main`).
#' @return A data frame of what is drawn (`covariate`, `species`, `estimate`,
#'   `lower`, `upper`), invisibly.
#' @keywords internal
#' @examples
#' fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
#' plot(fit, type = "coefficients", max_species = 15)
plot_coefficients <- function(fit, se_type = NULL, covariates = NULL, species = NULL, level = 0.95,
                              max_species = 30L, ...) {
  if (!inherits(fit, "PLNfit_torch"))
    stop_arg("`fit` must be a fit returned by PLN(); got ", describe_value(fit), ".")
  level <- check_number(level, "level", lower = 0, upper = 1, strict = TRUE)
  if (level >= 1) stop_arg("`level` must be below 1; got 1.")
  max_species <- check_count(max_species, "max_species", lower = 1L)
  se_type <- check_choice(se_type, "se_type", c("sandwich", "variational", "jackknife", "bootstrap"),
                          null_ok = TRUE)
  co <- summary(fit, type = se_type)
  B <- coef(fit)
  pick <- function(x, all, arg) {
    if (is.numeric(x)) {
      if (any(is.na(x) | x < 1 | x > length(all) | x != round(x)))
        stop_arg(sprintf("`%s` numbers must be in 1..%d.", arg, length(all)))
      return(all[x])
    }
    if (!is.character(x) || length(x) < 1L)
      stop_arg(sprintf("`%s` must be names or numbers; got %s.", arg, describe_value(x)))
    if (length(bad <- setdiff(x, all)))
      stop_arg(sprintf("`%s` names unknown %s: %s.", arg, arg, name_list(bad, 5L)))
    x
  }
  covs <- if (is.null(covariates)) {
    nonint <- setdiff(rownames(B), "(Intercept)")
    if (length(nonint)) nonint else rownames(B)
  } else pick(covariates, rownames(B), "covariates")
  tab <- co$coefficients
  spp <- if (is.null(species)) {
    if (ncol(B) <= max_species) colnames(B) else {
      z <- tab[tab$covariate == covs[1L], ]
      z$species[order(-abs(z$`z value`), na.last = TRUE)][seq_len(max_species)]
    }
  } else pick(species, colnames(B), "species")
  q <- stats::qnorm((1 + level) / 2)
  tab <- tab[tab$covariate %in% covs & tab$species %in% spp, ]
  drawn <- data.frame(covariate = tab$covariate, species = tab$species, estimate = tab$Estimate,
                      lower = tab$Estimate - q * tab$`Std. Error`,
                      upper = tab$Estimate + q * tab$`Std. Error`, stringsAsFactors = FALSE)
  old <- graphics::par(mfrow = c(1L, length(covs)), mar = c(4, 8, 3, 1), las = 1)
  on.exit(graphics::par(old))
  for (cv in covs) {
    dd <- drawn[drawn$covariate == cv, ]
    dd <- dd[match(spp, dd$species), ]
    y <- rev(seq_len(nrow(dd)))
    ok <- is.finite(dd$lower)
    ## coefficients without an interval (drifting under separation) are clipped to the range
    xr <- range(c(dd$lower[ok], dd$upper[ok], 0))
    x <- ifelse(ok, dd$estimate, pmin(pmax(dd$estimate, xr[1L]), xr[2L]))
    dots <- list(...)
    args <- utils::modifyList(list(x = x, y = y, xlim = xr, yaxt = "n", ylab = "",
                                   xlab = sprintf("coefficient (%g%% interval, %s SE)", 100 * level, co$type),
                                   main = cv, pch = ifelse(is.na(dd$lower), 1, 19)), dots)
    do.call(graphics::plot, args)
    graphics::abline(v = 0, lty = 2, col = "grey50")
    graphics::segments(dd$lower[ok], y[ok], dd$upper[ok], y[ok])
    graphics::axis(2, at = y, labels = dd$species, cex.axis = 0.7)
  }
  invisible(drawn)
}
