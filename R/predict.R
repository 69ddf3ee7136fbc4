## Prediction with a PLN fit: the population prediction, the VE step on new samples' counts
## (predict(responses = )) and the conditional prediction of unobserved species
## (predict_cond()).

#' Predict with a PLN fit
#'
#' Predicts the latent layer or the counts of new samples, as PLNmodels'
#' `predict()` does: from their covariates and offsets alone (the population
#' prediction), or, with their observed counts in `responses`, from their own
#' variational parameters, found by a VE step of the engine (the ELBO
#' maximised over M and S with the fit's B and Omega held fixed).
#'
#' @param object a fit returned by [PLN()].
#' @param newdata an optional data frame with the covariates of the model, and
#'   the variables of its `offset()` terms. When missing, the fitted values are
#'   returned.
#' @param responses optional counts of the samples of `newdata` (a matrix or a
#'   data frame, one row per row of `newdata`, one column per species of the
#'   fit, matched by name when it has column names, else in the fit's order).
#' @param type `"link"` (default), the latent mean, or `"response"`, the
#'   expected counts.
#' @param level with `responses`: `1` (default) for the prediction from the
#'   samples' variational parameters, `0` for the population prediction.
#'   Ignored without `responses` (then `0`), as in PLNmodels.
#' @param ... not used; `se.fit = TRUE` (of [predict.lm()]) is an error: no
#'   standard errors of predictions are available (nor in PLNmodels).
#' @return An n x p matrix (samples of `newdata` in rows, species in columns).
#'   With `newdata` and no `responses` (or `level = 0`), `"link"` is `O + X B`
#'   and `"response"` is `exp(O + X B + diag(Sigma) / 2)`, the expected counts
#'   of new samples. With `responses` (and `level = 1`), `"link"` is `O + M`
#'   and `"response"` is `exp(O + M + S2 / 2)`, where M (X B included) and S2
#'   maximise the ELBO of those samples at the fit's B and Omega: for the
#'   fitted samples themselves, the fit's own `latent` and `fitted`. With no
#'   `newdata`, `"link"` is the fitted latent layer `O + X B + M`
#'   (`object$latent`) and `"response"` is `fitted(object)`.
#'
#'   The VE step runs on the fit's backend, device and dtype, with
#'   `optimizer = "lbfgs"` and `tol = 1e-10` in float64 (the default of
#'   [PLN_param()] in float32); a VE step that does not converge warns as
#'   [PLN()] does.
#' @seealso [predict_cond()] to predict unobserved species from observed ones.
#' @export
#' @examples
#' fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks)
#' predict(fit, newdata = oaks[1:5, ])[, 1:4]
#' predict(fit, newdata = oaks[1:5, ], type = "response")[, 1:4]
#' ## with the samples' counts: their own latent positions (a VE step)
#' predict(fit, newdata = oaks[1:5, ], responses = oaks$Abundance[1:5, ],
#'         type = "response")[, 1:4]
predict.PLNfit_torch <- function(object, newdata, responses = NULL, type = c("link", "response"),
                                 level = 1, ...) {
  type <- match.arg(type)
  if (isTRUE(list(...)$se.fit))
    stop_arg("`se.fit = TRUE` is not available: plntorch (as PLNmodels) gives no standard errors ",
             "of predictions; standard_error(fit) gives those of the coefficients.")
  if (missing(newdata) || is.null(newdata)) {
    if (!is.null(responses))
      stop_arg("`responses` needs `newdata`: the covariates and offsets of its samples.")
    return(if (type == "link") object$latent else object$fitted)
  }
  if (!identical(level, 0) && !identical(level, 1) && !identical(level, 0L) && !identical(level, 1L))
    stop_arg("`level` must be 0 (population prediction) or 1 (from the samples' counts); got ",
             describe_value(level), ".")
  design <- new_design(object, newdata)
  B <- object$model_par$B
  if (is.null(responses) || level == 0) {
    link <- design$O + design$X %*% B
    dimnames(link) <- list(rownames(newdata), colnames(B))
    if (type == "link") return(link)
    return(exp(sweep(link, 2L, diag(object$model_par$Sigma) / 2, "+")))
  }
  Y <- check_new_counts(responses, "responses", nrow(design$X), colnames(B), every = TRUE)
  ve <- ve_step(object, Y, design$X, design$O, B, object$model_par$Omega)
  link <- design$O + ve$M
  dimnames(link) <- list(rownames(newdata), colnames(B))
  if (type == "link") link else exp(link + ve$S2 / 2)
}

