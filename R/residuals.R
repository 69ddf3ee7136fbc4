#' Residuals of a PLN fit
#'
#' The counts minus their fitted values, raw or scaled by their Poisson
#' standard deviation.
#'
#' @param object a fit returned by [PLN()].
#' @param type `"pearson"` (default): `(Y - A) / sqrt(A)`; `"response"`:
#'   `Y - A`; where `Y` are the counts and `A = fitted(object) = exp(O + M +
#'   S2 / 2)` their expected values given the fitted latent layer (`M`
#'   includes `X B`), PLNmodels' fitted values.
#' @param ... not used.
#'
#' @details These are conditional residuals, as `residuals()` of a GLMM
#'   computes them (`lme4`): the latent layer is set at its variational
#'   posterior, so the counts are Poisson around `A`, of variance `A`.
#'   PLNmodels 1.3.2 has no `residuals()` method for its fits (`residuals()`
#'   there returns `NULL`); these follow R's conventions for [glm()]
#'   (`type = "pearson"` and `"response"`).
#' @return An n x p matrix, samples in rows and species in columns.
#' @seealso [fitted.PLNfit_torch()].
#' @importFrom stats residuals
#' @export
#' @examples
#' fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
#' r <- residuals(fit)
#' r[1:3, 1:4]
#' residuals(fit, type = "response")[1:3, 1:4]
residuals.PLNfit_torch <- function(object, type = c("pearson", "response"), ...) {
  type <- choose_arg(type, "type", c("pearson", "response"))
  if (is.null(object$responses))
    stop_arg("`object` holds no counts (a fit made by an older plntorch): refit it.")
  raw <- object$responses - object$fitted
  if (type == "response") raw else raw / sqrt(object$fitted)
}
