#' plntorch: Poisson log-normal models fitted by a LibTorch engine
#'
#' Fits the Poisson log-normal (PLN) model
#' \deqn{Z_i = O_i + X_i B + W_i, \quad W_i \sim N(0, \Sigma), \quad
#'       Y_{ij} \mid Z_{ij} \sim \mathcal{P}(\exp Z_{ij})}{Z_i = O_i + X_i B + W_i,
#'       W_i ~ N(0, Sigma), Y_ij | Z_ij ~ Poisson(exp(Z_ij))}
#' by maximising its variational lower bound (ELBO) with a C++ engine built on
#' LibTorch.
#'
#' * [PLN()] and [PLN_param()]: the formula interface and fit object of
#'   'PLNmodels' (`model_par`, `var_par`, `loglik`, `BIC`, `ICL`, S3 methods).
#' * [PLNtorch]: the object style of the torch-for-R PLN tutorial.
#' * [pln_backends()]: what this build offers (backends, devices, LibTorch).
#' * [oaks]: the oak powdery mildew amplicon data set.
#'
#' @keywords internal
#' @useDynLib plntorch, .registration = TRUE
#' @importFrom Rcpp sourceCpp
#' @importFrom R6 R6Class
"_PACKAGE"

## PLN-PCA's family and fit objects bind `self` in the environment of their methods (R/PLNPCA.R),
## which R CMD check cannot see.
utils::globalVariables("self")
