#' Fit a Poisson log-normal model
#'
#' Fits the PLN model by maximising its variational lower bound (ELBO) with the
#' LibTorch engine, with a full covariance of the latent layer or one of
#' PLNmodels' other structures (`PLN_param(covariance = )`). The interface, the
#' fit object and the reported log-likelihood follow 'PLNmodels', so that
#' results compare and most code ports by changing `library()`.
#'
#' @param formula a formula `Y ~ covariates`, where `Y` is a count matrix
#'   (samples in rows, species in columns), usually a matrix column of `data`.
#'   Offsets, on the log scale, are given by `offset()` terms (summed when there
#'   are several; a matrix such as `offset(log(Offset))` or a vector, one value
#'   per sample). Covariates enter through [model.matrix()]: factors and
#'   interactions work as in [lm()]. As in [lm()], variables may be written
#'   `df$x` (then `data` may be left out), and `.` stands for every column of
#'   `data` but the response (matrix columns, such as `oaks$Offset`, must then
#'   be left out: `Abundance ~ . - Offset`).
#' @param data a data frame holding the variables of `formula` (as [oaks]).
#' @param subset an optional vector selecting the samples (rows) to fit,
#'   evaluated within `data` as in [lm()]: a logical vector (one value per
#'   sample, no `NA`), row numbers (all positive, or all negative to drop
#'   rows) or row names of `data`.
#' @param weights an optional vector of positive observation weights (default
#'   1 for every sample): each sample's contribution to the ELBO is weighted.
#'   Only their ratios matter: multiplying every weight by one number gives
#'   the same fit (the engine works on weights scaled to a mean near 1, so
#'   that Adam's steps do not depend on their scale either).
#' @param control the engine and optimiser settings, see [PLN_param()]: the
#'   result of [PLN_param()] or a named list of its arguments.
#'
#' @details Missing values are not dropped: an `NA` in the counts, offsets,
#'   covariates or weights is an error. The fit reports PLNmodels'
#'   variational log-likelihood `loglik = sum(w * loglik_vec)`,
#'   `BIC = loglik - log(n) nb_param / 2` and `ICL = BIC - entropy`, with
#'   `nb_param = p d` plus the covariance's parameters.
#'
#' @section Covariance structures:
#' `PLN_param(covariance = )` chooses Sigma, the covariance of the latent
#' layer, as in PLNmodels; each is fitted in closed form at every step of the
#' optimiser, and counts its parameters in `nb_param` as PLNmodels does:
#' * `"full"` (default): any positive definite Sigma, `p (p + 1) / 2`;
#' * `"diagonal"`: independent species, `p`;
#' * `"spherical"`: `sigma2 I`, one parameter;
#' * `"fixed"`: Omega = Sigma^-1 given (`PLN_param(Omega = )`), none; the fit
#'   reports as `Sigma` the covariance of its variational parameters, as
#'   PLNmodels does, and the given Omega;
#' * `"genpop"`: `Sigma = sigma2 (rho C + (1 - rho) I)` with a given
#'   correlation matrix C (`PLN_param(C = )`, e.g. a genetic relationship
#'   matrix) and sigma2, rho estimated (two parameters, in `fit$gen_par`;
#'   rho in (0, 1)).
#'
#' The diagonal and spherical structures need no p x p algebra: their fits
#' cost a few passes over the data per step.
#'
#' @section Input checks:
#' The data are checked in R, before anything reaches the engine, by the same
#' code for `PLN()` and [PLNtorch]; each error names the argument to change.
#'
#' *Errors*:
#' * counts that are `NA`/`NaN`, infinite, negative, non-integer, non-numeric
#'   (character, logical, factor columns), not a matrix (a list, a 3-d array),
#'   with no row or no column, or all zero;
#' * offsets or covariates that are non-finite (an offset `log(0)`), of the
#'   wrong dimensions (offsets: n x p, length n or a single number for
#'   [PLNtorch]; in a formula a length-n vector or an n x p matrix), or
#'   non-numeric;
#' * collinear covariates (a model matrix of rank below its number of
#'   columns): the error names the aliased columns, those [lm()] would report
#'   as `NA`; their coefficients would not be identified, so drop them;
#' * weights that are negative, zero, non-finite or not of length n. Zero
#'   weights are refused rather than dropped silently (a sample of weight
#'   zero has no curvature for `"lbfgs"` to scale by): remove those samples
#'   with `subset`;
#' * unknown `backend`, `optimizer`, `dtype` or `device`; a backend or device
#'   that this build lacks; `lr` not a positive finite number; `maxit` not a
#'   whole number >= 1; `tol` outside \[0, 0.1\]; a `control` list with an
#'   element that has no name, an unknown name or a name given twice;
#' * starting values in `init` that are not finite numeric matrices of the
#'   right dimensions, an `S` with zeros, or values where the ELBO is not
#'   finite (`exp()` overflows, or `S^2` underflows to zero): the error names
#'   `init`, for every backend, dtype and optimiser;
#' * a formula naming a variable found neither in `data` nor in the formula's
#'   environment; a `.` without `data`, or one that would take matrix columns
#'   of `data` as covariates (the error names them);
#' * a `subset` with `NA`, row numbers outside `1..n` (the error gives the
#'   range), positive and negative row numbers mixed, unknown row names, a
#'   logical vector of a length other than n, a factor, or one that leaves no
#'   sample;
#' * in [predict.PLNfit_torch()] and [predict_cond()], a `newdata` without a
#'   variable of the model (one that `PLN()` found outside `data`, such as a
#'   local variable of the function that fitted, has the fitted data's rows:
#'   the error names it), and `responses` or `cond_responses` with `NA`,
#'   values that are not counts, rows other than `newdata`'s, or columns that
#'   are not species of the fit (or, for `responses`, lack some).
#'
#' *Warnings*: species (columns) whose counts are all zero: the fit runs, but
#' their coefficients drift towards -Inf with more steps; drop them for
#' meaningful estimates. Duplicated species (or sample) names: they are made
#' unique as [make.unique()] does (`sp`, `sp.1`), so that the rows and columns
#' of the results can be told apart. `num_threads` above the cores this
#' process may use: lowered to them (see [PLN_param()]).
#'
#' *Fine*: integer counts, numeric data frames and `Matrix` objects (sparse
#' or dense, made dense: the engine works on dense tensors) given to
#' [PLNtorch] or as the response of `formula` (made dense after a size check;
#' [prepare_data()] builds a data frame from a count table); samples (rows) whose counts are all zero;
#' a single species; a single sample; more species than samples (n < p).
#'
#' @section Convergence:
#' The default optimiser, `"lbfgs"` (see [PLN_param()]), accepts a step only
#' when it increases the ELBO, so `optim_par$objective` (the ELBO at the start
#' and after each step) rises at every step, and the fit ends in one of these
#' states, `optim_par$status`:
#' * `"converged"`: the relative gain of the last step and the relative gain
#'   predicted for the next one are both below `tol`: the gradient vanishes
#'   to that precision;
#' * `"maxit"`: `maxit` steps ran out first; a warning gives the last relative
#'   change and the predicted one (not with `tol = 0`, which asks for all
#'   `maxit` steps);
#' * `"stalled"`: no step increases the ELBO in the precision of `dtype`
#'   though a larger gain was predicted, or the gradient or the curvature is
#'   not finite where the ELBO is (then no direction exists); a warning says
#'   so (float32 fits of large data sets may end so: `dtype = "float64"`
#'   resolves them).
#'
#' `"converged"` is earned: the ELBO, its gradient and the predicted gain are
#' finite at the final point (a `NaN` or `Inf` anywhere is never
#' `"converged"`), and a float32 fit converges at float32's precision of the
#' ELBO (a relative 1e-6, the default `tol` for float32), not short of it.
#'
#' *Starting values* given in `init` (or a [PLNtorch] object's fields) are
#' checked before the fit: where the ELBO is not finite there, or lies more
#' than 1000 units below the ELBO of the package's own start (`init = "lm"`),
#' the unit being the larger of that ELBO's size and the counts' total, the fit
#' stops with an error naming `init` and both values. Such a start's expected
#' counts `exp(O + X B + M + S^2 / 2)` are on average about 1000 times the
#' counts (the ELBO falls as `-exp(k)` times the counts' total where the
#' expected counts are `exp(k)` times too large): `B = 8` on trichoptera
#' (-6.4e129 against -1.9e3) or `S = 15` (-6.2e52). Every sensible start is far
#' inside the bound: a previous fit's optimum is above the package's start, the
#' tutorial start (`B = 0`, `M = 0`, `S = 1`) is about `-sum(y log y)`, and
#' `M = -100` (every mean `exp(-100)` times too small) about -100 times the
#' counts' total. It is an error rather than a fallback to the package's start:
#' an explicit start is a choice (a fit continued, a warm start), and a fit from
#' another start can end at another optimum.
#'
#' * `"boundary"` (covariance `"diagonal"` or `"spherical"`): the
#'   structure's optimum is on its boundary, where latent variances are 0. A
#'   species whose variance `Sigma_jj` goes to 0 (with its `M - X B` and `S`)
#'   becomes a Poisson GLM of its own, and its ELBO term tends to the GLM's
#'   log-likelihood; where the GLM's maximum (same covariates, offsets and
#'   weights) is at or above the species' term at the fit, the supremum is
#'   there, not reached: the optimiser's gains vanish with the variance, and it
#'   stops where they fall below `tol`, at a point that depends on its path. The
#'   fit keeps that point, `optim_par$boundary` names the species (for
#'   `"spherical"`, every one: they share one variance) and
#'   `optim_par$boundary_gap` gives how far the loglik is below the supremum; a
#'   warning says so. For mollusk `~ site + season`, 8 species collapse, 0.003
#'   below the supremum; `tol = 1e-14` gets within 3e-4 of it, with variances
#'   of 3e-6.
#'
#' A coefficient can have no finite optimum: a species absent from every
#' sample of a level of a factor has its coefficient for that level drift to
#' `-Inf` (as in a Poisson regression), at a gain that vanishes as fast as its
#' exponential. The fit still converges, with that coefficient large and
#' negative; it means "absent", not a number to interpret.
#'
#' @section Divergence:
#' Adam and Rprop can overshoot. A fit that diverges stops with an error
#' giving the step and a remedy (a lower `lr`, or `dtype = "float64"`), never
#' with absurd or non-finite numbers: when the ELBO becomes non-finite (float32
#' overflow of `exp()`, variances collapsing to zero), when it falls more than
#' 1000 times its size below its starting value, when it passes the `tol` test
#' more than 0.1% below its start, or when the final parameters hold non-finite
#' values. A start where the ELBO is not finite (starting values given in
#' `init` out of range, offsets that overflow `exp()`) is an error that names
#' it.
#'
#' @section Memory:
#' Before any tensor is made, the fit estimates the memory it needs (at its
#' peak, in arrays of n x p numbers of `dtype`, measured: on the CPU 44 for
#' the default `"lbfgs"` with the fused backend, 56 with eager or script, 26
#' for Adam or Rprop; on a GPU 36, 48 and 18), plus its p x p matrices (Sigma,
#' Omega, their factors, the curvature's blocks: 22 doubles per entry with a
#' full covariance, 6 with a diagonal or spherical one; measured at n = 3,
#' p = 1000 to 2000), and stops with an error naming
#' that size when the device has less free (on a GPU: free memory plus
#' LibTorch's unused cache; on the CPU: available memory and swap).
#' `options(plntorch.max_memory = bytes)` sets a lower ceiling; `Inf` skips
#' the check. An allocation that still fails during the fit gives the same
#' error, with the size LibTorch tried to allocate; the fit's memory is
#' released and the device stays usable for the next fit.
#'
#' @section Interrupts and determinism:
#' Ctrl-C (SIGINT) stops a fit within about 50 ms plus one step (on a GPU, up
#' to `check_every` steps); the R session and later fits are unaffected. On the
#' CPU the same data and options give bit-identical results, run to run, with
#' a fixed number of threads. On a GPU they do too, for every backend, on the
#' same GPU model (tested on an NVIDIA H200: `tests/testthat/test-cuda.R`): the
#' fused kernels add their partial sums in a fixed order, without atomics, and
#' the cuBLAS and ATen kernels that eager and script use are deterministic
#' there. Another GPU model, or the CPU, agrees to rounding, not to the bit.
#'
#' @return A [PLNfit_torch] object, an R6 object of class `c("PLNfit_torch",
#'   "PLNfit", "R6")` (PLNmodels' `PLNfit` after plntorch's class: the S3
#'   methods of [PLNfit_torch-methods] dispatch first), with PLNmodels' methods
#'   `$update()`, `$optimize()`, `$postTreatment()`, `$predict()`,
#'   `$predict_cond()` and `$print()` (see [PLNfit_torch]), and the fields, read
#'   as `fit$name`:
#' * `n`, `p`, `d`: samples, species, covariate columns;
#' * `vcov_model`: the covariance structure; `gen_par`: for `"genpop"`, its
#'   `sigma2` and `rho` (`NULL` otherwise);
#' * `model_par`: list of `B` (d x p coefficients), `Sigma` and `Omega =
#'   solve(Sigma)` (p x p);
#' * `var_par`: list of `M` and `S2` (n x p variational means and variances
#'   of Z - O: `M` includes the covariates' effects X B, as in PLNmodels 1.3),
#'   and `S = sqrt(S2)`;
#' * `latent` (Z = O + M), `latent_pos` (M - X B: the latent positions
#'   without the covariates' effects and offsets) and `fitted`
#'   (exp(Z + S2 / 2)), n x p;
#' * `responses`: the counts Y, n x p (for [residuals.PLNfit_torch()] and
#'   [standard_error()]);
#' * `R_squared`: PLNmodels' approximate R^2, the fit's Poisson log-likelihood
#'   at Z between those of the null model (a Poisson GLM per species, same
#'   covariates and offsets, no latent layer: 0) and the saturated one (1);
#' * `loglik`, `loglik_vec` (per sample, unweighted), `nb_param`, `BIC`, `ICL`,
#'   `entropy` and `criteria` (a one-row data frame of these);
#' * `optim_par`: `steps`, `objective` (the ELBO trace: for `"lbfgs"` at
#'   the start and after each step, for Adam and Rprop before each step),
#'   `status` (`"converged"`, `"maxit"`, `"stalled"` or `"boundary"`, see
#'   "Convergence"), `boundary` (the species whose variances collapse to 0) and
#'   `boundary_gap` (how far the loglik is below the supremum there),
#'   `backend`, `device`, `dtype`, `optimizer`, `lr`, `tol`, `last_change`
#'   (the last step's relative change of the ELBO), `predicted_change` (for
#'   `"lbfgs"`, the relative gain its next step predicted), `seconds` (wall
#'   time of the optimisation loop),
#'   `setup_seconds` (data transfer, start, compilation), `threads`;
#' * `call`, `formula`, `terms`, `xlevels`, `contrasts`, `weights`;
#' * `covariates`: the model matrix X (unnamed), for the standard errors
#'   computed on demand ([standard_error()]);
#' * `uncertainty`: the post-treatments asked for by `PLN_param(config_post = )`
#'   (see [standard_error()]), one list per type with `var_B` (d x p),
#'   `vcov_B`, `var_Omega`, `seconds` and, for the jackknife, `bias_B` and
#'   `bias_Omega`.
#'
#' Row and column names come from the data: samples, species (columns of the
#' response) and covariates (columns of the model matrix). The object is a
#' reference: `fit2 <- fit` does not copy it (`fit$clone()` does).
#'
#' @seealso [PLN_param()], [coef.PLNfit_torch()], [predict.PLNfit_torch()],
#'   [PLNtorch] for the tutorial's object style.
#' @export
#' @examples
#' ## the default control runs to convergence
#' fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
#' fit
#' fit$loglik
#' coef(fit)[, 1:5]
#'
#' ## factors, subset and weights as in lm()
#' fit_tree <- PLN(Abundance ~ tree + offset(log(Offset)), data = oaks,
#'                 subset = orientation == "SW")
#' rownames(coef(fit_tree))
PLN <- function(formula, data, subset, weights, control = PLN_param()) {
  call <- match.call()
  caller <- parent.frame()
  if (missing(formula)) stop_arg("`formula` is missing.")
  check_formula(formula)
  control <- as_pln_param(control)

  md <- model_data(call, caller, formula, if (missing(data)) NULL else data)
  dat <- md$dat

  if (is.list(control$init)) control$init <- residual_start(control$init, dat)
  check_post_n(control$config_post, nrow(dat$Y), ncol(dat$X))  # before fitting: no fit is lost
  fit_engine <- fit_pln_engine(dat, control)
  warn_not_converged(fit_engine)
  fit <- new_PLNfit_torch(fit_engine, dat,
                          call = call, formula = formula,
                          terms = md$terms,
                          xlevels = stats::.getXlevels(md$terms, md$frame),
                          contrasts = attr(md$X, "contrasts"),
                          weights = stats::model.weights(md$frame),
                          covariates = structure(dat$X, assign = attr(md$X, "assign")),
                          control = control)
  post_treatment(fit, dat, control)
}