#' Predict unobserved species from observed ones
#'
#' Conditional prediction, as PLNmodels' `predict_cond()`: for new samples
#' whose counts are observed for some species (`cond_responses`), predicts the
#' latent layer or the counts of the other species. A VE step of the engine
#' on the observed block (its coefficients B_o and the marginal precision
#' Sigma_oo^-1 held fixed) gives each sample's variational mean M_o (of the
#' residual) and variances S2_o; the unobserved block then follows the
#' Gaussian conditional of the latent layer:
#'
#' `E(Z_u | Y_o) = O_u + X B_u + M_o A'`, with `A = Sigma_uo Sigma_oo^-1`,
#'
#' `Var(Z_u | Y_o) = A diag(S2_o) A' + Sigma_uu - A Sigma_ou` (one p_u x p_u
#' matrix per sample).
#'
#' @param object a fit returned by [PLN()].
#' @param newdata a data frame with the covariates of the model and the
#'   variables of its `offset()` terms, for the samples to predict.
#' @param cond_responses the observed counts: a matrix or a data frame with
#'   one row per row of `newdata` and named columns, a subset of the fit's
#'   species (in any order); every other species is predicted.
#' @param type `"link"` (default), the conditional mean of the latent layer,
#'   or `"response"`, the expected counts
#'   `exp(E(Z_u | Y_o) + diag(Var(Z_u | Y_o)) / 2)`.
#' @param var_par `TRUE` to return the conditional means of the residual
#'   latent layer and the conditional covariances, as attributes `M` and `S`.
#' @return An n x p_u matrix (samples in rows, unobserved species in columns,
#'   in the fit's order) with attribute `type`; with `var_par = TRUE` also
#'   attributes `M` (n x p_u: `M_o A'`) and `S` (a p_u x p_u x n array: the
#'   conditional covariance of each sample), as PLNmodels returns them.
#'
#'   For a fit with `covariance = "fixed"`, Sigma is the given `Omega^-1`
#'   (PLNmodels uses the covariance of the variational parameters there).
#'   The VE step runs as in [predict.PLNfit_torch()].
#' @export
#' @examples
#' fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
#' ## the three most abundant species observed on five leaves, the others predicted
#' top <- names(sort(colSums(oaks$Abundance), decreasing = TRUE))[1:3]
#' pred <- predict_cond(fit, newdata = oaks[1:5, ],
#'                      cond_responses = oaks$Abundance[1:5, top],
#'                      type = "response", var_par = TRUE)
#' dim(pred)
#' pred[, 1:4]
#' dim(attr(pred, "S"))
predict_cond <- function(object, newdata, cond_responses, type = c("link", "response"),
                         var_par = FALSE) {
  UseMethod("predict_cond", object)
}

#' @rdname predict_cond
#' @export
predict_cond.PLNfit_torch <- function(object, newdata, cond_responses,
                                      type = c("link", "response"), var_par = FALSE) {
  type <- match.arg(type)
  if (missing(newdata) || is.null(newdata))
    stop_arg("`newdata` is missing: give the covariates and offsets of the samples to predict.")
  if (missing(cond_responses) || is.null(cond_responses))
    stop_arg("`cond_responses` is missing: give the observed counts of some species.")
  if (!is.logical(var_par) || length(var_par) != 1L || is.na(var_par))
    stop_arg("`var_par` must be TRUE or FALSE; got ", describe_value(var_par), ".")
  design <- new_design(object, newdata)
  B <- object$model_par$B
  species <- colnames(B)
  Yo <- check_new_counts(cond_responses, "cond_responses", nrow(design$X), species, every = FALSE)
  obs <- species %in% colnames(Yo)
  Sigma <- if (identical(object$vcov_model, "fixed")) solve(object$model_par$Omega) else
    object$model_par$Sigma
  S_oo <- Sigma[obs, obs, drop = FALSE]
  S_uo <- Sigma[!obs, obs, drop = FALSE]
  P_oo <- solve(S_oo)
  P_oo <- (P_oo + t(P_oo)) / 2
  A <- S_uo %*% P_oo
  S_cond <- Sigma[!obs, !obs, drop = FALSE] - A %*% t(S_uo)
  ve <- ve_step(object, Yo, design$X, design$O[, obs, drop = FALSE], B[, obs, drop = FALSE], P_oo)

  n <- nrow(design$X)
  unobs <- species[!obs]
  M <- ve$M_res %*% t(A)
  dimnames(M) <- list(rownames(newdata), unobs)
  S <- vapply(seq_len(n), function(i) A %*% (ve$S2[i, ] * t(A)) + S_cond,
              matrix(0, length(unobs), length(unobs)))
  dim(S) <- c(length(unobs), length(unobs), n)
  dimnames(S) <- list(unobs, unobs, rownames(newdata))
  EZ <- design$O[, !obs, drop = FALSE] + design$X %*% B[, !obs, drop = FALSE] + M
  dimnames(EZ) <- dimnames(M)
  ## the diagonals of S, n x p_u: diag(A diag(S2_i) A') = (A * A) S2_i
  S_diag <- ve$S2 %*% t(A * A) + matrix(diag(S_cond), n, length(unobs), byrow = TRUE)
  res <- if (type == "link") EZ else exp(EZ + S_diag / 2)
  attr(res, "type") <- type
  if (var_par) {
    attr(res, "M") <- M
    attr(res, "S") <- S
  }
  res
}

