## Defaults of the fitting interface, in one file: the literal ones are the formals of
## PLN_param() below; the ones that depend on the build, the device or the optimiser
## (arguments left NULL) are resolved from this list by resolve_control(). Tune here.
.pln_defaults <- list(
  backend_preference = c("fused", "script", "eager"), # backend = NULL: first one built
  dtype       = "float64",                             # dtype = NULL
  lr          = c(lbfgs = 1, adam = 0.01, rprop = 0.05), # lr = NULL: by optimizer (lbfgs: unused)
  ## tol = NULL: by optimizer, and for lbfgs by dtype (float32 resolves relative changes of ~1e-7).
  ## lbfgs, float64: on the validation sets 1e-8 ends within 0.02 of the log-likelihood at 1e-9
  ## (inst/bench/NOTES-optimiser.md) in 15-60% fewer steps; PLNmodels stops at 1e-8 too.
  tol         = list(lbfgs = c(float64 = 1e-8, float32 = 1e-6), adam = 1e-10, rprop = 1e-10),
  check_every = 0L,                                   # NULL -> 0: the engine's default
  num_threads = 0L                                    # NULL -> 0: leave LibTorch's setting
)

.pln_choices <- list(
  backend   = c("eager", "script", "fused"),
  dtype     = c("float64", "float32"),
  optimizer = c("lbfgs", "adam", "rprop"),
  covariance = c("full", "diagonal", "spherical", "fixed", "genpop"),
  init      = c("lm", "tutorial")
)

