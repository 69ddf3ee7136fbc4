## Post-treatments of a PLN fit (PLNmodels' `config_post`): variances of B and Omega by the
## variational information, the sandwich estimator, the jackknife and the bootstrap. The dense
## algebra runs in src/rcpp_post.cpp (Eigen); the refits run on the engine (fit_pln_engine()).

.config_post_defaults <- list(jackknife = FALSE, bootstrap = 0L, rsquared = TRUE,
                              variational_var = FALSE, sandwich_var = FALSE, batch = "auto")

## config_post$batch = "auto": refits solved together per engine call, by device. On a GPU as many
## as half its free memory holds (NA: the engine sizes the batch). On the CPU one refit per engine
## call (0): there the batched refits were slower at every batch size on trichoptera and oaks
## (inst/bench/results/batch-refits-*-cpu.csv): their evaluations are arithmetic-bound, in ATen
## operations rather than the fused backend's single pass, and the joint run iterates until its
## slowest refit has converged.
.refit_batch_auto <- list(cpu = 0L, cuda = NA_integer_)

## PLN_param(config_post = ): a named list of some of PLNmodels' entries, merged into its defaults.
check_config_post <- function(x, arg = "config_post") {
  if (is_config_post(x)) return(x)
  if (is.null(x)) x <- list()
  if (!is.list(x) || is.object(x))
    stop_arg(sprintf("`%s` must be a named list such as list(sandwich_var = TRUE); got %s.",
                     arg, describe_value(x)))
  nms <- names(x)
  if (length(x) && (is.null(nms) || any(is.na(nms) | nms == "")))
    stop_arg(sprintf("`%s` must be a named list: name each element among %s.", arg,
                     paste(names(.config_post_defaults), collapse = ", ")))
  if (anyDuplicated(nms))
    stop_arg(sprintf("`%s` gives `%s` more than once.", arg, nms[duplicated(nms)][1L]))
  unknown <- setdiff(nms, names(.config_post_defaults))
  if (length(unknown))
    stop_arg(sprintf("`%s` has unknown element(s) %s; known: %s.", arg, name_list(unknown),
                     paste(names(.config_post_defaults), collapse = ", ")))
  out <- .config_post_defaults
  for (nm in nms) {
    v <- x[[nm]]
    out[[nm]] <- switch(nm,
      bootstrap = check_count(v, sprintf("%s$bootstrap", arg), lower = 0L),
      batch = check_refit_batch(v, sprintf("%s$batch", arg)),
      {
        if (!is.logical(v) || length(v) != 1L || is.na(v))
          stop_arg(sprintf("`%s$%s` must be TRUE or FALSE; got %s.", arg, nm, describe_value(v)))
        v
      })
  }
  if (identical(out$bootstrap, 1L))
    stop_arg(sprintf("`%s$bootstrap` must be 0 (none) or at least 2 refits; got 1.", arg))
  structure(out, class = "pln_config_post")
}

is_config_post <- function(x) inherits(x, "pln_config_post")

## "auto", or a whole number >= 0 (0: one refit per engine call).
check_refit_batch <- function(v, arg) {
  if (identical(v, "auto")) return(v)
  if (!is.numeric(v) || length(v) != 1L || is.na(v) || !is.finite(v) || v < 0 || v != round(v) ||
      v > .Machine$integer.max)
    stop_arg(sprintf(paste0(
      "`%s` must be \"auto\", 0 (one refit at a time, on the fit's backend) or a positive ",
      "whole number of refits solved together; got %s."), arg, describe_value(v)))
  as.integer(v)
}

format_config_post <- function(x) {
  on <- c(if (x$variational_var) "variational_var", if (x$sandwich_var) "sandwich_var",
          if (x$jackknife) "jackknife", if (x$bootstrap > 0L) sprintf("bootstrap = %d", x$bootstrap),
          if ((x$jackknife || x$bootstrap > 0L) && !identical(x$batch, "auto"))
            sprintf("batch = %d", x$batch))
  if (length(on)) paste(on, collapse = ", ") else "(none)"
}

