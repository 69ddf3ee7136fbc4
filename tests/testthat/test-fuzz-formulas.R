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
  message("test-fuzz-formulas: seed ", seed, " (replay with PLNTORCH_FUZZ_SEED=", seed, ")")
  run_fuzz(seed, draws = 6)
})
