#' Control parameters of PLNPCA()
#'
#' The engine settings of [PLNPCA()]. The optimiser is the package's
#' quasi-Newton one (as `PLN_param(optimizer = "lbfgs")`), on PLN-PCA's
#' variables B, C, M and log S^2.
#'
#' @inheritParams PLN_param
#' @param backend `"fused"` (analytic gradients through passes that never form
#'   an n x p array: the one for large or sparse data), `"eager"` or
#'   `"script"` (autograd of the reference objective, on dense n x p arrays);
#'   `NULL`: the first of these that the build offers.
#' @param start where each rank starts: `"best"` (default) fits it from both
#'   starts below and keeps the higher log-likelihood; `"warm"` from the
#'   previous rank's optimum (ranks in increasing order), its new columns from
#'   the SVD start; `"svd"` from the SVD of the residuals of the log counts on
#'   the covariates, PLNmodels' start. Neither `"warm"` nor `"svd"` reaches the
#'   higher optimum on every rank of the validation sets
#'   (`inst/bench/pca-validation.R --compare-starts`); `"best"` costs both.
#' @return A list of class `PLNPCA_param_torch`.
#' @seealso [PLNPCA()]
#' @examples
#' PLNPCA_param(tol = 1e-6)
#' @export
PLNPCA_param <- function(backend = NULL, device = "cpu", dtype = NULL, maxit = 10000,
                         tol = NULL, start = "best", num_threads = NULL, trace = 0) {
  ctrl <- list(
    backend     = check_choice(backend, "backend", .pln_choices$backend, null_ok = TRUE),
    device      = check_device(device),
    dtype       = check_choice(dtype, "dtype", .pln_choices$dtype, null_ok = TRUE),
    maxit       = check_count(maxit, "maxit", lower = 1L),
    tol         = check_number(tol, "tol", lower = 0, upper = 0.1, null_ok = TRUE),
    start       = check_choice(start, "start", c("best", "warm", "svd")),
    num_threads = check_count(num_threads, "num_threads", lower = 0L, null_ok = TRUE),
    trace       = check_trace(trace)
  )
  structure(ctrl, class = "PLNPCA_param_torch")
}

#' @export
print.PLNPCA_param_torch <- function(x, ...) {
  cat("PLNPCA control parameters (plntorch)\n")
  for (nm in names(x)) cat(sprintf("  %-12s %s\n", nm, if (is.null(x[[nm]])) "(auto)" else format(x[[nm]])))
  invisible(x)
}

as_plnpca_param <- function(control) {
  if (inherits(control, "PLNPCA_param_torch")) return(control)
  if (!is.list(control) || is.object(control) || (length(control) && is.null(names(control))) ||
      any(names(control) == ""))
    stop_arg("`control` must be the result of PLNPCA_param() or a named list of its arguments; got ",
             describe_value(control), ".")
  unknown <- setdiff(names(control), names(formals(PLNPCA_param)))
  if (length(unknown))
    stop_arg("`control` has unknown parameter(s): ", paste(unknown, collapse = ", "),
             "; see ?PLNPCA_param.")
  do.call(PLNPCA_param, control)
}

