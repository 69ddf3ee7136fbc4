## The R6 class of PLNPCA()'s collections: the collection base (R/family-base.R) over ranks.

#' PLN-PCA collections: the R6 class of PLNPCA()'s result
#'
#' [PLNPCA()] returns an object of this class: a [PLNfamily_torch] whose grid
#' is the ranks, as PLNmodels' `PLNPCAfamily`. Its class vector is
#' `c("PLNPCAfamily_torch", "PLNPCAfamily", "PLNfamily_torch", "PLNfamily",
#' "R6")`.
#'
#' @section Fields:
#' Those of [PLNfamily_torch]: `models` (alias `fits`: one
#' [PLNPCAfit_torch] per rank, named by rank), `criteria` (columns `rank`,
#' `nb_param`, `loglik`, `BIC`, `ICL`), `call`, `formula`, `optim_par`
#' (`backend`, `device`, `dtype`, `setup_seconds`, `threads`, and `seconds`
#' per rank); and `ranks`, the ranks fitted, in increasing order.
#'
#' @section Methods:
#' Those of [PLNfamily_torch]: `$getModel(var, index)` (`var` a rank),
#' `$getBestModel(crit)`, `$plot(criteria, ...)`, `$print()`, `$show()`.
#'
#' @format An [R6::R6Class] generator; the objects are made by [PLNPCA()].
#' @seealso [PLNPCA()], [PLNPCAfit_torch], [getModel()], [getBestModel()]
#' @export
#' @examples
#' pca <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 1:3)
#' class(pca)
#' pca$ranks
#' pca$getBestModel("ICL")$rank
PLNPCAfamily_torch <- R6::R6Class(
  classname = c("PLNPCAfamily_torch", "PLNPCAfamily"),
  inherit = PLNfamily_torch,
  private = list(
    param_name = "rank",
    param_plural = "ranks",
    label = "PLN-PCA"
  ),
  active = list(
    ranks = function() private$params
  )
)