## The model matrix X and the n x p offsets O of `newdata`, built as the fit's.
new_design <- function(object, newdata) {
  if (!is.data.frame(newdata)) newdata <- as.data.frame(newdata)
  tt <- stats::delete.response(object$terms)
  check_newdata_vars(tt, newdata)
  frame <- tryCatch(
    stats::model.frame(tt, newdata, xlev = object$xlevels, na.action = stats::na.pass),
    error = function(e) stop_arg("`newdata` must hold the covariates of the model and the ",
                                 "variables of its offset() terms: ", conditionMessage(e)))
  O <- formula_offset(frame, tt)
  X <- stats::model.matrix(tt, frame, contrasts.arg = object$contrasts)
  n <- nrow(X); p <- object$p
  check_finite(X, "`newdata`", " (in the covariates of the model)")
  if (is.null(O)) O <- 0
  O <- as.matrix(O)
  if (!(length(O) == 1L || (nrow(O) == n && ncol(O) %in% c(1L, p))))
    stop_arg(sprintf("the offset of `newdata` must be %d x %d or a vector of length %d.", n, p, n))
  check_finite(O, "the offset of `newdata`")
  list(X = X, O = matrix(O, n, p))
}

## Counts of new samples: a matrix or data frame of n rows, without NA, of non-negative whole
## numbers; columns matched by name to `species` (every one of them when `every`, else a subset of
## them, not all) and returned in the fit's order. Unnamed columns: every species, in order.
check_new_counts <- function(Y, arg, n, species, every) {
  label <- sprintf("`%s`", arg)
  ## one sample's counts as a (named) vector: its row
  if (n == 1L && is.null(dim(Y)) && is.numeric(Y)) Y <- matrix(Y, 1L, dimnames = list(NULL, names(Y)))
  Y <- as_numeric_matrix(Y, label)
  if (nrow(Y) != n)
    stop_arg(sprintf("%s must have one row per sample of `newdata` (%d); got %d.", label, n, nrow(Y)))
  check_finite(Y, label)
  if (any(Y < 0)) stop_arg(label, " must hold counts: found negative values.")
  if (any(Y != round(Y)))
    stop_arg(label, " must hold counts: found non-integer values (e.g. ",
             format(Y[Y != round(Y)][1L]), ").")
  nms <- colnames(Y)
  if (is.null(nms)) {
    if (!every)
      stop_arg(label, " must have column names: the species it observes, among those of the fit.")
    if (ncol(Y) != length(species))
      stop_arg(sprintf("%s must have one column per species of the fit (%d); got %d.",
                       label, length(species), ncol(Y)))
    colnames(Y) <- species
    return(Y)
  }
  if (anyNA(nms) || any(nms == ""))
    stop_arg(sprintf("%s has column(s) without a name (column %s): name each column by its species.",
                     label, name_list(which(is.na(nms) | nms == ""), 5L)))
  if (anyDuplicated(nms))
    stop_arg(sprintf("%s names a species twice: %s.", label, name_list(unique(nms[duplicated(nms)]), 5L)))
  unknown <- setdiff(nms, species)
  if (length(unknown))
    stop_arg(sprintf("%s has column(s) that are not species of the fit: %s.", label,
                     name_list(unknown, 5L)))
  if (every) {
    missing_sp <- setdiff(species, nms)
    if (length(missing_sp))
      stop_arg(sprintf("%s lacks %d species of the fit: %s.", label, length(missing_sp),
                       name_list(missing_sp, 5L)))
  } else if (length(nms) == length(species)) {
    stop_arg(label, " observes every species of the fit: there is none left to predict; ",
             "use predict(object, newdata, responses = ) for their latent positions.")
  }
  Y[, species[species %in% nms], drop = FALSE]
}

## The VE step: M and S of new samples maximise their ELBO with B and Omega held fixed, on the
## fit's backend, device and dtype. Returns M (X B included), M_res = M - X B and S2.
ve_step <- function(object, Y, X, O, B, Omega) {
  op <- object$optim_par
  Omega <- (Omega + t(Omega)) / 2  # a float32 fit's is symmetric to ~1e-7 only
  ## tol 1e-10 in float64 (PLN()'s 1e-8 otherwise): a prediction is read entry by entry, and an
  ## entry of a zero count is a flat direction of the ELBO, where 1e-8 leaves M within ~1e-2 of
  ## the optimum and 1e-10 within ~1e-3 (oaks); the VE step costs a fraction of the fit.
  control <- PLN_param(backend = op$backend, device = op$device, dtype = op$dtype,
                       tol = if (identical(op$dtype, "float64")) 1e-10, covariance = "fixed",
                       Omega = Omega)
  ctrl <- resolve_control(control)
  dat <- list(Y = as_double_matrix(Y), O = as_double_matrix(O), X = as_double_matrix(X),
              w = rep(1, nrow(Y)))
  res <- engine_fit(dat, ctrl, structure = list(Omega = control$Omega),
                    B_fixed = as_double_matrix(B))
  res$tol <- ctrl$tol
  warn_not_converged(res)
  M_res <- res$M
  list(M = X %*% B + M_res, M_res = M_res, S2 = res$S^2)
}