## Runs the post-treatments asked for in `control$config_post` and stores them in the fit.
## `dat`: the checked data of the fit (check_pln_data()); `control`: its PLN_param().
post_treatment <- function(fit, dat, control) {
  cfg <- control$config_post
  if (is.null(cfg)) cfg <- check_config_post(list())
  check_post_n(cfg, nrow(dat$Y), ncol(dat$X))
  if (cfg$variational_var) fit <- store_variance(fit, "variational", variance_variational(fit))
  if (cfg$sandwich_var) fit <- store_variance(fit, "sandwich", variance_sandwich(fit))
  if (cfg$jackknife) fit <- store_variance(fit, "jackknife", variance_jackknife(fit, dat, control))
  if (cfg$bootstrap > 0L)
    fit <- store_variance(fit, "bootstrap", variance_bootstrap(fit, dat, control, cfg$bootstrap))
  fit
}

## fit$uncertainty$<type>: list(var_B (d x p), vcov_B (d x d x p blocks or a pd x pd matrix),
## var_Omega (p x p or NULL), bias_B, bias_Omega (jackknife), seconds, ...)
store_variance <- function(fit, type, res) {
  if (is.null(fit$uncertainty)) fit$uncertainty <- list()
  fit$uncertainty[[type]] <- res
  fit
}

## The fewest samples each estimator of the uncertainty of B needs with d covariate columns: more
## samples than coefficients per species (n > d; with n <= d the fit interpolates and the
## "information" is the prior's), and for the jackknife refits of n - 1 samples that are so too.
## Returns why n is too small, or NULL.
uncertainty_n_problem <- function(type, n, d) {
  need <- switch(type, sandwich = , variational = d + 1L, jackknife = max(3L, d + 2L),
                 bootstrap = max(2L, d + 1L))
  if (n >= need) return(NULL)
  sprintf("the %s standard errors need at least %d samples with %d covariate column(s)%s; the fit has %d",
          type, need, d, if (type == "jackknife") " (each refit leaves one out)" else "", n)
}

## config_post's estimators against the number of samples: an error naming the estimator, raised
## by PLN() before fitting (so that no fit is lost) and by $postTreatment().
check_post_n <- function(cfg, n, d) {
  if (is.null(cfg)) return(invisible(TRUE))
  asked <- c(variational = isTRUE(cfg$variational_var), sandwich = isTRUE(cfg$sandwich_var),
             jackknife = isTRUE(cfg$jackknife), bootstrap = isTRUE(cfg$bootstrap > 0L))
  for (type in names(asked)[asked]) {
    why <- uncertainty_n_problem(type, n, d)
    if (!is.null(why))
      stop_arg(sprintf("`config_post` asks for %s: %s.",
                       switch(type, variational = "variational_var", sandwich = "sandwich_var",
                              jackknife = "jackknife", bootstrap = "bootstrap"), why))
  }
  invisible(TRUE)
}

## Coefficients of B with no finite estimate in the fit (d x p logical; see post_separated_B()).
separated_coefs <- function(fit, dat = post_data(fit)) {
  na <- post_separated_B(dat$Y, dat$X, as_double_matrix(fit$fitted), dat$w)
  dimnames(na) <- dimnames(fit$model_par$B)
  na
}

## One warning for the NA standard errors of B of `type`: `sep` the coefficients with no finite
## estimate (d x p logical), `extra` further reasons (sentences).
warn_na_se <- function(type, sep = NULL, extra = NULL) {
  msg <- extra
  if (!is.null(sep) && any(sep)) {
    k <- which(sep, arr.ind = TRUE)
    msg <- c(msg, sprintf(paste0(
      "%d coefficient(s) of B have no finite estimate (e.g. %s for %s: a species absent from ",
      "every sample of a level, whose coefficient drifts towards -Inf; see ?PLN, \"Convergence\")"),
      nrow(k), rownames(sep)[k[1L, 1L]], colnames(sep)[k[1L, 2L]]))
  }
  if (length(msg))
    warning(paste(msg, collapse = "; "), sprintf(": their %s standard errors are NA.", type),
            call. = FALSE)
}

