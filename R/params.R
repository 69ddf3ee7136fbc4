## Defaults of the fitting interface, in one file: the literal ones are the formals of
## PLN_param() below; the ones that depend on the build, the device or the optimiser
## (arguments left NULL) are resolved from this list by resolve_control(). Tune here.
.pln_defaults <- list(
  backend_preference = c("fused", "script", "eager"), # backend = NULL: first one built
  dtype       = c(cpu = "float64", cuda = "float32"), # dtype = NULL: by device type
  lr          = c(newton = 1, adam = 0.01, rprop = 0.05), # lr = NULL: by optimizer
  tol         = c(newton = 2e-7, adam = 1e-10, rprop = 1e-10), # tol = NULL: by optimizer
  check_every = 0L,                                   # NULL -> 0: the engine's default
  num_threads = 0L                                    # NULL -> 0: leave LibTorch's setting
)

.pln_choices <- list(
  backend   = c("eager", "script", "fused"),
  dtype     = c("float64", "float32"),
  optimizer = c("newton", "adam", "rprop"),
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
#' @param dtype `NULL` (the default: `"float64"` on CPU, `"float32"` on CUDA),
#'   `"float64"` or `"float32"`.
#' @param optimizer `"newton"` (default), `"rprop"` (PyTorch's Rprop) or `"adam"`
#'   (PyTorch's Adam). `"newton"` takes, at each step, a Newton step in each
#'   entry of M with its diagonal curvature `A + diag(Omega)`, sets
#'   `S^2 = 1 / (A + diag(Omega))`, and moves the part of M that lies in the span
#'   of X into B (which leaves `Z` unchanged and maximises the ELBO over such
#'   shifts); it rises monotonically on oaks and converges in a few hundred
#'   steps, where first-order rules need thousands. Every backend runs it (the
#'   autograd backends take the gradient in M from autograd).
#' @param lr learning rate (Rprop: initial step size), a positive number; `NULL`
#'   (default) takes 0.05 for Rprop and 0.01 for Adam. `"newton"` has none and
#'   ignores it.
#' @param maxit maximum number of optimisation steps (default 10000).
#' @param tol stop when the relative change of the ELBO between two steps falls
#'   below `tol` (a number in \[0, 0.1\]); `0` runs all `maxit` steps. `NULL` (default) takes 2e-7 for
#'   `"newton"` (whose ELBO rises monotonically) and 1e-10 for the first-order
#'   rules (whose ELBO moves in small steps long before they converge).
#' @param init starting point: `"lm"` (default; B by weighted least squares of
#'   `log(1 + Y) - O` on X, M the residuals, S = 1 / sqrt(1 + Y)), `"tutorial"`
#'   (B = 0, M = 0, S = 1, as in the torch tutorials), or a list with some of
#'   the matrices `B` (d x p), `M` and `S` (n x p, S non-zero); the ones left out
#'   start as with `"lm"`.
#' @param check_every check convergence every `check_every` steps; `NULL`
#'   (default) leaves the choice to the engine.
#' @param num_threads number of CPU threads LibTorch may use; `NULL` (default)
#'   leaves LibTorch's setting unchanged.
#' @param trace verbosity of the engine, `0` (silent, default) or `1`.
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
                      optimizer = "newton", lr = NULL, maxit = 10000,
                      tol = NULL, init = "lm", check_every = NULL,
                      num_threads = NULL, trace = 0) {
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
    num_threads = check_count(num_threads, "num_threads", lower = 0L, null_ok = TRUE),
    trace       = check_trace(trace)
  )
  structure(ctrl, class = "PLN_param_torch")
}

#' @export
print.PLN_param_torch <- function(x, ...) {
  show <- function(v) if (is.null(v)) "(auto)" else if (is.list(v)) "(given matrices)" else format(v)
  cat("PLN control parameters (plntorch)\n")
  for (nm in names(x)) cat(sprintf("  %-12s %s\n", nm, show(x[[nm]])))
  invisible(x)
}

## Accepts what PLN()'s `control` may be: PLN_param()'s result or a plain list of
## its arguments.
as_pln_param <- function(control) {
  if (inherits(control, "PLN_param_torch")) return(control)
  if (!is.list(control) || (length(control) && is.null(names(control))))
    stop("`control` must be the result of PLN_param() or a named list of its arguments.",
         call. = FALSE)
  unknown <- setdiff(names(control), names(formals(PLN_param)))
  if (length(unknown))
    stop("`control` has unknown parameter(s): ", paste(unknown, collapse = ", "),
         "; see ?PLN_param.", call. = FALSE)
  do.call(PLN_param, control)
}

## Turns checked parameters into the engine's `control` list, resolving the NULLs
## against what this build offers (the only place that asks pln_backends_engine()).
resolve_control <- function(ctrl, info = pln_backends_engine()) {
  if (is.null(ctrl$backend)) {
    ctrl$backend <- intersect(.pln_defaults$backend_preference, info$backends)[1]
    if (is.na(ctrl$backend)) stop("this build of plntorch has no backend.", call. = FALSE)
  } else if (!ctrl$backend %in% info$backends) {
    stop(sprintf("`backend` \"%s\" is not available in this build (available: %s); see pln_backends().",
                 ctrl$backend, paste(info$backends, collapse = ", ")), call. = FALSE)
  }
  if (startsWith(ctrl$device, "cuda")) {
    if (!isTRUE(info$cuda) || info$cuda_devices < 1L)
      stop(sprintf("`device` \"%s\" requested, but this build has no usable CUDA device; see pln_backends().",
                   ctrl$device), call. = FALSE)
    idx <- suppressWarnings(as.integer(sub("^cuda:?", "", ctrl$device)))
    if (!is.na(idx) && idx >= info$cuda_devices)
      stop(sprintf("`device` \"%s\" does not exist: %d CUDA device(s), numbered from 0.",
                   ctrl$device, info$cuda_devices), call. = FALSE)
  }
  device_type <- if (startsWith(ctrl$device, "cuda")) "cuda" else "cpu"
  if (is.null(ctrl$dtype)) ctrl$dtype <- .pln_defaults$dtype[[device_type]]
  if (is.null(ctrl$lr)) ctrl$lr <- .pln_defaults$lr[[ctrl$optimizer]]
  if (is.null(ctrl$tol)) ctrl$tol <- .pln_defaults$tol[[ctrl$optimizer]]
  if (is.null(ctrl$check_every)) ctrl$check_every <- .pln_defaults$check_every
  if (is.null(ctrl$num_threads)) ctrl$num_threads <- .pln_defaults$num_threads
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
       trace = as.integer(ctrl$trace), max_bytes = max_bytes)
}