check_formula <- function(formula) {
  if (!inherits(formula, "formula") || length(formula) != 3L)
    stop_arg("`formula` must be a two-sided formula such as ",
             "Abundance ~ 1 + offset(log(Offset)); got ", describe_value(formula), ".")
  invisible(formula)
}

## The checked data of a formula call (PLN(), PLNPCA()): the model frame is built by
## stats::model.frame() in the caller's frame, as lm() does, so `subset` and `weights` are
## evaluated within `data`. With `sparse_ok`, a response that is a sparse matrix (which a model
## frame cannot hold) stays sparse: `dat$csr` holds it as CSR (check_sparse_data()).
model_data <- function(call, caller, formula, data, sparse_ok = FALSE) {
  Ysp <- NULL
  if (sparse_ok) {
    ## sparse counts stand in the frame as their row numbers
    yv <- tryCatch(eval(formula[[2L]], if (is.null(data)) environment(formula) else data,
                        environment(formula)), error = function(e) NULL)
    if (inherits(yv, "sparseMatrix")) {
      Ysp <- yv
      env <- new.env(parent = if (is.null(environment(formula))) caller else environment(formula))
      env$.plntorch_row <- seq_len(nrow(yv))
      response_label <- deparse1(formula[[2L]])
      formula[[2L]] <- quote(.plntorch_row)
      environment(formula) <- env
    }
  }
  mf <- call[c(1L, match(c("formula", "data", "subset", "weights"), names(call), 0L))]
  mf[[1L]] <- quote(stats::model.frame)
  mf$formula <- dense_response(formula, if (missing(data)) NULL else data) # a Matrix made dense
  mf$drop.unused.levels <- TRUE
  mf$na.action <- quote(stats::na.pass) # NA is reported by check_pln_data(), not dropped
  check_formula_vars(formula, data)
  build_frame <- function(mf) tryCatch(eval(mf, caller), error = function(e)
    stop_arg("could not build the model frame of `formula`: ", conditionMessage(e),
             if (grepl("invalid type \\(list\\)", conditionMessage(e)))
               " (the response must be a count matrix: as.matrix() a data frame)"))
  if (!is.null(mf$subset)) {
    ## `subset` evaluated as model.frame() does (within `data`, then the formula's environment)
    ## and checked against the rows it selects from
    all_rows <- build_frame(mf[names(mf) != "subset"])
    sub <- tryCatch(eval(mf$subset, if (is.null(data)) environment(formula) else data,
                         environment(formula)),
                    error = function(e) stop_arg("`subset` could not be evaluated: ", conditionMessage(e)))
    mf$subset <- check_subset(sub, nrow(all_rows), rownames(all_rows))
  }
  frame <- build_frame(mf)
  terms <- attr(frame, "terms")

  response <- deparse1(formula[[2L]])
  Y <- stats::model.response(frame)
  ## model.response() drops a one-column matrix to a vector, and its column name with it
  if (is.matrix(frame[[1L]]) && ncol(frame[[1L]]) == 1L && !is.null(colnames(frame[[1L]])))
    Y <- matrix(Y, ncol = 1L, dimnames = list(rownames(frame), colnames(frame[[1L]])))
  if (!is.null(Ysp)) {
    X <- tryCatch(stats::model.matrix(terms, frame), error = function(e)
      stop_arg("could not build the model matrix of `formula`: ", conditionMessage(e)))
    dat <- check_sparse_data(
      Ysp[Y, , drop = FALSE], O = formula_offset(frame, terms), X = X,
      w = stats::model.weights(frame),
      labels = c(Y = sprintf("the response `%s`", response_label), O = "the offset",
                 X = "the model matrix of `formula`", w = "`weights`"))
    return(list(dat = dat, terms = terms, frame = frame, X = X))
  }
  if (is.null(dim(Y))) {
    Y <- matrix(Y, ncol = 1L, dimnames = list(rownames(frame), response))
  } else {
    Y <- unclass(Y)
    ## the frame's row names are unique (a data frame's); a matrix's may not be (rows repeated)
    if (is.null(rownames(Y)) || anyDuplicated(rownames(Y))) rownames(Y) <- rownames(frame)
  }
  if (!is.numeric(Y))
    stop_arg(sprintf("the response `%s` must be a numeric count matrix; got a %s.",
                     response, describe_type(Y)))
  X <- tryCatch(stats::model.matrix(terms, frame), error = function(e)
    stop_arg("could not build the model matrix of `formula`: ", conditionMessage(e)))
  dat <- check_pln_data(
    Y = Y, O = formula_offset(frame, terms), X = X, w = stats::model.weights(frame),
    labels = c(Y = sprintf("the response `%s`", response), O = "the offset",
               X = "the model matrix of `formula`", w = "`weights`"))
  dat$n <- nrow(dat$Y)
  dat$p <- ncol(dat$Y)
  list(dat = dat, terms = terms, frame = frame, X = X)
}

