#' Control parameters of PLNPCA()
#'
#' The engine settings of [PLNPCA()]. The optimiser is the package's
#' quasi-Newton one (as `PLN_param(optimizer = "lbfgs")`), on PLN-PCA's
#' variables B, C, M and log S^2. The first 50 iterations of each fit are a
#' warm-up: the shift of the scores M onto the covariates and their scale,
#' which B and C absorb in the likelihood, are set to their best values in
#' closed form, and no entry of B, C or M moves by
#' more than 0.3 per iteration, which keeps a fit from being thrown towards a
#' lower maximum of the ELBO by its first, longest steps (measured in
#' `inst/bench/NOTES-optimiser.md`).
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
    num_threads = check_threads(num_threads),
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
#'   number of species and at most the number of samples.
#' @param control see [PLNPCA_param()].
#' @return A [PLNPCAfamily_torch] object, an R6 collection of class
#'   `c("PLNPCAfamily_torch", "PLNPCAfamily", "PLNfamily_torch", "PLNfamily",
#'   "R6")` (PLNmodels' `PLNPCAfamily`), with the fields `models` (one
#'   [PLNPCAfit_torch] per rank, named by rank; also `fits`), `criteria` (a
#'   data frame of rank, nb_param, loglik, BIC and ICL), `ranks`, `call`,
#'   `formula` and `optim_par`, and the methods `$getModel(var, index)`,
#'   `$getBestModel(crit)`, `$plot()` and `$print()`, also available as
#'   [getModel()], [getBestModel()], [plot()][plot.PLNfamily_torch] and
#'   [print()]. Each fit (class `c("PLNPCAfit_torch", "PLNPCAfit",
#'   "PLNfit_torch", "PLNfit", "R6")`) holds, as in PLNmodels, `model_par` (B,
#'   C, Sigma), `var_par` (M, S2, S), `loglik`, `loglik_vec`, `BIC`, `ICL`,
#'   `nb_param = p d + p q - q (q - 1) / 2`, `entropy`, `R_squared`,
#'   `latent`, `latent_pos = M C'`, `fitted`, `scores`, `rotation`,
#'   `percent_var`, `eig`, `corr_circle`, `optim_par`, and the method
#'   `$project(newdata)`; see [PLNPCAfit_torch] and [plot.PLNPCAfit_torch()].
#'
#' @section What is computed where (single-cell scale):
#' With sparse counts nothing of size n x p is formed, in R or in the engine,
#' except on request (below):
#' * the start (PLNmodels' LM start: B the weighted least squares of
#'   log(1 + Y) - O on X, C and M from the rank-`max(ranks)` SVD of its
#'   residuals): for dense counts the exact SVD of the dense residuals in R
#'   (as PLNmodels); for sparse counts the engine's randomized SVD
#'   (`src/engine/models/pca/start.cpp`: subspace iteration on `max(ranks)` + 10
#'   columns, 4 power iterations, a fixed seed) whose products with the
#'   residuals are sparse products plus low-rank corrections (offsets one
#'   value per sample; an n x p offset matrix is used as given). On `scRNA`
#'   its rank-3 start is the exact one to 6e-8 (relative, in M C');
#' * the fit is the engine's (CSR counts, low-rank passes);
#' * `R_squared` is the engine's (`src/engine/models/pca/rsquared.cpp`): the null
#'   model's Poisson GLM per species (as `glm.fit(epsilon = 1e-3, maxit =
#'   10)`, every species at once), the saturated term from the non-zeros, and
#'   the Poisson log-likelihood at the latent means by the low-rank passes;
#' * `scores`, `rotation`, `eig`, `percent_var` and `corr_circle`: the SVD of
#'   the centred M C' from the QR factors of the centred M (n x q) and of C
#'   (p x q), in R;
#' * `latent` (O + X B + M C') and `latent_pos` (M C'), n x p: stored when
#'   n p is at most `getOption("plntorch.pca_store_latent", 1e7)` entries
#'   (80 MB), as PLNmodels does; above, `fit$latent` and `fit$latent_pos`
#'   build them when read, if the matrix takes at most
#'   `getOption("plntorch.max_dense_bytes", 2e9)` bytes, and otherwise stop
#'   with an error giving its size (use the factors `fit$var_par$M`,
#'   `fit$model_par$C` and `fit$model_par$B`);
#' * `project(newdata)` with sparse counts: the variational step in the
#'   engine, the scores from the n x q factors.
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
  n <- dat$n; p <- dat$p
  if (max(ranks) >= p)
    stop_arg(sprintf("`ranks` must be below the number of species p = %d; got %d.", p, max(ranks)))
  if (max(ranks) > n)
    stop_arg(sprintf("`ranks` must be at most the number of samples n = %d (the scores are n x rank); got %d.",
                     n, max(ranks)))
  res <- pca_engine_fit(dat, ranks, control)
  fam <- new_PLNPCAfamily_torch(res, dat, ranks, call = call, formula = formula,
                                terms = md$terms, xlevels = stats::.getXlevels(md$terms, md$frame),
                                contrasts = attr(md$X, "contrasts"),
                                weights = stats::model.weights(md$frame))
  fam
}