## The coefficients (of a design X) that are not identified: those loading on the null space of
## X (on unit-norm columns, so that the scale of a covariate changes nothing); NULL when X has
## full rank, by the same check as the fit's (qr(), check_pln_data()).
unidentified_coefs <- function(X) {
  qx <- qr(X)
  if (qx$rank == ncol(X)) return(NULL)
  s <- sqrt(colSums(X * X))
  s[!(s > 0)] <- 1
  sv <- svd(sweep(X, 2L, s, "/"), nu = 0L, nv = ncol(X))
  null <- sv$v[, (qx$rank + 1L):ncol(X), drop = FALSE]
  list(unidentified = rowSums(null * null) > 1e-8, keep = sort(qx$pivot[seq_len(qx$rank)]))
}

## The data the post-treatments need, stored in the fit by PLN().
post_data <- function(fit) {
  if (is.null(fit$responses) || is.null(fit$covariates))
    stop_arg("this fit holds no data (`responses`, `covariates`): refit it with PLN().")
  w <- fit$weights
  if (is.null(w)) w <- rep(1, fit$n)
  list(Y = fit$responses, X = fit$covariates, w = as.double(w))
}

## Variational variance: per species the inverse of X' diag(w A_j) X, the curvature of the
## ELBO in B[, j] with the variational parameters held fixed (it ignores their uncertainty, and
## understates the variance); of Omega, PLNmodels' 2 Omega_jj Omega_kk / n (Wishart-like).
variance_variational <- function(fit) {
  t0 <- proc.time()[["elapsed"]]
  dat <- post_data(fit)
  res <- post_variational_B(dat$X, as_double_matrix(fit$fitted), dat$w)
  sep <- separated_coefs(fit, dat)
  sep[, !res$ok] <- FALSE
  warn_na_se("variational", sep, if (!all(res$ok))
    sprintf("the variational information of %d species is singular or not positive definite (e.g. %s)",
            sum(!res$ok), colnames(fit$model_par$B)[!res$ok][1L]))
  res$var[sep] <- NA_real_
  res$blocks <- na_blocks(res$blocks, sep)
  dimnames(res$var) <- dimnames(fit$model_par$B)
  Omega <- fit$model_par$Omega
  var_Omega <- if (!identical(fit$vcov_model, "fixed")) {
    v <- 2 * outer(diag(Omega), diag(Omega)) / sum(dat$w)
    dimnames(v) <- dimnames(Omega)
    v
  }
  list(var_B = res$var, vcov_B = name_blocks(res$blocks, fit$model_par$B),
       var_Omega = var_Omega, seconds = proc.time()[["elapsed"]] - t0)
}

## Sandwich variance of B (PLNmodels' estimator, see src/rcpp_post.cpp); `full`: also the
## pd x pd covariance.
variance_sandwich <- function(fit, full = NULL) {
  t0 <- proc.time()[["elapsed"]]
  dat <- post_data(fit)
  pd <- fit$p * fit$d
  if (is.null(full)) full <- pd <= 1000L
  check_sandwich_size(pd, fit$n)
  ## the model's Sigma: with a fixed Omega, its inverse (as PLNmodels' sandwich takes it)
  Sigma <- if (identical(fit$vcov_model, "fixed")) solve(fit$model_par$Omega) else fit$model_par$Sigma
  res <- tryCatch(
    post_sandwich_B(dat$Y, dat$X, as_double_matrix(fit$fitted), as_double_matrix(fit$var_par$S),
                    as_double_matrix(Sigma), as.double(diag(fit$model_par$Omega)), dat$w, full),
    error = function(e) stop_arg("the sandwich variance of B could not be computed: ",
                                 conditionMessage(e), "."))
  dimnames(res$var) <- dimnames(fit$model_par$B)
  if (anyNA(res$var)) warn_na_se("sandwich", is.na(res$var))
  if (full) dimnames(res$vcov) <- rep(list(vec_names(fit$model_par$B)), 2L)
  list(var_B = res$var, vcov_B = res$vcov, var_Omega = NULL,
       seconds = proc.time()[["elapsed"]] - t0)
}