## The offset of a model frame: model.offset() sums the offset() terms with `+`, which fails on a
## character offset ("non-numeric argument to binary operator") without naming it.
formula_offset <- function(frame, terms) {
  at <- attr(terms, "offset")
  vars <- as.list(attr(terms, "variables"))[-1L]
  for (i in at) {
    v <- frame[[i]]
    if (!is.numeric(v))
      stop_arg(sprintf("the offset `%s` of `formula` must be numeric (log scale); got %s.",
                       deparse1(vars[[i]]), describe_value(v)))
  }
  stats::model.offset(frame)
}

## PLN()'s `init$M` is, as its fit's `var_par$M`, the whole variational mean (X B included); the
## engine starts from B and the residual M - X B. Without `init$B`, B is the weighted least squares
## of M on X, so that X B + residual is the given M.
residual_start <- function(init, dat) {
  if (is.null(init$M) || !is.matrix(init$M) || !identical(dim(init$M), dim(dat$Y))) return(init)
  if (is.null(init$B) && is.numeric(init$M) && all(is.finite(init$M))) {
    ## by QR of W^1/2 X, not the normal equations: covariates on any scale (dates in seconds)
    sw <- sqrt(dat$w)
    init$B <- qr.coef(qr(dat$X * sw), init$M * sw)
    init$B[is.na(init$B)] <- 0
  }
  if (identical(dim(init$B), c(ncol(dat$X), ncol(dat$Y)))) init$M <- init$M - dat$X %*% init$B
  init
}

