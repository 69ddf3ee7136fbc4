## The R6 collection base: fits of one model over a grid of one parameter (ranks for PLNPCA();
## penalties for a PLNnetwork(), numbers of clusters for a PLNmixture() to come). A family
## inherits its criteria table, getModel(), getBestModel(), plot() and print(); the S3 generics
## below dispatch on the base.

#' Collections of fits: the R6 base of PLNPCA()'s families
#'
#' The class of collections of fits of one model over a grid of one parameter
#' (the ranks of [PLNPCA()]), PLNmodels' `PLNfamily`. Its class vector is
#' `c("PLNfamily_torch", "PLNfamily", "R6")`; PLN-PCA's collections are of
#' class `c("PLNPCAfamily_torch", "PLNPCAfamily", "PLNfamily_torch",
#' "PLNfamily", "R6")` ([PLNPCAfamily_torch]).
#'
#' @section Fields:
#' * `models`: the fits, a list named by the grid's values (each a
#'   [PLNfit_torch] object, e.g. a [PLNPCAfit_torch]); `fits` is the same list
#'   (plntorch's former name);
#' * `criteria`: a data frame, one row per fit: the grid's value (a column
#'   named by the parameter, `rank` for PLN-PCA), `nb_param`, `loglik`, `BIC`
#'   and `ICL`;
#' * the grid itself (`ranks` for PLN-PCA);
#' * `call`, `formula`, `optim_par` (the engine's settings and times).
#'
#' @section Methods:
#' * `$getModel(var, index = NULL)`: the fit of grid value `var`, or at
#'   position `index`, as [getModel()]; a copy (`$clone()`), as in PLNmodels,
#'   so that changing it leaves the collection as it is;
#' * `$getBestModel(crit = c("ICL", "BIC"))`: the fit of largest `crit`, as
#'   [getBestModel()];
#' * `$plot(criteria = c("loglik", "BIC", "ICL"), ...)`: the criteria against
#'   the grid, as [plot()][plot.PLNfamily_torch];
#' * `$print()`, `$show()`: the collection's summary.
#'
#' @format An [R6::R6Class] generator; the objects are made by [PLNPCA()].
#' @seealso [PLNPCA()], [getModel()], [getBestModel()]
#' @export
#' @examples
#' pca <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 1:2)
#' inherits(pca, "PLNfamily")
#' pca$criteria
#' names(pca$models)
PLNfamily_torch <- R6::R6Class(
  classname = c("PLNfamily_torch", "PLNfamily"),
  public = list(
    models = NULL,
    call = NULL,
    formula = NULL,
    optim_par = NULL,

    ## internal: the families' functions make them (models: one fit per value of params)
    initialize = function(models, params, call = NULL, formula = NULL, optim_par = NULL) {
      names(models) <- as.character(params)
      self$models <- models
      private$params <- params
      self$call <- call
      self$formula <- formula
      self$optim_par <- optim_par
      invisible(self)
    },

    getModel = function(var, index = NULL) {
      params <- private$params
      name <- private$param_name
      if (!missing(var) && !is.null(var)) {
        if (!is.numeric(var) || length(var) != 1L || !var %in% params)
          stop_arg(sprintf("`var` must be one of the %s fitted (%s); got %s.", private$param_plural,
                           paste(params, collapse = ", "), describe_value(var)))
        return(self$models[[match(var, params)]]$clone())
      }
      if (is.null(index) || !is.numeric(index) || length(index) != 1L ||
          !index %in% seq_along(self$models))
        stop_arg(sprintf("give the %s as `var` (one of %s), or `index` between 1 and %d.",
                         name, paste(params, collapse = ", "), length(self$models)))
      self$models[[index]]$clone()
    },

    getBestModel = function(crit = c("ICL", "BIC")) {
      crit <- check_choice(crit[1L], "crit", c("ICL", "BIC"))
      self$getModel(index = which.max(self$criteria[[crit]]))
    },

    plot = function(criteria = c("loglik", "BIC", "ICL"), ...) {
      criteria <- vapply(criteria, function(cr) check_choice(cr, "criteria", c("loglik", "BIC", "ICL")), "")
      cr <- self$criteria
      vals <- as.matrix(cr[, criteria, drop = FALSE])
      graphics::matplot(private$params, vals, type = "b", pch = 19, lty = 1,
                        col = seq_along(criteria), xlab = private$param_name, ylab = "criterion",
                        main = sprintf("%s: criteria by %s", private$label, private$param_name), ...)
      graphics::legend("bottomright", legend = criteria, col = seq_along(criteria), pch = 19,
                       lty = 1, bty = "n")
      for (k in intersect(criteria, c("BIC", "ICL")))
        graphics::abline(v = private$params[which.max(cr[[k]])], lty = 3, col = match(k, criteria))
      invisible(self)
    },

    show = function() {
      cr <- self$criteria
      cat("Collection of", length(self$models), private$label, "models (plntorch)\n")
      cat(sprintf(" %s:", private$param_plural), paste(private$params, collapse = ", "), "\n")
      print(cr, row.names = FALSE)
      cat(sprintf(" best %s by BIC:", private$param_name), private$params[which.max(cr$BIC)],
          sprintf("  by ICL:"), private$params[which.max(cr$ICL)], "\n")
      invisible(self)
    },

    print = function(...) self$show()
  ),
  private = list(
    params = NULL,           # the grid's values, one per model
    param_name = "param",    # the grid's parameter, as criteria's column names it
    param_plural = "params",
    label = "PLN"            # the model's name in titles
  ),
  active = list(
    fits = function(value) {
      if (missing(value)) self$models else self$models <- value
    },
    criteria = function() {
      m <- self$models
      cr <- data.frame(private$params,
                       nb_param = vapply(m, function(f) f$nb_param, 0),
                       loglik = vapply(m, function(f) f$loglik, 0),
                       BIC = vapply(m, function(f) f$BIC, 0),
                       ICL = vapply(m, function(f) f$ICL, 0),
                       row.names = NULL)
      names(cr)[1L] <- private$param_name
      cr
    }
  )
)