#' Control parameters of [PLN()]
#'
#' Chooses the engine (backend, device, precision), the optimiser and the
#' stopping rule used to maximise the ELBO. Every argument is checked here, so a
#' mistake is reported before any data reaches the engine. Whether the chosen
#' backend and device exist in this build is checked when fitting (see
#' [pln_backends()]).
#'
#' @param backend `NULL` (the default: the fastest backend of this build, the
#'   first available of `"fused"`, `"script"`, `"eager"`) or one of
#'   * `"eager"`: LibTorch operations with autograd, one at a time;
#'   * `"script"`: the same objective compiled by TorchScript;
#'   * `"fused"`: analytic gradients without autograd.
#' @param device `"cpu"` (default), `"cuda"` or `"cuda:N"` (the N-th GPU).
#' @param dtype `NULL` (the default: `"float64"`), `"float64"` or `"float32"`.
#'   float32 halves the memory of a fit (a GPU holds twice the data) at the
#'   price of precision: its ELBO is resolved to a relative ~1e-7, a few
#'   log-likelihood units on large data sets, enough to move a comparison of
#'   models by BIC.
#' @param optimizer `"lbfgs"` (default), `"adam"` (PyTorch's Adam) or `"rprop"`
#'   (PyTorch's Rprop). `"lbfgs"` maximises the ELBO with B and Omega in closed
#'   form at every point (B the weighted least squares of the variational
#'   means on X, Omega the inverse of their covariance), over the variational
#'   means and log-variances, by a limited-memory quasi-Newton method (L-BFGS,
#'   5 pairs) whose initial inverse Hessian is the model's own curvature (per
#'   entry a 2 x 2 Newton block in the mean and log-variance, per species the
#'   Newton step of its coefficients), with a backtracking line search on the
#'   ELBO itself: every step it accepts increases the ELBO, and it stops at a
#'   stationary point (see `tol`). Every backend runs it (the autograd backends
#'   take its gradient from autograd). Adam and Rprop are the first-order rules
#'   of the torch tutorials: they need thousands of steps, and their ELBO need
#'   not rise at every step.
#' @param lr learning rate (Rprop: initial step size), a positive number; `NULL`
#'   (default) takes 0.05 for Rprop and 0.01 for Adam. `"lbfgs"` has none (its
#'   line search sets the step) and ignores it.
#' @param maxit maximum number of optimisation steps (default 10000). A fit
#'   that reaches it warns, giving the ELBO's last relative change.
#' @param tol convergence tolerance, a number in \[0, 0.1\]; `0` never stops
#'   early. `"lbfgs"` stops when both the relative gain of its last step and
#'   the gain its next step predicts (the slope along its direction, relative to
#'   the ELBO, which bounds the remaining gain near the optimum) fall below
#'   `tol`: a point where the gradient vanishes to that precision. `NULL`
#'   (default) takes 1e-8 for `"lbfgs"` in float64 (1e-6 in float32) and 1e-10
#'   for the first-order rules, which stop when the relative change of the ELBO
#'   between two steps falls below it (a weaker test: their steps can be small
#'   long before the optimum).
#' @param init starting point: `"lm"` (default; B by weighted least squares of
#'   `log(1 + Y) - O` on X, M = log(1 + Y) - O, S = 1 / sqrt(1 + Y)),
#'   `"tutorial"` (B = 0, M = 0, S = 1, the PyTorch tutorial's start; the
#'   torch-for-R tutorial's, B = -8, is set as [PLNtorch] shows), or a list
#'   with some of the matrices `B` (d x p), `M` and `S` (n x p, S non-zero) of
#'   a fit to continue from: `M` the variational means with X B included, as a
#'   fit's `var_par$M` (B then defaults to its least squares on X); the ones left
#'   out start as with `"lm"`.
#' @param check_every Adam and Rprop: check convergence every `check_every`
#'   steps (on a GPU each check copies the ELBO trace back, a host sync); `NULL`
#'   (default) leaves the choice to the engine (1 on the CPU, 100 on a GPU).
#'   `"lbfgs"` checks at every step: its line search reads the ELBO anyway.
#' @param num_threads number of CPU threads LibTorch may use, a whole number
#'   from 1 on; `NULL` (default) leaves LibTorch's setting unchanged (`0` is
#'   an error: write `NULL`). A number above the cores this process
#'   may use (its CPU affinity, see `parallel::mcaffinity()`) is lowered to
#'   that number with a warning when fitting: more threads only take turns on
#'   the same cores (256 threads on 2 cores made steps 300 times slower), and
#'   each costs memory.
#' @param trace verbosity of the engine, `0` (silent, default) or `1` (the
#'   ELBO as the fit goes); `FALSE` and `TRUE` are the same. Any other value is
#'   an error.
#' @param covariance the structure of the latent covariance Sigma: `"full"`
#'   (default), `"diagonal"`, `"spherical"`, `"fixed"` or `"genpop"`, as in
#'   PLNmodels (see [PLN()], section "Covariance structures").
#' @param Omega for `covariance = "fixed"` only, and then required: the p x p
#'   precision matrix Omega = Sigma^-1 (symmetric, positive definite).
#' @param C for `covariance = "genpop"` only, and then required: a p x p
#'   correlation matrix (ones on the diagonal), e.g. a genetic relationship
#'   matrix; `Sigma = sigma2 (rho C + (1 - rho) I)`.
#' @param config_post the post-treatments run after the fit, as PLNmodels names
#'   them: a list with some of `variational_var` (default `FALSE`),
#'   `sandwich_var` (`FALSE`), `jackknife` (`FALSE`), `bootstrap` (`0`, the
#'   number of bootstrap refits) and `rsquared` (`TRUE`, accepted for
#'   PLNmodels' code; no post-treatment of this package reads it); see
#'   [standard_error()]. One more entry of this package, `batch`, says how the
#'   jackknife's and the bootstrap's refits run on the engine: a positive whole
#'   number solves that many refits together in one call of the engine, as one
#'   problem with a leading batch dimension (each refit keeps all the samples,
#'   with weight 0 on those it leaves out; the lbfgs optimiser and the full
#'   covariance only); `0` runs one engine call per refit, on the rows it
#'   keeps, with the fit's backend; `"auto"` (the default) batches where it
#'   applies, on a GPU as many refits as half its free memory holds; it runs
#'   one refit per call on the CPU, where batching measured slower
#'   (`inst/bench/batch-refits.R`), and (Adam, Rprop, the other covariance structures) runs one refit
#'   per call. A batch larger than the memory budget (half of what the device
#'   has free, or `options(plntorch.max_memory)`) is an error naming the size of
#'   a refit. Both ways give the same refits, to the optimiser's tolerance.
#'
#' @return A list of class `"PLN_param_torch"` holding the checked values (the
#'   `NULL`s are resolved when fitting).
#' @seealso [PLN()], [pln_backends()]
#' @export
#' @examples
#' PLN_param()
#' ctrl <- PLN_param(backend = "eager", optimizer = "adam", lr = 0.02, maxit = 200)
#' fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks, control = ctrl)
#' fit$optim_par$steps
PLN_param <- function(backend = NULL, device = "cpu", dtype = NULL,
                      optimizer = "lbfgs", lr = NULL, maxit = 10000,
                      tol = NULL, init = "lm", check_every = NULL,
                      num_threads = NULL, trace = 0, covariance = "full", Omega = NULL,
                      C = NULL, config_post = list()) {
  covariance <- check_choice(covariance, "covariance", .pln_choices$covariance)
  ctrl <- list(
    backend     = check_choice(backend, "backend", .pln_choices$backend, null_ok = TRUE),
    device      = check_device(device),
    dtype       = check_choice(dtype, "dtype", .pln_choices$dtype, null_ok = TRUE),
    optimizer   = check_choice(optimizer, "optimizer", .pln_choices$optimizer),
    lr          = check_number(lr, "lr", lower = 0, strict = TRUE, null_ok = TRUE),
    maxit       = check_count(maxit, "maxit", lower = 1L),
    tol         = check_number(tol, "tol", lower = 0, upper = 0.1, null_ok = TRUE),
    init        = check_init(init),
    check_every = check_count(check_every, "check_every", lower = 1L, null_ok = TRUE),
    num_threads = check_threads(num_threads),
    trace       = check_trace(trace),
    covariance  = covariance,
    Omega       = check_structure_matrix(Omega, "Omega", covariance == "fixed", "fixed"),
    C           = check_structure_matrix(C, "C", covariance == "genpop", "genpop"),
    config_post = check_config_post(config_post)
  )
  structure(ctrl, class = "PLN_param_torch")
}