## Checked data + checked control -> named engine result. `init_arg` names the starting values
## in errors (PLNtorch passes its fields).
fit_pln_engine <- function(dat, control, init_arg = "init") {
  ctrl <- resolve_control(control)
  check_structure_dims(control, ncol(dat$Y))
  start <- if (is.list(control$init))
    check_start(control$init, nrow(dat$Y), ncol(dat$Y), ncol(dat$X), arg = init_arg) else list()
  ## The optimum does not change when every weight is multiplied by one number (the ELBO is
  ## multiplied by it), but Adam's step does: its eps (1e-8) swamps gradients of weights near
  ## 1e-12, and it stalls. The engine gets weights of mean ~1, scaled by a power of two (exact in
  ## floating point), and the ELBO trace is scaled back.
  scale <- 2^round(log2(mean(dat$w)))
  if (!is.finite(scale) || scale <= 0) scale <- 1  # weights near the ends of the double range
  dat_engine <- dat
  dat_engine$w <- dat$w / scale
  res <- engine_fit(dat_engine, ctrl, start, structure = control[c("Omega", "C")])
  res$objective <- res$objective * scale
  ## lbfgs accepts only steps that increase the ELBO: a trace that does not rise is a defect of the
  ## engine, never a result to hand out
  if (identical(res$optimizer, "lbfgs") && any(diff(res$objective) <= 0))
    stop(sprintf("internal error: the ELBO of the lbfgs fit did not rise at step %d; please report it.",
                 which(diff(res$objective) <= 0)[1L]), call. = FALSE)
  res$lr <- ctrl$lr
  res$tol <- ctrl$tol
  res$covariance <- ctrl$covariance
  res <- name_engine_result(res, dat$names)
  check_boundary(res, dat)
}

