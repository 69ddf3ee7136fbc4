#' PLN model in the style of the torch-for-R tutorial
#'
#' An R6 object holding the data and the current parameters of a PLN model,
#' fitted in place by the C++ engine: the object style of the torch-for-R PLN
#' tutorial, with the correct ELBO and the engine's speed.
#'
#' Each call to `$fit()` continues from the current `B`, `M` and `S` (which may
#' be changed by hand between fits). A new object holds B = 0, M = 0, S = 1
#' (Sigma = Omega = I), the PyTorch tutorial's start; the torch-for-R tutorial
#' starts at B = -8 (every coefficient), M = 0, S = 1: set `m$B[] <- -8`
#' before the first fit to follow it. After every optimisation step Sigma
#' and Omega take their closed form `(M'M + diag(colSums(S^2))) / n`. Unlike the
#' tutorial, the ELBO keeps its trace term
#' `-tr(Omega (M'M + diag(colSums(S^2)))) / 2`.
#'
#' @section Usage:
#' ```
#' m <- PLNtorch$new(Y, O = NULL, X = NULL, w = NULL, backend = "eager",
#'                   device = "cpu", dtype = NULL)
#' m$fit(N_iter, lr = NULL, tol = 1e-9, optimizer = "rprop", verbose = FALSE)
#' m$get_ELBO()
#' m$plotLogNegElbo(from = 1, type = "elbo", ref = NULL)
#' ```
#'
#' @section Arguments:
#' * `Y`: count matrix, n x p.
#' * `O`: log-offsets: an n x p matrix, a vector of length n (one per
#'   sample), or `NULL` (zero).
#' * `X`: covariates, n x d; `NULL` is an intercept only.
#' * `w`: observation weights, length n; `NULL` is all 1.
#' * `backend`: `"eager"` (default), `"script"` or `"fused"` (see
#'   [PLN_param()] and [pln_backends()]).
#' * `device`: `"cpu"` (default), `"cuda"` or `"cuda:N"`; a backend or device this
#'   build lacks is an error here, as in [PLN_param()]'s fits.
#' * `dtype`: `"float64"` or `"float32"`; `NULL` takes float64.
#' * `N_iter`: maximum number of optimisation steps of this fit.
#' * `lr`: learning rate; `NULL` takes the optimiser's default of [PLN_param()].
#' * `tol`: stop when the relative change of the ELBO falls below `tol`; 0 runs
#'   `N_iter` steps.
#' * `optimizer`: `"rprop"` (default, as in the tutorial), `"adam"` or `"lbfgs"` (see [PLN_param()]).
#' * `verbose`: print the engine's progress and a summary line.
#' * `from`: first step to plot (at most the number of steps of the trace).
#' * `type`: `"elbo"` (default) plots `log(-ELBO)` against the step, the
#'   tutorial's view; `"gap"` plots `ref - ELBO` on a log scale, the view that
#'   shows convergence (see [plot.PLNfit_torch()]).
#' * `ref`: for `type = "gap"`, the ELBO to measure the gap from, at or above
#'   every value plotted (for instance the final ELBO of a converged [PLN()]
#'   fit of the same data); `NULL` takes the largest ELBO of the trace.
#'
#' @section Methods:
#' * `$new()`: checks and stores the data, sets the start B = 0, M = 0, S = 1.
#' * `$fit()`: runs the optimiser from the current `B`, `M`, `S`; updates them,
#'   `Sigma`, `Omega`, `loglik`, and appends the steps' ELBO to `ELBO_list`.
#'   Returns the object, invisibly.
#' * `$get_ELBO()`: the ELBO at the current `B`, `M`, `S` and `Omega` (Omega
#'   not re-estimated), computed by the engine.
#' * `$plotLogNegElbo()`: plots the ELBO trace over all fits: `log(-ELBO)`
#'   against the step, or with `type = "gap"` the gap to `ref` on a log scale.
#' * `$print()`: a short summary.
#'
#' @section Fields edited by hand:
#' `$fit()` checks `backend`, `device`, `dtype`, `B`, `M` and `S`, and
#' `$get_ELBO()` checks `backend`, `dtype`, `B`, `M`, `S` and `Omega`, before
#' they reach the engine: each must be a finite numeric matrix of its
#' dimensions (S without zeros, Omega symmetric positive definite) or one of
#' the values [PLN_param()] accepts. An error names the field as the call
#' shows the object (`m$B` after `m$fit()`); a start where the ELBO is not
#' finite (`exp()` overflows, or `S^2` underflows to zero) is an error naming
#' `m$B`, `m$M` and `m$S`, and `$get_ELBO()` never returns `-Inf` or `NaN`.
#' A failed fit leaves the fields as they were.
#'
#' @section Fields:
#' * `Y`, `O`, `X`, `w`: the data as checked by `$new()` (n x p, n x p, n x d,
#'   length n); changing them afterwards has no effect on fits.
#' * `n`, `p`, `d`: numbers of samples, species and covariate columns.
#' * `backend`, `device`, `dtype`: the engine settings.
#' * `B` (d x p), `M`, `S` (n x p): coefficients, variational means and
#'   standard deviations (the ELBO depends on `S^2` only, so `S` may be
#'   negative).
#' * `Sigma`, `Omega`: latent covariance and its inverse, p x p.
#' * `ELBO_list`: the ELBO after each step, over all fits so far.
#' * `loglik`, `loglik_vec`: PLNmodels' variational log-likelihood after the
#'   last fit (`NA` before any) and its per-sample terms (unweighted).
#' * `last_fit`: `steps`, `status`, `seconds`, `optimizer`, `lr`, `threads`
#'   of the last fit.
#'
#' @format An [R6::R6Class] generator.
#' @seealso [PLN()] for the formula interface and the PLNmodels-style fit.
#' @export
#' @examples
#' m <- PLNtorch$new(Y = oaks$Abundance, O = log(oaks$Offset),
#'                   X = matrix(1, nrow(oaks), 1), backend = "eager", device = "cpu")
#' m$fit(N_iter = 200, lr = 0.05, tol = 1e-9)
#' m$fit(N_iter = 100, lr = 0.05)   # continues from where the first fit stopped
#' length(m$ELBO_list)
#' m$loglik
#' m$B[, 1:5]
#' m$get_ELBO()
#' m$plotLogNegElbo()
PLNtorch <- R6::R6Class("PLNtorch",
  public = list(
    Y = NULL, O = NULL, X = NULL, w = NULL,
    n = NULL, p = NULL, d = NULL,
    backend = NULL, device = NULL, dtype = NULL,
    B = NULL, M = NULL, S = NULL, Sigma = NULL, Omega = NULL,
    ELBO_list = numeric(0),
    loglik = NA_real_,
    loglik_vec = NULL,
    last_fit = NULL,

    initialize = function(Y, O = NULL, X = NULL, w = NULL, backend = "eager",
                          device = "cpu", dtype = NULL) {
      self$backend <- check_choice(backend, "backend", .pln_choices$backend)
      self$device <- check_device(device)
      check_build_support(self$backend, self$device)
      dtype <- check_choice(dtype, "dtype", .pln_choices$dtype, null_ok = TRUE)
      if (is.null(dtype)) dtype <- .pln_defaults$dtype
      self$dtype <- dtype
      if (missing(Y)) stop_arg("`Y` is missing.")
      dat <- check_pln_data(Y, O, X, w)
      private$dat <- dat
      nms <- dat$names
      self$n <- nrow(dat$Y); self$p <- ncol(dat$Y); self$d <- ncol(dat$X)
      self$Y <- dat$Y; self$O <- dat$O; self$X <- dat$X; self$w <- dat$w
      dimnames(self$Y) <- dimnames(self$O) <- list(nms$samples, nms$species)
      dimnames(self$X) <- list(nms$samples, nms$covariates)
      self$B <- matrix(0, self$d, self$p, dimnames = list(nms$covariates, nms$species))
      self$M <- matrix(0, self$n, self$p, dimnames = list(nms$samples, nms$species))
      self$S <- matrix(1, self$n, self$p, dimnames = list(nms$samples, nms$species))
      self$Sigma <- self$Omega <- diag(1, self$p)
      dimnames(self$Sigma) <- dimnames(self$Omega) <- list(nms$species, nms$species)
      invisible(self)
    },

    fit = function(N_iter, lr = NULL, tol = 1e-9, optimizer = "rprop", verbose = FALSE) {
      obj <- object_name(sys.call())
      if (missing(N_iter)) stop_arg("`N_iter` is missing.")
      if (!is.logical(verbose) || length(verbose) != 1L || is.na(verbose))
        stop_arg("`verbose` must be TRUE or FALSE.")
      private$check_fields(obj, c("backend", "device", "dtype", "B", "M", "S"))
      ctrl <- PLN_param(backend = self$backend, device = self$device, dtype = self$dtype,
                        optimizer = optimizer, lr = lr,
                        maxit = check_count(N_iter, "N_iter", lower = 1L), tol = tol,
                        init = list(B = self$B, M = self$M, S = self$S),
                        trace = verbose)
      ## the engine names the starting values `init`: here they are the object's fields
      res <- tryCatch(fit_pln_engine(private$dat, ctrl, init_arg = obj), error = function(e) {
        given <- "the starting values given in `init` (B, M, S)"
        if (!grepl(given, conditionMessage(e), fixed = TRUE)) stop(e)
        stop_arg(sub(given, sprintf("the current `%1$s$B`, `%1$s$M` and `%1$s$S`", obj),
                     conditionMessage(e), fixed = TRUE))
      })
      self$B <- res$B; self$M <- res$M; self$S <- res$S
      self$Sigma <- res$Sigma; self$Omega <- res$Omega
      ## lbfgs also records the ELBO at its start (the last value of the previous fit): one value
      ## per step here, the ELBO after it
      self$ELBO_list <- c(self$ELBO_list,
                          if (identical(res$optimizer, "lbfgs")) res$objective[-1L] else res$objective)
      self$loglik_vec <- res$loglik_vec
      self$loglik <- sum(private$dat$w * res$loglik_vec)
      self$last_fit <- list(steps = res$steps, status = res$status, seconds = res$seconds,
                            optimizer = res$optimizer, lr = res$lr, threads = res$threads)
      if (verbose)
        message(sprintf("%d steps (%s) in %.3f s; ELBO %.6g, loglik %.6g",
                        res$steps, res$status, res$seconds,
                        res$objective[length(res$objective)], self$loglik))
      invisible(self)
    },

    get_ELBO = function() {
      obj <- object_name(sys.call())
      private$check_fields(obj, c("backend", "dtype", "B", "M", "S", "Omega"))
      method <- switch(self$backend, eager = "autograd", script = "script", fused = "analytic")
      J <- engine_objective(private$dat, self$B, self$M, self$S, self$Omega,
                            method = method, dtype = self$dtype)$objective
      if (!is.finite(J))
        stop_arg(sprintf(paste0(
          "the ELBO is not finite at the current `%1$s$B`, `%1$s$M`, `%1$s$S` and `%1$s$Omega`: ",
          "exp(O + X B + M + S^2 / 2) overflows in %2$s, or S is so small that log(S^2) does; ",
          "give values of the scale of the data (or call `%1$s$fit()`)."), obj, self$dtype))
      J
    },

    plotLogNegElbo = function(from = 1, type = c("elbo", "gap"), ref = NULL) {
      type <- check_choice(type[1L], "type", c("elbo", "gap"))
      plot_elbo_trace(self$ELBO_list, from = check_count(from, "from", lower = 1L), type = type,
                      ref = ref, main = sprintf("PLNtorch: %s backend", self$backend))
      invisible(self)
    },

    print = function(...) {
      cat(sprintf("PLNtorch model: %d samples, %d species, %d covariate column(s)\n",
                  self$n, self$p, self$d))
      cat(sprintf("  engine: backend %s, device %s, %s\n", self$backend, self$device, self$dtype))
      if (length(self$ELBO_list))
        cat(sprintf("  %d steps so far; ELBO %.8g; loglik %.8g\n", length(self$ELBO_list),
                    self$ELBO_list[length(self$ELBO_list)], self$loglik))
      else cat("  not fitted yet: call $fit(N_iter, lr)\n")
      invisible(self)
    }
  ),
  private = list(
    dat = NULL,

    ## Fields a user may have changed by hand since the last fit, checked before they reach the
    ## engine; errors name them as `obj$field`.
    check_fields = function(obj, fields) {
      field <- function(nm) sprintf("%s$%s", obj, nm)
      for (nm in intersect(fields, c("backend", "dtype")))
        check_choice(self[[nm]], field(nm), .pln_choices[[nm]])
      if ("device" %in% fields) check_device(self$device, field("device"))
      state <- intersect(fields, c("B", "M", "S", "Omega"))
      for (nm in state)
        if (is.null(self[[nm]])) stop_arg(sprintf("`%s` is NULL: it must be a numeric matrix.", field(nm)))
      start <- check_init(mget(setdiff(state, "Omega"), envir = self), arg = obj)
      check_start(start, self$n, self$p, self$d, arg = obj)
      if ("Omega" %in% state) {
        Omega <- check_init(list(Omega = self$Omega), arg = obj, allowed = "Omega")$Omega
        if (!identical(dim(Omega), c(self$p, self$p)))
          stop_arg(sprintf("`%s` must be %d x %d; got %d x %d.", field("Omega"), self$p, self$p,
                           nrow(Omega), ncol(Omega)))
        if (!isSymmetric(unname(Omega), tol = 1e-8) ||
            inherits(tryCatch(chol(Omega), error = identity), "error"))
          stop_arg(sprintf("`%s` must be symmetric positive definite (the inverse of `%s`).",
                           field("Omega"), field("Sigma")))
      }
      invisible(TRUE)
    }
  )
)

## The name of the object a method was called on (`m` in m$fit(10)), for errors about its
## fields; "object" when the call does not show it.
object_name <- function(call) {
  f <- if (is.call(call)) call[[1L]]
  if (is.call(f) && (identical(f[[1L]], as.name("$")) || identical(f[[1L]], as.name("[["))))
    deparse1(f[[2L]])
  else "object"
}