#' Extract a model from a collection of fits
#'
#' @param Robject a collection of fits, as returned by [PLNPCA()] (a
#'   [PLNfamily_torch] object).
#' @param var the grid value of the model to extract (for [PLNPCA()], one of
#'   the ranks fitted).
#' @param index the position of the model in the collection, used when `var`
#'   is missing or `NULL`.
#' @return The fit of that value (for [PLNPCA()], a [PLNPCAfit_torch]
#'   object), a copy of the collection's: changing it leaves the collection as
#'   it is. A value that was not fitted is an error naming those that were.
#' @seealso [getBestModel()], [PLNPCA()]
#' @examples
#' pca <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 1:2)
#' getModel(pca, 2)$rank
#' pca$getModel(1)$loglik
#' @export
getModel <- function(Robject, var, index) UseMethod("getModel", Robject)

#' @rdname getModel
#' @export
getModel.PLNfamily_torch <- function(Robject, var, index = NULL) Robject$getModel(var, index)

#' The best model of a collection by a criterion
#'
#' @param Robject a collection of fits, as returned by [PLNPCA()] (a
#'   [PLNfamily_torch] object).
#' @param crit `"ICL"` (default) or `"BIC"`: the model with the largest value
#'   is returned (both are log-likelihoods penalised, as in PLNmodels).
#' @param ... not used.
#' @return The fit of the best grid value (for [PLNPCA()], the best rank: a
#'   [PLNPCAfit_torch] object), a copy of the collection's.
#' @seealso [getModel()], [PLNPCA()]
#' @examples
#' pca <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 1:2)
#' getBestModel(pca, "BIC")$rank
#' pca$getBestModel("ICL")$rank
#' @export
getBestModel <- function(Robject, crit, ...) UseMethod("getBestModel", Robject)

#' @rdname getBestModel
#' @export
getBestModel.PLNfamily_torch <- function(Robject, crit = c("ICL", "BIC"), ...)
  Robject$getBestModel(crit)

#' Plot the criteria of a collection against its grid
#'
#' @param x a collection of fits, as returned by [PLNPCA()].
#' @param criteria which of `"loglik"`, `"BIC"`, `"ICL"` to draw.
#' @param ... passed to [graphics::matplot()].
#' @return `x`, invisibly.
#' @examples
#' pca <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 1:3)
#' plot(pca)
#' @export
plot.PLNfamily_torch <- function(x, criteria = c("loglik", "BIC", "ICL"), ...) {
  x$plot(criteria, ...)
  invisible(x)
}

#' @export
print.PLNfamily_torch <- function(x, ...) {
  x$show()
  invisible(x)
}