#' @export
print.PLN_param_torch <- function(x, ...) {
  show <- function(v) if (is.null(v)) "(auto)" else if (is_config_post(v)) format_config_post(v) else
    if (is.list(v)) "(given matrices)" else
    if (is.matrix(v)) sprintf("(%d x %d matrix)", nrow(v), ncol(v)) else format(v)
  cat("PLN control parameters (plntorch)\n")
  for (nm in names(x)) cat(sprintf("  %-12s %s\n", nm, show(x[[nm]])))
  invisible(x)
}

## Accepts what PLN()'s `control` may be: PLN_param()'s result or a plain list of
## its arguments.
as_pln_param <- function(control) {
  if (inherits(control, "PLN_param_torch")) return(control)
  if (!is.list(control) || is.object(control))
    stop_arg("`control` must be the result of PLN_param() or a named list of its arguments; got ",
             describe_value(control), ".")
  nms <- names(control)
  if (is.null(nms)) nms <- rep("", length(control))
  unnamed <- which(is.na(nms) | nms == "")
  if (length(unnamed))
    stop_arg(sprintf("`control` has an element with no name (element %d, holding %s): name each one after a PLN_param() argument, e.g. list(maxit = 100).",
                     unnamed[1L], describe_value(control[[unnamed[1L]]])))
  unknown <- setdiff(nms, names(formals(PLN_param)))
  if (length(unknown))
    stop_arg("`control` has unknown parameter(s): ", paste(unknown, collapse = ", "),
             "; see ?PLN_param.")
  if (anyDuplicated(nms))
    stop_arg(sprintf("`control` gives `%s` more than once.", nms[duplicated(nms)][1L]))
  do.call(PLN_param, control)
}