## The sandwich holds a pd x pd matrix (and its Cholesky factor): refuse sizes that would
## exhaust memory, naming them.
check_sandwich_size <- function(pd, n) {
  bytes <- 8 * (3 * as.double(pd)^2 + 2 * as.double(pd) * n)
  max_bytes <- getOption("plntorch.max_memory", 8e9)
  if (is.finite(max_bytes) && bytes > max_bytes)
    stop_arg(sprintf(paste0(
      "the sandwich variance of B needs up to %.1f GB (%d x %d matrices, p d = %d coefficients), ",
      "more than the limit of %.1f GB (options(plntorch.max_memory), default 8 GB here): use ",
      "type = \"variational\" or fewer species."), bytes / 1e9, pd, pd, pd, max_bytes / 1e9))
}

## Jackknife: n refits, each without one sample, started from the full fit (its B, and its
## variational parameters without that row). Variance (n - 1) / n sum_i (B_(i) - mean)^2 and bias
## (n - 1) (mean - B), as PLNmodels; of Omega likewise.
variance_jackknife <- function(fit, dat, control) {
  n <- nrow(dat$Y)
  res <- refit_resamples(fit, dat, control, lapply(seq_len(n), function(i) {
    rows <- seq_len(n)[-i]
    list(rows = rows, w = dat$w[rows], label = sprintf("without sample %s", sample_label(dat, i)))
  }), scale = (n - 1) / n, what = "jackknife")
  res$bias_B <- (n - 1) * (res$mean_B - fit$model_par$B)
  res$bias_Omega <- (n - 1) * (res$mean_Omega - fit$model_par$Omega)
  res
}

## Bootstrap: R refits on multinomial resamples of the samples, as weights (a sample drawn k
## times weighs k times its weight; those not drawn are left out) rather than duplicated rows,
## each started from the full fit. Variance sum_r (B_r - mean)^2 / R, as PLNmodels.
variance_bootstrap <- function(fit, dat, control, R) {
  n <- nrow(dat$Y)
  draws <- lapply(seq_len(R), function(r) {
    k <- as.vector(stats::rmultinom(1L, n, rep(1 / n, n)))
    rows <- which(k > 0)
    list(rows = rows, w = dat$w[rows] * k[rows], label = sprintf("resample %d", r))
  })
  refit_resamples(fit, dat, control, draws, scale = 1 / R, what = "bootstrap")
}