## Variances that collapse. In the diagonal structure the species are independent, and a species'
## ELBO term tends, as its variance Sigma_jj -> 0 (M_res -> 0, S2 -> 0), to its Poisson GLM
## log-likelihood: the structure's supremum for that species is on the boundary wherever the
## GLM's maximum (same covariates, offsets and weights, no latent layer) is at or above the
## species' term at the fit. The optimiser approaches it without reaching it (the gain of each
## step vanishes with the variance itself), and stops where its steps gain less than tol, at a
## point that depends on the path (mollusk ~ site + season: the three backends 4e-3 apart, with
## variances 5e-5 to 4e-4). In the spherical structure, one variance for every species, the same
## holds for the sum over species. Such a fit is not "converged": its status is "boundary", the
## species are in `boundary`, and `boundary_gap` is how far the loglik is below the supremum (the
## sum of the GLMs' maxima less the species' terms). The other structures are left as they are.
check_boundary <- function(res, dat) {
  res$boundary <- character(0)
  res$boundary_gap <- 0
  if (!res$covariance %in% c("diagonal", "spherical") || !identical(res$status, "converged"))
    return(res)
  Y <- dat$Y; X <- dat$X; O <- dat$O; w <- dat$w
  if (is.null(Y)) return(res)
  p <- ncol(Y)
  if (ncol(O) == 1L && p > 1L) O <- matrix(O, nrow(Y), p)
  ## the terms of each species that differ between the fit and the GLM (log(y!) cancels)
  Z <- O + X %*% res$B + res$M
  S2 <- res$S^2
  sig <- diag(res$Sigma)
  term <- colSums(w * (Y * Z - exp(Z + S2 / 2) + 0.5 * log(S2))) - 0.5 * sum(w) * log(sig)
  glm_max <- vapply(seq_len(p), function(j) {
    g <- suppressWarnings(stats::glm.fit(X, Y[, j], weights = w, offset = O[, j],
                                         family = stats::poisson()))
    eta <- X %*% ifelse(is.na(g$coefficients), 0, g$coefficients) + O[, j]
    sum(w * (Y[, j] * eta - exp(eta)))
  }, numeric(1))
  on_boundary <- if (res$covariance == "diagonal") glm_max >= term
                 else rep(sum(glm_max) >= sum(term), p)
  if (!any(on_boundary)) return(res)
  res$status <- "boundary"
  res$boundary <- colnames(res$B)[on_boundary]
  if (is.null(res$boundary)) res$boundary <- as.character(which(on_boundary))
  res$boundary_gap <- sum(glm_max[on_boundary] - term[on_boundary])
  res
}

