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
## `names`: a pattern the message must match when the input was drawn outside the domain
## (the argument the user has to change).
check_outcome <- function(expr, info, names = NULL) {
  out <- tryCatch(suppressWarnings(expr), error = function(e) e)
  if (inherits(out, "error")) {
    msg <- conditionMessage(out)
    expect_true(nzchar(msg) && !grepl("\n", msg) &&
                  !grepl("Exception raised from|c10::|frame #|std::", msg),
                info = paste(info, msg))
    if (!is.null(names)) expect_match(msg, names, info = info)
    if (nzchar(Sys.getenv("PLN_FUZZ_REPORT"))) message("ERR ", msg, " || ", info)
    return("error")
  }
  if (is.numeric(out)) {  # get_ELBO()
    expect_true(length(out) == 1L && is.finite(out), info = info)
    return("fit")
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

## The argument families of the second pass: control values, starting values, subset forms and
## fields of a PLNtorch object edited by hand. Each draw is "good" (a fit must come out) or "bad"
## (outside the domain: the error must name the argument).
draw <- function(good, bad) {
  is_bad <- stats::runif(1) < 0.5
  pool <- if (is_bad) bad else good
  k <- sample(length(pool), 1)
  list(value = pool[[k]], label = names(pool)[k], bad = is_bad)
}

fuzz_control <- function() {
  arg <- sample(c("maxit", "lr", "tol", "num_threads", "check_every", "trace", "optimizer",
                  "dtype", "init", "unnamed", "unknown", "twice"), 1)
  d <- switch(arg,
    maxit = draw(list(one = 1, five = 5L), list(zero = 0, frac = 2.5, na = NA, chr = "10", big = 1e10, two = c(5, 6))),
    lr = draw(list(small = 1e-3, null = NULL), list(zero = 0, neg = -1, inf = Inf, na = NA_real_, chr = "a")),
    tol = draw(list(zero = 0, tiny = 1e-12), list(neg = -1, big = 1, na = NA, chr = "small")),
    num_threads = draw(list(one = 1, huge = 1e9, many = 256), list(neg = -1, na = NA, frac = 1.5)),
    check_every = draw(list(one = 1, ten = 10), list(zero = 0, na = NA)),
    trace = draw(list(false = FALSE, zero = 0), list(na = NA, chr = "yes", neg = -1)),
    optimizer = draw(list(lbfgs = "lbfgs", adam = "adam", rprop = "rprop"), list(newton = "newton", na = NA_character_)),
    dtype = draw(list(f64 = "float64", f32 = "float32"), list(f16 = "float16", num = 64)),
    init = draw(list(lm = "lm", tutorial = "tutorial"), list(random = "random", num = 1)),
    unnamed = list(value = 3, label = "unnamed", bad = TRUE),
    unknown = list(value = 3, label = "maxiter", bad = TRUE),
    twice = list(value = 5, label = "twice", bad = TRUE))
  ctrl <- list(maxit = 5, backend = sample(built, 1))
  if (arg == "unnamed") ctrl <- c(ctrl, list(d$value))
  else if (arg == "unknown") ctrl$maxiter <- d$value
  else if (arg == "twice") ctrl <- c(ctrl, list(maxit = d$value))
  else ctrl[arg] <- list(d$value)
  list(ctrl = ctrl, label = paste(arg, d$label), bad = d$bad,
       names = if (arg %in% c("unnamed", "unknown", "twice")) "`control`" else paste0("`", arg, "`"))
}

fuzz_init <- function(n, p) {
  nm <- sample(c("B", "M", "S"), 1)
  dims <- if (nm == "B") c(1, p) else c(n, p)
  full <- function(v) matrix(v, dims[1], dims[2])
  bad <- list(na = full(NA_real_), nan = replace(full(1), 1, NaN), inf = replace(full(1), 1, Inf),
              wrong = matrix(1, dims[1] + 1, dims[2]), vec = rep(1, prod(dims)), chr = full("1"),
              df = as.data.frame(full(1)), huge = full(if (nm == "S") 1e200 else 1e5))
  if (nm == "S") bad <- c(bad, list(zero = full(0), tiny = full(1e-300)))
  d <- draw(list(mid = full(if (nm == "S") 0.5 else 0), rnd = full(stats::rnorm(prod(dims), sd = 0.3)),
                 int = full(1L)), bad)
  list(init = setNames(list(d$value), nm), label = paste(nm, d$label), bad = d$bad, names = "`init")
}

fuzz_subset <- function(n) {
  d <- draw(list(all = TRUE, half = rep(c(TRUE, FALSE), length.out = n), idx = seq_len(max(1, n - 1)),
                 neg = -1, dup = c(1, 1, 2), names = paste0("s", 1:2)),
            list(na = c(NA, rep(TRUE, n - 1)), short = c(TRUE, FALSE, TRUE)[seq_len(min(3, n - 1))],
                 oob = c(1, n + 5), mixed = c(-1, 2), frac = 1.5, none = rep(FALSE, n),
                 factor = factor(rep("a", n)), unknown = "zz", naidx = c(1, NA)))
  list(subset = d$value, label = d$label, bad = d$bad, names = "`subset`")
}

fuzz_field <- function(m) {
  f <- sample(c("B", "M", "S", "Omega", "backend", "dtype", "device"), 1)
  cur <- m[[f]]
  bad <- if (f %in% c("backend", "dtype", "device"))
    list(bogus = "bogus", na = NA_character_, num = 1, null = NULL)
  else
    list(nan = replace(cur, 1, NaN), inf = replace(cur, 1, -Inf), null = NULL,
         wrong = cur[, -1, drop = FALSE], chr = "a")
  if (f %in% c("S", "Omega")) bad$zero <- cur * 0
  if (f == "S") bad$tiny <- cur * 0 + 1e-300
  if (f %in% c("B", "M", "S")) bad$huge <- cur * 0 + 1e200
  d <- draw(list(same = cur, scaled = if (is.numeric(cur)) cur * 0.9 else cur), bad)
  m[[f]] <- d$value
  list(label = paste(f, d$label), bad = d$bad,
       names = if (d$label %in% c("tiny", "huge")) "not finite at the current `m\\$"
               else paste0("`m\\$", f, "`"))
}

test_that("control values, init values, subset forms and R6 fields edited by hand: a clear error naming them, or a finite fit", {
  set.seed(20261124)
  outcomes <- character(0)
  for (i in seq_len(160)) {
    n <- sample(c(3, 8), 1); p <- sample(1:3, 1)
    df <- data.frame(x = stats::rnorm(n))
    df$Y <- matrix(stats::rpois(n * p, 4) + 1, n, p, dimnames = list(paste0("s", 1:n), NULL))
    rownames(df) <- paste0("s", 1:n)
    family <- c("control", "init", "subset", "field")[i %% 4 + 1]
    if (family == "control") {
      a <- fuzz_control()
      res <- check_outcome(PLN(Y ~ x, data = df, control = a$ctrl),
                           paste("control", a$label), if (a$bad) a$names)
    } else if (family == "init") {
      a <- fuzz_init(n, p)
      res <- check_outcome(PLN(Y ~ 1, data = df, control = list(
        init = a$init, maxit = 5, backend = sample(built, 1), dtype = sample(c("float64", "float32"), 1),
        optimizer = sample(c("lbfgs", "adam", "rprop"), 1))), paste("init", a$label), if (a$bad) a$names)
    } else if (family == "subset") {
      a <- fuzz_subset(n)
      res <- check_outcome(PLN(Y ~ x, data = df, subset = a$subset, control = list(maxit = 5)),
                           paste("subset", a$label), if (a$bad) a$names)
    } else {
      m <- PLNtorch$new(Y = df$Y, backend = sample(built, 1))
      if (stats::runif(1) < 0.5) m$fit(3)
      a <- fuzz_field(m)
      use_fit <- stats::runif(1) < 0.5
      ## $fit() recomputes Omega; get_ELBO() runs on the CPU whatever m$device says
      if (grepl(if (use_fit) "^Omega" else "^device", a$label)) a$bad <- NA
      res <- check_outcome(if (use_fit) m$fit(3, optimizer = sample(c("lbfgs", "adam", "rprop"), 1))
                           else m$get_ELBO(), paste("field", a$label), if (isTRUE(a$bad)) a$names)
    }
    ## a draw inside the domain must fit, one outside it must fail
    if (!is.na(a$bad)) expect_identical(res, if (a$bad) "error" else "fit", info = paste(family, a$label))
    outcomes <- c(outcomes, paste(family, res))
  }
  if (nzchar(Sys.getenv("PLN_FUZZ_REPORT"))) print(table(outcomes))
  for (fam in c("control", "init", "subset", "field"))
    expect_true(all(paste(fam, c("fit", "error")) %in% outcomes), info = fam)
})

## ---- Random formulas and starts (issue: no fit reported as converged unless it is)

## Randomised formulas and starts on small simulated data, as a user would write them: poly(),
## splines, I(), interactions, factors with a rare level, covariates and offsets on any scale,
## and starting values from wild ranges. Whatever is drawn:
## * a call either errors at once with one clear line, or returns a fit after which no
##   post-treatment errors (summary, standard errors, R^2, predict, fitted, residuals, plot);
## * a fit that says "converged" is at the optimum: its log-likelihood is within
##   max(0.1, 1e-5 |loglik|) of the default fit's (or above it);
## * R^2 is in (-Inf, 1] or NA with a warning, and does not move when a covariate is rescaled.
## Two seeds: a fixed one, and one drawn per run (printed, so that a failure can be replayed
## with PLNTORCH_FUZZ_SEED).

fuzz_data <- function(n, p) {
  x1 <- stats::rnorm(n)
  x2 <- stats::runif(n, 0, 10)
  f <- factor(sample(c("a", "b", "c"), n, replace = TRUE), levels = c("a", "b", "c", "rare"))
  f[1] <- "rare"  # a level with one sample
  when <- as.POSIXct("2024-01-01", tz = "UTC") + stats::runif(n, 0, 3e7)
  depth <- round(stats::runif(n, 500, 5000))
  eta <- 0.8 * x1 - 0.1 * x2 + c(a = 0, b = 0.5, c = -0.5, rare = 1)[as.character(f)]
  mu <- exp(log(depth / 2000) + outer(eta, stats::rnorm(p, 0, 0.5)) +
              matrix(stats::rnorm(n * p, 0, 0.6), n, p) + 1)
  Y <- matrix(stats::rpois(n * p, mu), n, p, dimnames = list(NULL, paste0("sp", seq_len(p))))
  d <- data.frame(x1 = x1, x2 = x2, f = f, when = when, depth = depth)
  d$Abundance <- Y
  d
}

fuzz_terms <- c("x1", "x2", "poly(x1, 2)", "splines::ns(x2, 3)", "splines::bs(x1, 3)",
                "I(x1^2)", "x1:x2", "f", "x1 * f", "I(x2 * 1e6)", "I(x2 + 1000)", "when",
                "scale(x2)")
fuzz_offsets <- c("offset(log(depth))", "offset(log(depth) + 5)", "offset(log(depth) - 20)", "")

## One clear line: no C++ backtrace or internals.
expect_clear_error <- function(e, info) {
  msg <- conditionMessage(e)
  expect_true(nzchar(msg) && !grepl("\n", msg) &&
                !grepl("Exception raised from|c10::|frame #|std::|missing value where", msg),
              info = paste(info, "->", msg))
}

## Every post-treatment of a fit: none may error; R^2 in (-Inf, 1] or NA.
check_post_treatments <- function(fit, data, info) {
  grDevices::pdf(NULL)
  on.exit(grDevices::dev.off())
  for (what in c("summary", "standard_error", "predict", "fitted", "residuals", "plot", "coef",
                 "sigma", "vcov", "print")) {
    out <- tryCatch(suppressWarnings(switch(what,
      summary = summary(fit), standard_error = standard_error(fit),
      predict = predict(fit, newdata = data[1:3, ], type = "response"),
      fitted = fitted(fit), residuals = residuals(fit), plot = plot(fit),
      coef = coef(fit), sigma = sigma(fit), vcov = vcov(fit),
      print = utils::capture.output(print(fit)))), error = identity)
    expect_false(inherits(out, "error"),
                 info = paste(info, what, if (inherits(out, "error")) conditionMessage(out)))
  }
  r2 <- fit$R_squared
  expect_true(is.na(r2) || (is.finite(r2) && r2 <= 1 + 1e-12) || identical(r2, -Inf),
              info = paste(info, "R^2 =", format(r2)))
}

run_fuzz <- function(seed, draws) {
  set.seed(seed)
  data <- fuzz_data(n = 36, p = 5)
  for (k in seq_len(draws)) {
    rhs <- c(sample(fuzz_terms, sample(1:2, 1)), sample(fuzz_offsets, 1))
    rhs <- paste(rhs[nzchar(rhs)], collapse = " + ")
    form <- stats::as.formula(paste("Abundance ~", rhs))
    info <- sprintf("seed %d, draw %d: %s", seed, k, rhs)
    fit <- tryCatch(suppressWarnings(PLN(form, data = data)), error = identity)
    if (inherits(fit, "error")) {
      expect_clear_error(fit, info)
      next
    }
    check_post_treatments(fit, data, info)
    tol <- max(0.1, 1e-5 * abs(fit$loglik))

    ## the same model with the covariates rescaled (x1 by 1e4, x2 by 1e-3): the same fit
    scaled <- data
    scaled$x1 <- scaled$x1 * 1e4
    scaled$x2 <- scaled$x2 * 1e-3
    rescaled <- if (!grepl("poly|ns\\(|bs\\(|I\\(|scale|when|:|\\*", rhs))
      tryCatch(suppressWarnings(PLN(form, data = scaled)), error = identity)
    if (inherits(rescaled, "PLNfit")) {
      expect_equal(rescaled$loglik, fit$loglik, tolerance = 1e-5, info = paste(info, "rescaled"))
      if (is.finite(fit$R_squared) && is.finite(rescaled$R_squared))
        expect_equal(rescaled$R_squared, fit$R_squared, tolerance = 1e-4,
                     info = paste(info, "rescaled R^2"))
    }

    ## a wild start: an error naming `init`, or a fit whose "converged" is at the optimum
    d <- nrow(fit$model_par$B)
    p <- ncol(data$Abundance)
    n <- nrow(data)
    init <- switch(sample(c("B", "S", "M"), 1),
                   B = list(B = matrix(stats::runif(d * p, -12, 12), d, p)),
                   S = list(S = matrix(10^stats::runif(1, -3, 1.5), n, p)),
                   M = list(M = matrix(stats::runif(n * p, -15, 15), n, p)))
    wild <- tryCatch(suppressWarnings(PLN(form, data = data, control = PLN_param(init = init))),
                     error = identity)
    winfo <- paste(info, "init", names(init))
    if (inherits(wild, "error")) {
      expect_clear_error(wild, winfo)
      expect_match(conditionMessage(wild), "init", info = winfo)
    } else {
      check_post_treatments(wild, data, winfo)
      if (identical(wild$optim_par$status, "converged"))
        expect_gte(wild$loglik, fit$loglik - tol, label = winfo)
    }
  }
}

test_that("random formulas and starts: clear errors or fits whose post-treatments work (fixed seed)", {
  run_fuzz(20261208L, draws = 8)
})

test_that("random formulas and starts: clear errors or fits whose post-treatments work (a seed per run)", {
  seed <- as.integer(Sys.getenv("PLNTORCH_FUZZ_SEED", NA))
  if (is.na(seed)) seed <- as.integer(as.numeric(Sys.time()) %% 1e6)
  message("test-fuzz: formulas seed ", seed, " (replay with PLNTORCH_FUZZ_SEED=", seed, ")")
  run_fuzz(seed, draws = 6)
})