#' Fit PLN-PCA models of several ranks
#'
#' Fits the rank-constrained Poisson log-normal model of PLNmodels' `PLNPCA()`:
#' latent `Z_i = O_i + x_i B + C W_i` with `W_i ~ N(0, I_q)`, C a p x q matrix
#' of loadings (Sigma = C C' of rank q), and variational scores
#' `W_i ~ N(M_i, diag(S_i^2))`, for every rank q of `ranks`, in one call of
#' the engine: ranks in increasing order, each started from PLNmodels' SVD
#' start and from the previous rank's optimum, keeping the better (see
#' [PLNPCA_param()]).
#'
#' @inheritParams PLN
#' @param formula a formula `Y ~ covariates` as in [PLN()]. The counts may be a
#'   dense matrix or a sparse `Matrix::dgCMatrix` (then kept sparse all the
#'   way to the engine); offsets as in [PLN()]: one value per sample (a
#'   vector) or per sample and species (a matrix).
#' @param ranks the ranks to fit: distinct positive whole numbers, below the
#'   number of species.
#' @param control see [PLNPCA_param()].
#' @return A `PLNPCAfamily_torch` object: a list with `fits` (one
#'   `PLNPCAfit_torch` per rank, named by rank), `criteria` (a data frame of
#'   rank, nb_param, loglik, BIC and ICL), `ranks`, and the functions
#'   `getModel(rank)`, `getBestModel(crit)` and `plot()`, also available as
#'   [getModel()], [getBestModel()] and [plot()][plot.PLNPCAfamily_torch]. Each
#'   fit holds, as in PLNmodels, `model_par` (B, C, Sigma), `var_par` (M, S2,
#'   S), `loglik`, `loglik_vec`, `BIC`, `ICL`, `nb_param =
#'   p d + p q - q (q - 1) / 2`, `entropy`, `R_squared`, `latent`,
#'   `latent_pos = M C'`, `scores`, `rotation`, `percent_var`, `corr_circle`,
#'   `optim_par`, and `project(newdata)`; see [plot.PLNPCAfit_torch()].
#' @seealso [PLN()], [PLNPCA_param()], [getBestModel()]
#' @examples
#' data(oaks)
#' pca <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = oaks, ranks = 1:3)
#' pca$criteria
#' best <- getBestModel(pca, "ICL")
#' best$rank
#' head(best$scores)
#' @export
PLNPCA <- function(formula, data, subset, weights, ranks = 1:5, control = PLNPCA_param()) {
  call <- match.call()
  caller <- parent.frame()
  if (missing(formula)) stop_arg("`formula` is missing.")
  check_formula(formula)
  control <- as_plnpca_param(control)
  if (!is.numeric(ranks) || !length(ranks) || anyNA(ranks) || any(ranks < 1) ||
      any(ranks != round(ranks)) || anyDuplicated(ranks))
    stop_arg("`ranks` must be distinct positive whole numbers, e.g. 1:5; got ",
             describe_value(ranks), ".")
  ranks <- sort(as.integer(ranks))
  md <- model_data(call, caller, formula, if (missing(data)) NULL else data, sparse_ok = TRUE)
  dat <- md$dat
  p <- dat$p
  if (max(ranks) >= p)
    stop_arg(sprintf("`ranks` must be below the number of species p = %d; got %d.", p, max(ranks)))
  res <- pca_engine_fit(dat, ranks, control)
  fam <- new_PLNPCAfamily_torch(res, dat, ranks, call = call, formula = formula,
                                terms = md$terms, xlevels = stats::.getXlevels(md$terms, md$frame))
  fam
}

## The LM start of PLNmodels: B the least squares of log((1 + Y) / exp(O)) on X, and the SVD of
## its residuals, C = V D / sqrt(n) and M = sqrt(n) U (so that M C' is the residuals' best rank q).
pca_start <- function(dat, qmax) {
  L <- log1p(pca_dense_counts(dat)) - offset_matrix(dat)
  sw <- sqrt(dat$w)
  B <- qr.coef(qr(dat$X * sw), L * sw)
  B[is.na(B)] <- 0
  R <- L - dat$X %*% B
  s <- svd(R, nu = qmax, nv = qmax)
  n <- nrow(R)
  list(B = B, C = s$v %*% diag(s$d[seq_len(qmax)], qmax) / sqrt(n), M = sqrt(n) * s$u)
}

## The offsets as an n x p matrix (the sparse path keeps one column when given one per sample).
offset_matrix <- function(dat) dat$O[, rep_len(seq_len(ncol(dat$O)), dat$p), drop = FALSE]

pca_dense_counts <- function(dat) {
  if (!is.null(dat$Y)) return(dat$Y)
  Y <- matrix(0, dat$n, dat$p)
  rows <- rep.int(seq_len(dat$n), diff(dat$csr$rowptr))
  Y[cbind(rows, dat$csr$col + 1L)] <- dat$csr$val
  Y
}

