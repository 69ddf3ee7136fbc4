#' Oaks amplicon data set
#'
#' Abundances of 114 taxa (66 bacterial and 48 fungal OTUs) on 116 oak leaves,
#' with the sequencing depths to use as offsets and the leaves' covariates. It is
#' the data set of the PLNmodels and torch PLN tutorials, and of the benchmarks
#' of this package.
#'
#' @format A data frame with 116 rows (leaves, named by sample) and 13 columns:
#' * `Abundance`: 116 x 114 integer count matrix (a matrix column, kept whole
#'   with [I()]), one column per OTU (`b_OTU_*` bacteria, `f_OTU_*` fungi).
#' * `Sample`: sample id (also the row names).
#' * `tree`: factor, the tree's status with respect to the pathogen *Erysiphe
#'   alphitoides*, levels `susceptible`, `intermediate`, `resistant`.
#' * `branch`: branch id within the tree (4 branches per tree).
#' * `leafNo`: leaf id within the tree.
#' * `distTObase`, `distTOtrunk`, `distTOground`: distances of the leaf to the
#'   base of its branch, to the trunk and to the ground (cm).
#' * `pmInfection`: powdery mildew infection, share of the upper leaf area with
#'   symptoms.
#' * `orientation`: factor, orientation of the branch, `NE` or `SW`.
#' * `readsTOTfun`, `readsTOTbac`: total ITS1 (fungal) and 16S (bacterial) reads
#'   of the leaf.
#' * `Offset`: 116 x 114 matrix of sequencing depths (total reads of the OTU's
#'   kingdom in the sample); use it as `offset(log(Offset))` in a formula.
#'
#' @source Jakuschkin, B., Fievet, V., Schwaller, L., Fort, T., Robin, C. and
#'   Vacher, C. (2016). Deciphering the pathobiome: intra- and interkingdom
#'   interactions involving the pathogen *Erysiphe alphitoides*. *Microbial
#'   Ecology*, 72, 870--880. \doi{10.1007/s00248-016-0777-x}. Distributed with
#'   the R package PLNmodels (GPL); rebuilt here by `data-raw/oaks.R`.
#'
#' @docType data
#' @keywords datasets
#' @name oaks
#' @usage data(oaks)
#' @examples
#' data(oaks)
#' dim(oaks$Abundance)
#' table(oaks$tree)
#' fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
#'            control = PLN_param(maxit = 300))
#' fit$loglik
NULL