## A backend and a device this build offers: the errors of resolve_control(), also raised by
## PLNtorch$new() so that a device the build lacks fails where it is given.
check_build_support <- function(backend, device, info = pln_backends_engine()) {
  if (!is.null(backend) && !backend %in% info$backends)
    stop(sprintf("`backend` \"%s\" is not available in this build (available: %s); see pln_backends().",
                 backend, paste(info$backends, collapse = ", ")), call. = FALSE)
  if (startsWith(device, "cuda")) {
    if (!isTRUE(info$cuda) || info$cuda_devices < 1L)
      stop(sprintf("`device` \"%s\" requested, but this build has no usable CUDA device; see pln_backends().",
                   device), call. = FALSE)
    idx <- suppressWarnings(as.integer(sub("^cuda:?", "", device)))
    if (!is.na(idx) && idx >= info$cuda_devices)
      stop(sprintf("`device` \"%s\" does not exist: %d CUDA device(s), numbered from 0.",
                   device, info$cuda_devices), call. = FALSE)
  }
  invisible(TRUE)
}

## Turns checked parameters into the engine's `control` list, resolving the NULLs
## against what this build offers (the only place that asks pln_backends_engine()).
resolve_control <- function(ctrl, info = pln_backends_engine()) {
  if (is.null(ctrl$backend)) {
    ctrl$backend <- intersect(.pln_defaults$backend_preference, info$backends)[1]
    if (is.na(ctrl$backend)) stop("this build of plntorch has no backend.", call. = FALSE)
  }
  check_build_support(ctrl$backend, ctrl$device, info)
  if (is.null(ctrl$dtype)) ctrl$dtype <- .pln_defaults$dtype
  if (is.null(ctrl$lr)) ctrl$lr <- .pln_defaults$lr[[ctrl$optimizer]]
  if (is.null(ctrl$tol)) {
    tol <- .pln_defaults$tol[[ctrl$optimizer]]
    ctrl$tol <- if (length(tol) > 1L) tol[[ctrl$dtype]] else tol
  }
  if (is.null(ctrl$check_every)) ctrl$check_every <- .pln_defaults$check_every
  if (is.null(ctrl$num_threads)) ctrl$num_threads <- .pln_defaults$num_threads
  ## More threads than cores only slow a fit down (they take turns), and OpenMP allocates a stack
  ## per thread: 1e9 of them end the R process.
  cores <- available_cores()
  if (ctrl$num_threads > cores) {
    warning(sprintf("`num_threads` = %d exceeds the %d core(s) this process may use; using %d.",
                    ctrl$num_threads, cores, cores), call. = FALSE)
    ctrl$num_threads <- cores
  }
  max_memory <- getOption("plntorch.max_memory")
  if (!is.null(max_memory) &&
      (!is.numeric(max_memory) || length(max_memory) != 1L || is.na(max_memory) || max_memory <= 0))
    stop("options(plntorch.max_memory) must be a single positive number of bytes ",
         "(Inf: no check), not ", paste(deparse(max_memory), collapse = " "), ".", call. = FALSE)
  max_bytes <- if (is.null(max_memory)) 0 else if (is.infinite(max_memory)) -1 else as.double(max_memory)
  list(backend = ctrl$backend, device = ctrl$device, dtype = ctrl$dtype,
       optimizer = ctrl$optimizer, lr = as.double(ctrl$lr), maxit = as.integer(ctrl$maxit),
       tol = as.double(ctrl$tol), init = if (is.character(ctrl$init)) ctrl$init else "lm",
       check_every = as.integer(ctrl$check_every), num_threads = as.integer(ctrl$num_threads),
       trace = as.integer(ctrl$trace), max_bytes = max_bytes, covariance = ctrl$covariance)
}