## A fit that did not reach a stationary point says so, with what is left (not when tol = 0
## asked for a fixed number of steps).
warn_not_converged <- function(res) {
  change <- function(x) if (is.finite(x)) format(signif(x, 2)) else "NA"
  if (identical(res$status, "maxit") && res$tol > 0)
    warning(sprintf(paste0(
      "the fit stopped at maxit = %d steps before converging: the ELBO's last relative change ",
      "was %s%s (tol = %s); raise `maxit` in PLN_param(), or continue from this fit with ",
      "init = list(B = coef(fit), M = fit$var_par$M, S = fit$var_par$S)."),
      res$steps, change(res$last_change),
      if (is.finite(res$predicted_change))
        sprintf(" and the next step's predicted one %s", change(res$predicted_change)) else "",
      format(res$tol)), call. = FALSE)
  else if (identical(res$status, "boundary"))
    warning(sprintf(paste0(
      "the %s covariance's optimum is on its boundary: the latent variance of %s collapses to 0 ",
      "(%s best without latent noise: a Poisson GLM), which the fit approaches without reaching; ",
      "it stopped after %d steps %s below that supremum (optim_par$boundary names the species)."),
      res$covariance,
      if (res$covariance == "spherical") "every species" else
        sprintf("species %s", name_list(res$boundary, 6L)),
      if (length(res$boundary) == 1L) "it is" else "they are",
      res$steps, format(signif(res$boundary_gap, 2))), call. = FALSE)
  else if (identical(res$status, "stalled") && !is.finite(res$predicted_change))
    warning(sprintf(paste0(
      "the fit stopped at step %d: the gradient or the curvature of the ELBO is not finite there ",
      "(exp() overflows in %s), so no step direction exists; the result is not an optimum%s."),
      res$steps, res$dtype,
      if (identical(res$dtype, "float32")) " (dtype = \"float64\" may resolve it)" else ""),
      call. = FALSE)
  else if (identical(res$status, "stalled") && res$tol > 0)
    warning(sprintf(paste0(
      "the fit stopped at step %d: no step along its direction increases the ELBO in %s, ",
      "though a relative gain of %s was predicted; the result is at the limit of that ",
      "precision%s."),
      res$steps, res$dtype, change(res$predicted_change),
      if (identical(res$dtype, "float32")) " (dtype = \"float64\" resolves it)" else ""),
      call. = FALSE)
  invisible(res)
}