## Refits of the model on resamples (each a list of rows and their weights) on the engine, warm
## started from `fit`: solved `batch` at a time in one engine call (refit_batched()), or one engine
## call per refit (refit_sequential(), batch = 0); see resolve_refit_batch(). The moments of B in
## C++ (post_resample_moments()), of Omega by sums of the deviations from the full fit's
## (numerically stable, and no p x p x R array is held).
refit_resamples <- function(fit, dat, control, resamples, scale, what) {
  t0 <- proc.time()[["elapsed"]]
  B <- fit$model_par$B; Omega <- fit$model_par$Omega
  R <- length(resamples)
  d <- nrow(B)
  batch <- resolve_refit_batch(control)
  ## the refits' designs get the fit's check: a resample whose X is rank-deficient is refitted
  ## on the columns it identifies, and the coefficients it cannot identify are NA in it (so
  ## their variance is NA)
  for (r in seq_len(R))
    resamples[[r]]$design <- unidentified_coefs(dat$X[resamples[[r]]$rows, , drop = FALSE])
  deficient <- vapply(resamples, function(rs) !is.null(rs$design), logical(1))
  out <- if (identical(batch, 0L) || all(deficient)) {
    refit_sequential(fit, dat, control, resamples, what)
  } else {
    o1 <- refit_batched(fit, dat, control, resamples[!deficient], what, batch)
    if (any(deficient)) {
      o2 <- refit_sequential(fit, dat, control, resamples[deficient], what)
      Bs <- matrix(0, length(B), R)
      Bs[, !deficient] <- o1$Bs
      Bs[, deficient] <- o2$Bs
      status <- character(R); status[!deficient] <- o1$status; status[deficient] <- o2$status
      steps <- integer(R); steps[!deficient] <- o1$steps; steps[deficient] <- o2$steps
      o1 <- list(Bs = Bs, dev_sum = o1$dev_sum + o2$dev_sum, dev_sq = o1$dev_sq + o2$dev_sq,
                 status = status, steps = steps, batch = o1$batch)
    }
    o1
  }
  status <- out$status
  if (any(status != "converged"))
    warning(sprintf("%d of the %d %s refits did not converge (%s): their estimates enter the variance as they are.",
                    sum(status != "converged"), R, what, name_list(unique(status[status != "converged"]))),
            call. = FALSE)
  unident <- matrix(FALSE, d, ncol(B), dimnames = dimnames(B))
  for (r in which(deficient)) {
    u <- resamples[[r]]$design$unidentified
    unident[u, ] <- TRUE
    out$Bs[rep(u, ncol(B)), r] <- NA_real_
  }
  sep <- separated_coefs(fit, dat)
  if (any(deficient)) {
    first <- resamples[[which(deficient)[1L]]]
    extra <- sprintf(paste0(
      "%d of the %d %s refits have collinear covariates (e.g. %s: %s %s then a linear ",
      "combination of the others), as the fit's check would refuse; they cannot estimate %s"),
      sum(deficient), R, what, if (!is.null(first$label)) first$label else "one",
      name_list(rownames(B)[first$design$unidentified]),
      if (sum(first$design$unidentified) == 1L) "is" else "are",
      name_list(rownames(B)[rowSums(unident) > 0]))
  } else extra <- NULL
  warn_na_se(what, sep & !unident, extra)
  mom <- post_resample_moments(out$Bs, d, scale)
  na <- sep | unident
  mom$var[na] <- NA_real_
  mom$blocks <- na_blocks(mom$blocks, na)
  mean_dev <- out$dev_sum / R
  var_Omega <- scale * (out$dev_sq - R * mean_dev * mean_dev)
  dimnames(mom$mean) <- dimnames(mom$var) <- dimnames(B)
  dimnames(var_Omega) <- dimnames(Omega)
  list(var_B = mom$var, vcov_B = name_blocks(mom$blocks, B), var_Omega = var_Omega,
       mean_B = mom$mean, mean_Omega = Omega + mean_dev, refits = R,
       steps = out$steps, status = table(status), batch = out$batch,
       seconds = proc.time()[["elapsed"]] - t0)
}

## config_post$batch resolved for this fit: 0 (one engine call per refit, on the fit's backend)
## or the refits per engine call (0 passed on to the engine: as many as its memory budget allows,
## coded here as NA). "auto": .refit_batch_auto by device where the batched model applies (lbfgs,
## covariance "full"), else 0; a number > 0 where it does not is an error.
resolve_refit_batch <- function(control) {
  batch <- control$config_post$batch
  if (is.null(batch)) batch <- "auto"
  ok <- identical(control$optimizer, "lbfgs") && identical(control$covariance, "full")
  if (identical(batch, "auto")) {
    if (!ok) return(0L)
    return(.refit_batch_auto[[if (startsWith(control$device, "cuda")) "cuda" else "cpu"]])
  }
  if (batch > 0L && !ok)
    stop_arg(sprintf(paste0(
      "`config_post$batch` = %d: batched refits need optimizer \"lbfgs\" and covariance ",
      "\"full\" (this fit: \"%s\", \"%s\"); use batch = 0 or \"auto\"."),
      batch, control$optimizer, control$covariance))
  batch
}

