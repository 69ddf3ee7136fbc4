## The only R functions that call the C++ engine (pln_*_engine() come from
## src/rcpp_*.cpp through R/RcppExports.R).

## Runs one optimisation. `dat` comes from check_pln_data(), `ctrl` from
## resolve_control(), `start` from check_start() (NULL entries: from ctrl$init).
## `structure`: Omega and C of the covariance structures "fixed" and "genpop" (NULL otherwise).
## `B_fixed`: B held fixed, not fitted (with covariance "fixed": the VE step of prediction).
engine_fit <- function(dat, ctrl, start = list(), structure = list(), B_fixed = NULL) {
  res <- pln_fit_engine(dat$Y, dat$O, dat$X, dat$w,
                        start$B, start$M, start$S, structure$Omega, structure$C, B_fixed, ctrl)
  res$steps <- as.integer(res$steps)
  res$threads <- as.integer(res$threads)
  res
}

## J and its gradients at given values, Omega held fixed.
engine_objective <- function(dat, B, M, S, Omega, method = "autograd", dtype = "float64") {
  pln_objective_engine(dat$Y, dat$O, dat$X, dat$w,
                       as_double_matrix(B), as_double_matrix(M), as_double_matrix(S),
                       as_double_matrix(Omega), method, dtype)
}

## Puts the data's names on the engine's (unnamed) matrices.
name_engine_result <- function(res, nms) {
  dimnames(res$B) <- list(nms$covariates, nms$species)
  dimnames(res$M) <- dimnames(res$S) <- list(nms$samples, nms$species)
  dimnames(res$Sigma) <- dimnames(res$Omega) <- list(nms$species, nms$species)
  names(res$loglik_vec) <- nms$samples
  res
}