## Parameters of Sigma by covariance structure, as PLNmodels counts them.
covariance_params <- function(covariance, p) {
  switch(covariance, full = p * (p + 1) / 2, diagonal = p, spherical = 1, fixed = 0, genpop = 2)
}

## Builds the fit object (a PLNfit_torch R6 object, R/fit-base.R) from a named engine result (see
## PLN()'s Value). `control`: the PLN_param() of the fit, kept for $optimize() and $postTreatment().
new_PLNfit_torch <- function(res, dat, ..., control = NULL) {
  if (!is.null(control) && is.list(control$init)) control$init <- "lm"
  PLNfit_torch$new(pln_fit_fields(res, dat, ..., rsquared = control$config_post$rsquared),
                   offsets = dat$O, w = dat$w, control = control)
}

## The fields of a PLN fit, as a list. `rsquared`: FALSE leaves R_squared NA
## (config_post$rsquared); R^2 never errors (safe_rsquared()).
pln_fit_fields <- function(res, dat, ..., rsquared = TRUE) {
  n <- nrow(dat$Y); p <- ncol(dat$Y); d <- ncol(dat$X)
  B <- res$B; M <- res$M; S2 <- res$S^2
  M_full <- dat$X %*% B + M
  dimnames(M_full) <- dimnames(M)
  latent <- dat$O + M_full
  fitted <- exp(latent + S2 / 2)
  f <- list(
    n = n, p = p, d = d,
    model_par = list(B = B, Sigma = res$Sigma, Omega = res$Omega),
    vcov_model = res$covariance,
    gen_par = if (identical(res$covariance, "genpop"))
      list(sigma2 = res$cov_par[["sigma2"]], rho = res$cov_par[["rho"]]),
    var_par = list(M = M_full, S2 = S2, S = abs(res$S)), # J depends on S^2 only
    latent = latent, latent_pos = M, fitted = fitted,
    responses = `dimnames<-`(dat$Y, dimnames(M)), R_squared = safe_rsquared(latent, dat, rsquared),
    loglik = NULL, loglik_vec = res$loglik_vec,
    nb_param = p * d + covariance_params(res$covariance, p),
    BIC = NULL, ICL = NULL, entropy = NULL, criteria = NULL,
    optim_par = list(steps = res$steps, objective = res$objective, status = res$status,
                     backend = res$backend, device = res$device, dtype = res$dtype,
                     optimizer = res$optimizer, lr = res$lr, tol = res$tol,
                     last_change = res$last_change, predicted_change = res$predicted_change,
                     boundary = res$boundary, boundary_gap = res$boundary_gap,
                     seconds = res$seconds,
                     setup_seconds = res$setup_seconds, threads = res$threads),
    ...
  )
  cr <- fit_criteria(f, dat$w)
  f[names(cr)] <- cr
  f
}

