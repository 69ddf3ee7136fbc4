## Randomised inputs, within and outside the domain, thrown at PLN() and PLNtorch: each
## call must end in a clear error (one line, no C++ backtrace) or a fit whose numbers are
## all finite. Seeded; tiny shapes and few steps keep it to a few seconds.

## One argument at most is drawn outside the domain (`bad`), so that fits occur too.
random_input <- function() {
  bad <- sample(c("none", "none", "none", "none", "Y", "O", "X", "w", "ctrl"), 1)
  pick <- function(what, valid, all) sample(if (bad == what) all else valid, 1)
  n <- if (bad == "Y") sample(c(0:6, 12), 1) else sample(c(1:6, 12), 1)
  p <- if (bad == "Y") sample(c(0:4, 7), 1) else sample(c(1:4, 7), 1)
  Y <- matrix(stats::rpois(n * p, sample(c(0.2, 3, 50), 1)), n, p)
  corrupt <- pick("Y", c("none", "zerocol", "df", "huge"), c("none", "NA", "NaN", "Inf", "neg", "frac", "huge",
                      "zeros", "char", "df", "zerocol", "logical"))
  if (length(Y)) {
    k <- sample(length(Y), 1)
    Y <- switch(corrupt, "NA" = replace(Y, k, NA), "NaN" = replace(Y, k, NaN),
                "Inf" = replace(Y, k, Inf), neg = replace(Y, k, -1), frac = replace(Y, k, 0.5),
                huge = replace(Y, k, 1e7), zeros = 0 * Y,
                char = matrix(as.character(Y), n, p), df = as.data.frame(Y),
                zerocol = { Y[, 1] <- 0; Y }, logical = Y > 0, Y)
  }
  O <- switch(pick("O", c("null", "scalar", "vec", "mat"), c("inf", "wrong")),
              null = NULL, scalar = stats::rnorm(1), vec = stats::rnorm(n),
              mat = matrix(stats::rnorm(n * p), n, p), inf = rep(-Inf, n),
              wrong = matrix(0, n + 1, p))
  X <- switch(pick("X", c("null", "cov"), c("collinear", "wrong", "nan")),
              null = NULL, cov = cbind(1, stats::rnorm(n)),
              collinear = cbind(1, rep(2, n)), wrong = matrix(1, n + 2, 1),
              nan = cbind(1, replace(stats::rnorm(n), 1, NaN)))
  w <- switch(pick("w", c("null", "pos"), c("zero", "neg", "short")),
              null = NULL, pos = stats::runif(n, 0.5, 2), zero = replace(rep(1, n), 1, 0),
              neg = -rep(1, n), short = rep(1, max(n - 1, 0)))
  list(Y = Y, O = O, X = X, w = w,
       backend = pick("ctrl", built, c(built, "bogus")),
       dtype = sample(c("float64", "float32"), 1),
       optimizer = pick("ctrl", c("lbfgs", "rprop", "adam"), c("newton", "bfgs")),
       lr = pick("ctrl", c(1e-3, 0.05, 1), c(100, 1e4, -1, 0)),
       maxit = pick("ctrl", c(1, 5, 15), c(0, 15)))
}

built <- intersect(c("eager", "script", "fused"), pln_backends()$backends)

## An outcome: "error" with a clear message, or "fit" with finite numbers; anything else fails.
check_outcome <- function(expr, info) {
  out <- tryCatch(suppressWarnings(expr), error = function(e) e)
  if (inherits(out, "error")) {
    msg <- conditionMessage(out)
    expect_true(nzchar(msg) && !grepl("\n", msg) &&
                  !grepl("Exception raised from|c10::|frame #|std::", msg),
                info = paste(info, msg))
    if (nzchar(Sys.getenv("PLN_FUZZ_REPORT"))) message("ERR ", msg, " || ", info)
    return("error")
  }
  nums <- if (inherits(out, "PLNtorch"))
    c(out$B, out$M, out$S, out$Sigma, out$loglik, out$ELBO_list)
  else c(out$model_par$B, out$model_par$Sigma, out$var_par$M, out$var_par$S2, out$loglik,
         out$fitted)
  expect_true(length(nums) > 0 && all(is.finite(nums)), info = info)
  "fit"
}

test_that("random inputs give a clear error or a finite fit", {
  set.seed(20240605)
  outcomes <- character(0)
  for (i in seq_len(300)) {
    a <- random_input()
    info <- sprintf("case %d: %s", i, paste(deparse(a[c("backend", "dtype", "optimizer", "lr", "maxit", if (nzchar(Sys.getenv("PLN_FUZZ_REPORT"))) c("Y", "O", "X", "w"))]),
                                            collapse = ""))
    if (i %% 2 == 0) {
      outcomes <- c(outcomes, check_outcome({
        m <- PLNtorch$new(Y = a$Y, O = a$O, X = a$X, w = a$w, backend = a$backend, dtype = a$dtype)
        m$fit(a$maxit, lr = a$lr, optimizer = a$optimizer, tol = 0)
      }, info))
    } else {
      env <- list2env(list(Y = a$Y, O = a$O, X = a$X, w = a$w))
      fml <- if (is.null(a$X)) Y ~ 1 else Y ~ 0 + X
      if (!is.null(a$O)) fml <- stats::update(fml, . ~ . + offset(O))
      environment(fml) <- env
      outcomes <- c(outcomes, check_outcome(
        PLN(fml, weights = w, control = list(backend = a$backend, dtype = a$dtype,
                                             optimizer = a$optimizer, lr = a$lr,
                                             maxit = a$maxit)),
        info))
    }
  }
  ## both outcomes occur often enough for the test to mean something
  if (nzchar(Sys.getenv("PLN_FUZZ_REPORT"))) print(table(outcomes))
  expect_gt(sum(outcomes == "fit"), 60)
  expect_gt(sum(outcomes == "error"), 60)
})