## One engine call per refit, on the rows it keeps, with the fit's backend.
refit_sequential <- function(fit, dat, control, resamples, what) {
  B <- fit$model_par$B; Omega <- fit$model_par$Omega
  R <- length(resamples)
  Bs <- matrix(0, length(B), R)
  dev_sum <- dev_sq <- matrix(0, nrow(Omega), ncol(Omega))
  ctrl <- control
  ctrl$config_post <- check_config_post(list())
  ctrl$trace <- 0L
  status <- character(R)
  steps <- integer(R)
  start_M <- as_double_matrix(fit$latent_pos); start_S <- as_double_matrix(fit$var_par$S)
  for (r in seq_len(R)) {
    rows <- resamples[[r]]$rows
    ## a rank-deficient design: the columns its QR keeps (the others' coefficients are NA)
    keep <- if (is.null(resamples[[r]]$design)) seq_len(nrow(B)) else resamples[[r]]$design$keep
    d_r <- list(Y = dat$Y[rows, , drop = FALSE], O = dat$O[rows, , drop = FALSE],
                X = dat$X[rows, keep, drop = FALSE], w = resamples[[r]]$w,
                names = list(samples = dat$names$samples[rows], species = dat$names$species,
                             covariates = dat$names$covariates[keep]))
    ctrl$init <- list(B = as_double_matrix(B[keep, , drop = FALSE]),
                      M = start_M[rows, , drop = FALSE], S = start_S[rows, , drop = FALSE])
    res <- tryCatch(fit_pln_engine(d_r, ctrl), error = function(e)
      stop_arg(sprintf("the %s refit %d of %d failed: %s", what, r, R, conditionMessage(e))))
    B_r <- matrix(NA_real_, nrow(B), ncol(B))
    B_r[keep, ] <- res$B
    Bs[, r] <- B_r
    dev <- res$Omega - Omega
    dev_sum <- dev_sum + dev
    dev_sq <- dev_sq + dev * dev
    status[r] <- res$status
    steps[r] <- res$steps
  }
  list(Bs = Bs, dev_sum = dev_sum, dev_sq = dev_sq, status = status, steps = steps, batch = 0L)
}

## The refits `batch` at a time (NA: as many as fit in memory) in one engine call each
## (src/engine/models/pln/refit.cpp): every refit holds all n rows, with weight 0 on those it leaves out.
## Weights scaled per refit as fit_pln_engine() does (a power of two, exact).
refit_batched <- function(fit, dat, control, resamples, what, batch) {
  n <- nrow(dat$Y); R <- length(resamples)
  W <- matrix(0, n, R)
  for (r in seq_len(R)) {
    w <- resamples[[r]]$w
    scale <- 2^round(log2(mean(w)))
    if (!is.finite(scale) || scale <= 0) scale <- 1
    W[resamples[[r]]$rows, r] <- w / scale
  }
  ctrl <- resolve_control(control)
  res <- tryCatch(
    pln_refit_engine(dat$Y, dat$O, dat$X, W, as_double_matrix(fit$model_par$B),
                     as_double_matrix(fit$latent_pos), as_double_matrix(fit$var_par$S),
                     as_double_matrix(fit$model_par$Omega), ctrl,
                     if (is.na(batch)) 0 else as.double(batch)),
    error = function(e) stop_arg(sprintf("the %s refits failed: %s", what, conditionMessage(e))))
  list(Bs = res$B, dev_sum = res$Omega_dev_sum, dev_sq = res$Omega_dev_sq,
       status = res$status, steps = as.integer(res$steps), batch = as.integer(res$batch))
}

## d x d x p blocks with the rows and columns of the NA coefficients (d x p logical) set to NA.
na_blocks <- function(blocks, na) {
  for (j in which(colSums(na) > 0)) {
    k <- which(na[, j])
    blocks[k, , j] <- NA_real_
    blocks[, k, j] <- NA_real_
  }
  blocks
}

## A sample's name (else its number), for messages.
sample_label <- function(dat, i) {
  nm <- dat$names$samples
  if (!is.null(nm) && length(nm) >= i && !is.na(nm[i]) && nzchar(nm[i])) sprintf("'%s'", nm[i])
  else as.character(i)
}

name_blocks <- function(blocks, B) {
  dimnames(blocks) <- list(rownames(B), rownames(B), colnames(B))
  blocks
}

## Names of vec(B), species-major as PLNmodels: "species_covariate".
vec_names <- function(B) {
  paste(rep(colnames(B), each = nrow(B)), rep(rownames(B), ncol(B)), sep = "_")
}