## Every variable of `formula` must be a column of `data` or visible from the formula's
## environment; model.frame() would say "object 'x' not found" without naming the formula.
## `.` stands, as in lm(), for every column of `data` but the response's; matrix columns
## (oaks$Offset) cannot be covariates there.
check_formula_vars <- function(formula, data) {
  if (!is.null(data) && !is.data.frame(data) && !is.list(data) && !is.environment(data))
    stop_arg("`data` must be a data frame; got ", describe_value(data), ".")
  vars <- formula_vars(formula)
  if ("." %in% vars) check_formula_dot(formula, data)
  vars <- setdiff(vars, ".")
  env <- environment(formula)
  if (is.null(env)) env <- parent.frame(2L)
  found <- vapply(vars, function(v)
    (!is.null(data) && !is.environment(data) && v %in% names(data)) ||
      (is.environment(data) && exists(v, envir = data)) ||
      exists(v, envir = env), logical(1))
  if (!all(found))
    stop_arg(sprintf("`formula` names variable(s) found neither in `data` nor in the formula's environment: %s.",
                     paste(vars[!found], collapse = ", ")))
  invisible(TRUE)
}

check_formula_dot <- function(formula, data) {
  if (!is.data.frame(data))
    stop_arg("`formula` uses `.`, which stands for the columns of `data`, but `data` is ",
             if (is.null(data)) "missing" else "not a data frame",
             ": name the covariates, or give `data`.")
  response <- formula_vars(formula[[2L]])
  labels <- tryCatch(attr(stats::terms(formula, data = data), "term.labels"),
                     error = function(e) stop_arg("`formula` could not be expanded: ", conditionMessage(e)))
  is_matrix <- vapply(data, function(v) length(dim(v)) == 2L, logical(1))
  bad <- intersect(setdiff(names(data)[is_matrix], response), labels)
  if (length(bad))
    stop_arg(sprintf(paste0(
      "`formula` uses `.`, which stands for every column of `data` but the response, and `data` ",
      "has the matrix column(s) %s, which cannot be covariates: leave them out (%s ~ . - %s) or ",
      "name the covariates."),
      name_list(bad, 5L), deparse1(formula[[2L]]), paste(bad, collapse = " - ")))
  invisible(TRUE)
}