## The engine call for every rank; `start` overrides the SVD start (project()).
pca_engine_fit <- function(dat, ranks, control, start = NULL, fixed_model = FALSE) {
  ctrl <- resolve_control(c(unclass(control)[setdiff(names(control), "start")],
                            list(optimizer = "lbfgs", lr = 1, init = "lm", check_every = NULL,
                                 covariance = "full")))
  if (is.null(start)) start <- pca_start(dat, max(ranks))
  Yarg <- if (!is.null(dat$Y)) dat$Y else dat$csr
  res <- pca_fit_engine(Yarg, dat$O, dat$X, dat$w, as_double_matrix(start$B),
                        as_double_matrix(start$C), as_double_matrix(start$M),
                        if (is.null(start$S)) NULL else as_double_matrix(start$S),
                        as.double(ranks), fixed_model, control$start, ctrl)
  res$tol <- ctrl$tol
  for (k in seq_along(res$fits)) {
    f <- res$fits[[k]]
    if (any(diff(f$objective) <= 0))
      stop(sprintf("internal error: the ELBO of the PLN-PCA fit of rank %d did not rise at step %d; please report it.",
                   f$rank, which(diff(f$objective) <= 0)[1L]), call. = FALSE)
    if (!fixed_model && identical(f$status, "maxit") && ctrl$tol > 0)
      warning(sprintf("the PLN-PCA fit of rank %d stopped at maxit = %d steps before converging; raise `maxit` in PLNPCA_param().",
                      f$rank, as.integer(f$steps)), call. = FALSE)
  }
  res
}

## Sum over samples of the Poisson log-likelihood at log-means `Z` (PLNmodels' logLikPoisson, by
## blocks of rows so that no second n x p array is made).
poisson_loglik <- function(Y, Z, w) {
  lf <- function(y) { y[y == 0] <- 1; y * log(y) - y + log(8 * y^3 + 4 * y^2 + y + 1 / 30) / 6 + log(pi) / 2 }
  sum(w * (rowSums(Y * Z) - rowSums(exp(Z)) - rowSums(lf(Y))))
}

## PLNmodels' approximate R^2: the Poisson log-likelihood at the latent means, between that of a
## per-species Poisson GLM on X (its null model) and the saturated one.
pca_r2_bounds <- function(Y, dat) {
  Bnull <- vapply(seq_len(ncol(Y)), function(j)
    stats::coefficients(suppressWarnings(stats::glm.fit(
      dat$X, Y[, j], weights = dat$w, offset = dat$O[, if (ncol(dat$O) > 1L) j else 1L],
      family = stats::poisson(), control = stats::glm.control(epsilon = 1e-3, maxit = 10)))),
    numeric(ncol(dat$X)))
  Znull <- offset_matrix(dat) + dat$X %*% matrix(Bnull, ncol(dat$X))
  sat <- Y * log(Y); sat[Y == 0] <- 0
  lf <- function(y) { y[y == 0] <- 1; y * log(y) - y + log(8 * y^3 + 4 * y^2 + y + 1 / 30) / 6 + log(pi) / 2 }
  c(lmin = poisson_loglik(Y, Znull, dat$w),
    lmax = sum(dat$w * (rowSums(sat) - rowSums(Y) - rowSums(lf(Y)))))
}

new_PLNPCAfamily_torch <- function(res, dat, ranks, ...) {
  Y <- pca_dense_counts(dat)
  bounds <- pca_r2_bounds(Y, dat)
  extra <- list(...)
  fits <- lapply(res$fits, function(f) new_PLNPCAfit_torch(f, dat, Y, bounds, res, extra))
  names(fits) <- as.character(ranks)
  criteria <- data.frame(rank = ranks,
                         nb_param = vapply(fits, `[[`, 0, "nb_param"),
                         loglik = vapply(fits, `[[`, 0, "loglik"),
                         BIC = vapply(fits, `[[`, 0, "BIC"),
                         ICL = vapply(fits, `[[`, 0, "ICL"),
                         row.names = NULL)
  fam <- list(ranks = ranks, fits = fits, criteria = criteria,
              call = extra$call, formula = extra$formula,
              optim_par = list(backend = res$backend, device = res$device, dtype = res$dtype,
                               setup_seconds = res$setup_seconds, threads = res$threads,
                               seconds = vapply(fits, function(f) f$optim_par$seconds, 0)))
  ## PLNmodels' R6 style (pca$getBestModel("ICL")) beside the S3 generics.
  fam <- structure(fam, class = "PLNPCAfamily_torch")
  with_methods(fam, list(
    getModel = function(var, index = NULL) getModel.PLNPCAfamily_torch(self, var, index),
    getBestModel = function(crit = c("ICL", "BIC")) getBestModel.PLNPCAfamily_torch(self, crit),
    plot = function(criteria = c("loglik", "BIC", "ICL"), ...)
      plot.PLNPCAfamily_torch(self, criteria, ...)))
}