## The LM start of PLNmodels: B the weighted least squares of log(1 + Y) - O on X, and from the
## rank-qmax SVD of its residuals C = V D / sqrt(n) and M = sqrt(n) U (so that M C' is the
## residuals' best rank qmax). Dense counts (already n x p in R): base R's qr() and svd(), as
## before (the optimiser's path from a start that differs by rounding can end at another local
## optimum: the validation sets' results stay as they were). Sparse counts: the engine's randomized
## SVD (src/engine/models/pca/start.h), whose products with the residuals are sparse products plus low-rank
## corrections: no n x p array, in R or in the engine.
pca_start <- function(dat, qmax, ctrl) {
  if (is.null(dat$Y))
    return(pca_start_engine(dat$csr, dat$O, dat$X, dat$w, qmax, "randomized", pca_side_control(ctrl)))
  L <- log1p(dat$Y) - offset_matrix(dat)
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

## The counts as the engine takes them: the dense matrix, or the CSR list of the sparse path.
pca_counts_arg <- function(dat) if (!is.null(dat$Y)) dat$Y else dat$csr

## The engine settings of the start and of R^2: the fit's device and threads (as resolve_control()
## settled them), always float64.
pca_side_control <- function(control)
  list(device = control$device, dtype = "float64", num_threads = control$num_threads)

## The engine call for every rank; `start` overrides the SVD start (project()).
pca_engine_fit <- function(dat, ranks, control, start = NULL, fixed_model = FALSE) {
  ctrl <- resolve_control(c(unclass(control)[setdiff(names(control), "start")],
                            list(optimizer = "lbfgs", lr = 1, init = "lm", check_every = NULL,
                                 covariance = "full")))
  if (is.null(start)) start <- pca_start(dat, max(ranks), ctrl)
  res <- pca_fit_engine(pca_counts_arg(dat), dat$O, dat$X, dat$w, as_double_matrix(start$B),
                        as_double_matrix(start$C), as_double_matrix(start$M),
                        if (is.null(start$S)) NULL else as_double_matrix(start$S),
                        as.double(ranks), fixed_model, control$start, ctrl)
  res$tol <- ctrl$tol
  res$ctrl <- ctrl
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

## PLNmodels' approximate R^2, in the engine (src/engine/models/pca/rsquared.h): the Poisson log-likelihood
## at the latent means O + X B + M C' of each fit, between that of a per-species Poisson GLM on X
## (its null model, as glm.fit(epsilon = 1e-3, maxit = 10)) and the saturated one; no n x p array.
pca_poisson_terms <- function(dat, fits, control) {
  pca_poisson_engine(pca_counts_arg(dat), dat$O, dat$X, dat$w,
                     lapply(fits, function(f) list(B = f$B, C = f$C, M = f$M)),
                     pca_side_control(control))
}

## latent and latent_pos (n x p) are stored in a fit when n p is at most this
## (options(plntorch.pca_store_latent), default 1e7 entries, 80 MB); above, `fit$latent` and
## `fit$latent_pos` build them on request (pca_latent()).
pca_store_latent <- function(n, p) {
  lim <- getOption("plntorch.pca_store_latent", 1e7)
  if (!is.numeric(lim) || length(lim) != 1L || is.na(lim) || lim < 0)
    stop_arg("options(plntorch.pca_store_latent) must be a single number >= 0 of entries (n p) ",
             "up to which latent and latent_pos are stored (0: never; Inf: always); got ",
             describe_value(lim), ".")
  as.double(n) * p <= lim
}

new_PLNPCAfamily_torch <- function(res, dat, ranks, ...) {
  pt <- pca_poisson_terms(dat, res$fits, res$ctrl)
  extra <- list(...)
  ## what the fields derived from B, C, M and S2 need: X, the offsets (n x 1 on the sparse path),
  ## the weights, the sample names (the n x p latent layer is built from them on request), and the
  ## dense counts. One environment shared by the fits of the family: saveRDS() writes it once.
  parts <- new.env(parent = emptyenv())
  parts$X <- dat$X; parts$O <- dat$O; parts$w <- dat$w; parts$samples <- dat$names$samples
  parts$Y <- dat$Y  # NULL for sparse counts
  fits <- lapply(seq_along(res$fits), function(k)
    new_PLNPCAfit_torch(res$fits[[k]], dat, pt$loglik[k], pt, res, extra, parts))
  PLNPCAfamily_torch$new(
    fits, ranks, call = extra$call, formula = extra$formula,
    optim_par = list(backend = res$backend, device = res$device, dtype = res$dtype,
                     setup_seconds = res$setup_seconds, threads = res$threads,
                     seconds = stats::setNames(vapply(fits, function(f) f$optim_par$seconds, 0),
                                               as.character(ranks))))
}

new_PLNPCAfit_torch <- function(f, dat, loglik_latent, bounds, res, extra, parts) {
  q <- as.integer(f$rank)
  nms <- dat$names
  pcs <- seq_len(q)
  B <- f$B; C <- f$C; M <- f$M; S2 <- f$S^2
  dimnames(B) <- list(nms$covariates, nms$species)
  dimnames(C) <- list(nms$species, pcs)
  dimnames(M) <- dimnames(S2) <- list(nms$samples, pcs)
  R2 <- (loglik_latent - bounds[["lmin"]]) / (bounds[["lmax"]] - bounds[["lmin"]])
  fields <- c(
    pca_fit_fields(B, C, M, S2, stats::setNames(f$loglik_vec, nms$samples), R2, parts),
    list(optim_par = list(steps = as.integer(f$steps), objective = f$objective, status = f$status,
                          last_change = f$last_change, predicted_change = f$predicted_change,
                          seconds = f$seconds, backend = res$backend, device = res$device,
                          dtype = res$dtype, tol = res$tol),
         call = extra$call, formula = extra$formula, terms = extra$terms,
         xlevels = extra$xlevels, contrasts = extra$contrasts, weights = extra$weights))
  PLNPCAfit_torch$new(fields, parts)
}

## The fields of a PLN-PCA fit that follow from B, C, M, S2, the per-sample ELBO and R^2.
pca_fit_fields <- function(B, C, M, S2, loglik_vec, R2, parts) {
  n <- nrow(M); p <- nrow(C); d <- nrow(B); q <- ncol(M)
  w <- parts$w
  ## PLNmodels' Sigma: C (M' W M + diag(colSums(W S2))) C' / sum(w)
  nSig <- crossprod(M, M * w) + diag(colSums(S2 * w), q)
  Sigma <- tcrossprod(C %*% (nSig / sum(w)), C) # one p x p array
  loglik <- sum(w * loglik_vec)
  nb_param <- p * (d + q) - q * (q - 1) / 2
  BIC <- loglik - 0.5 * log(n) * nb_param
  entropy <- 0.5 * (n * q * log(2 * pi * exp(1)) + sum(log(S2)))
  ICL <- BIC - entropy
  ## The visualisation of PLNmodels: the SVD of the centred latent positions M C', from the QR
  ## factors of the centred M (n x q) and of C (p x q).
  ax <- pca_axes(M, C)
  eig <- ax$d^2
  pc_names <- paste0("PC", seq_len(q))
  scores <- ax$u * rep(ax$d, each = n)
  dimnames(scores) <- list(rownames(M), pc_names)
  rotation <- ax$v
  dimnames(rotation) <- list(rownames(C), pc_names)
  corr <- ax$v * rep(ax$d, each = p)
  corr <- corr / sqrt(rowSums(corr^2))
  dimnames(corr) <- list(rownames(C), pc_names)
  store <- pca_store_latent(n, p)
  if (store) {
    latent_pos <- tcrossprod(M, C)
    latent <- parts$O[, rep_len(seq_len(ncol(parts$O)), p), drop = FALSE] + parts$X %*% B + latent_pos
    dimnames(latent) <- dimnames(latent_pos) <- list(parts$samples, rownames(C))
  }
  list(
    rank = q, n = n, p = p, d = d,
    model_par = list(B = B, C = C, Sigma = Sigma),
    var_par = list(M = M, S2 = S2, S = sqrt(S2)),
    latent = if (store) latent, latent_pos = if (store) latent_pos,
    loglik = loglik, loglik_vec = loglik_vec,
    nb_param = nb_param, BIC = BIC, ICL = ICL, entropy = entropy, R_squared = R2,
    criteria = data.frame(nb_param = nb_param, loglik = loglik, BIC = BIC, ICL = ICL),
    scores = scores, rotation = rotation,
    percent_var = stats::setNames(round(eig / sum(eig) * R2, 4), pc_names),
    eig = eig, corr_circle = corr, vcov_model = "rank")
}

## The SVD of the centred M C' (n x p, never formed): with Mc = M - 1 colMeans(M) = Qm Rm and C =
## Qc Rc (thin QRs), Mc C' = Qm (Rm Rc') Qc', so from the q x q SVD Rm Rc' = u D v', Mc C' = (Qm u)
## D (Qc v)'. PLNmodels takes the SVD of scale(M C', TRUE, FALSE): the same up to signs.
pca_axes <- function(M, C) {
  q <- ncol(M)
  Mc <- sweep(M, 2L, colMeans(M))
  qm <- qr(unname(Mc)); qc <- qr(unname(C))
  Rm <- qr.R(qm)[, order(qm$pivot), drop = FALSE]
  Rc <- qr.R(qc)[, order(qc$pivot), drop = FALSE]
  s <- svd(Rm %*% t(Rc), nu = q, nv = q)
  list(u = qr.Q(qm) %*% s$u, d = s$d[seq_len(q)], v = qr.Q(qc) %*% s$v)
}

## `fit$latent`, `fit$latent_pos` and `fit$fitted` of a PLN-PCA fit when not stored (latent and
## latent_pos are stored when n p <= options(plntorch.pca_store_latent), 1e7 by default; fitted
## never is): built from the fit's factors when the n x p matrix takes at most
## options(plntorch.max_dense_bytes) (2 GB by default), an error naming its size otherwise.
## `f`: the fit's fields; `parts`: X, O (n x p or n x 1), samples.
pca_latent <- function(f, parts, which = c("latent", "latent_pos", "fitted")) {
  which <- match.arg(which)
  n <- f$n; p <- f$p
  bytes <- 8 * as.double(n) * p
  limit <- getOption("plntorch.max_dense_bytes", 2e9)
  if (!is.numeric(limit) || length(limit) != 1L || is.na(limit) || limit < 0)
    stop_arg("options(plntorch.max_dense_bytes) must be a single number >= 0 of bytes; got ",
             describe_value(limit), ".")
  if (bytes > limit)
    stop(sprintf(paste0(
      "fit$%s is a %d x %d matrix (%s), above options(plntorch.max_dense_bytes) = %s; it is not ",
      "stored %s. Use its factors (latent_pos = M C' with M = fit$var_par$M, C = ",
      "fit$model_par$C; latent = O + X B + latent_pos; fitted = exp(latent + S2 (C * C)' / 2) ",
      "with S2 = fit$var_par$S2), a block of rows of them, or raise the option."),
      which, n, p, format_bytes(bytes), format_bytes(limit),
      if (which == "fitted") "in PLN-PCA fits" else
        sprintf("above options(plntorch.pca_store_latent) = %g entries",
                getOption("plntorch.pca_store_latent", 1e7))), call. = FALSE)
  M <- f$var_par$M; mp <- f$model_par
  out <- tcrossprod(M, mp$C)
  if (which != "latent_pos")
    out <- out + parts$X %*% mp$B + parts$O[, rep_len(seq_len(ncol(parts$O)), p), drop = FALSE]
  ## PLNmodels' fitted values of PLN-PCA: exp(Z + S2 (C * C)' / 2), Z = O + X B + M C'
  if (which == "fitted") out <- exp(out + tcrossprod(f$var_par$S2, mp$C * mp$C) / 2)
  dimnames(out) <- list(parts$samples, rownames(mp$C))
  out
}

format_bytes <- function(b) {
  u <- c("B", "kB", "MB", "GB", "TB"); k <- max(1L, min(length(u), floor(log(max(b, 1), 1000)) + 1L))
  sprintf("%.3g %s", b / 1000^(k - 1L), u[k])
}