## Adds functions to a list object that call its methods on itself (obj$f(...)), in a small
## environment holding the object alone (not the frame that built it, with its data).
with_methods <- function(obj, funs) {
  e <- new.env(parent = environment(with_methods))
  for (nm in names(funs)) {
    environment(funs[[nm]]) <- e
    obj[[nm]] <- funs[[nm]]
  }
  e$self <- obj
  obj
}

new_PLNPCAfit_torch <- function(f, dat, Y, bounds, res, extra) {
  n <- dat$n; p <- dat$p; d <- ncol(dat$X); q <- as.integer(f$rank)
  nms <- dat$names
  pcs <- seq_len(q)
  B <- f$B; C <- f$C; M <- f$M; S2 <- f$S^2
  dimnames(B) <- list(nms$covariates, nms$species)
  dimnames(C) <- list(nms$species, pcs)
  dimnames(M) <- dimnames(S2) <- list(nms$samples, pcs)
  ## PLNmodels' Sigma: C (M' W M + diag(colSums(W S2))) C' / sum(w)
  nSig <- crossprod(M, M * dat$w) + diag(colSums(S2 * dat$w), q)
  Sigma <- C %*% nSig %*% t(C) / sum(dat$w)
  latent_pos <- tcrossprod(M, C)
  latent <- offset_matrix(dat) + dat$X %*% B + latent_pos
  dimnames(latent) <- dimnames(latent_pos) <- list(nms$samples, nms$species)
  loglik <- sum(dat$w * f$loglik_vec)
  nb_param <- p * (d + q) - q * (q - 1) / 2
  BIC <- loglik - 0.5 * log(n) * nb_param
  entropy <- 0.5 * (n * q * log(2 * pi * exp(1)) + sum(log(S2)))
  ICL <- BIC - entropy
  R2 <- (poisson_loglik(Y, latent, dat$w) - bounds[["lmin"]]) / (bounds[["lmax"]] - bounds[["lmin"]])
  ## The visualisation of PLNmodels: the SVD of the centred latent positions.
  sv <- svd(scale(latent_pos, TRUE, FALSE), nu = q, nv = q)
  eig <- sv$d[pcs]^2
  pc_names <- paste0("PC", pcs)
  scores <- sv$u[, pcs, drop = FALSE] * rep(sv$d[pcs], each = n)
  dimnames(scores) <- list(nms$samples, pc_names)
  rotation <- sv$v[, pcs, drop = FALSE]
  dimnames(rotation) <- list(nms$species, pc_names)
  corr <- sv$v[, pcs, drop = FALSE] * rep(sv$d[pcs], each = p)
  corr <- corr / sqrt(rowSums(corr^2))
  dimnames(corr) <- list(nms$species, pc_names)
  fit <- list(
    rank = q, n = n, p = p, d = d,
    model_par = list(B = B, C = C, Sigma = Sigma),
    var_par = list(M = M, S2 = S2, S = sqrt(S2)),
    latent = latent, latent_pos = latent_pos,
    loglik = loglik, loglik_vec = stats::setNames(f$loglik_vec, nms$samples),
    nb_param = nb_param, BIC = BIC, ICL = ICL, entropy = entropy, R_squared = R2,
    criteria = data.frame(nb_param = nb_param, loglik = loglik, BIC = BIC, ICL = ICL),
    scores = scores, rotation = rotation,
    percent_var = stats::setNames(round(eig / sum(eig) * R2, 4), pc_names),
    eig = eig, corr_circle = corr,
    optim_par = list(steps = as.integer(f$steps), objective = f$objective, status = f$status,
                     last_change = f$last_change, predicted_change = f$predicted_change,
                     seconds = f$seconds, backend = res$backend, device = res$device,
                     dtype = res$dtype, tol = res$tol),
    call = extra$call, formula = extra$formula, terms = extra$terms, xlevels = extra$xlevels
  )
  with_methods(structure(fit, class = "PLNPCAfit_torch"), list(
    project = function(newdata, control = PLNPCA_param()) project_pca(self, newdata, control)))
}
