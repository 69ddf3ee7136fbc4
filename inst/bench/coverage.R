#!/usr/bin/env Rscript
# Coverage of the 95% intervals B +- 1.96 SE of plntorch's standard errors, by simulation: counts
# drawn by rPLN() with a known B (an intercept and one Gaussian covariate, AR(1) latent
# correlation), fitted by PLN() with the true offsets; per type of standard error, the share of
# intervals (every coefficient of every replicate) that contain the true coefficient, with its
# exact binomial 95% interval, and the ratio of the mean standard error to the standard
# deviation of the estimates across replicates (1 when the SEs are right).
#
#   Rscript inst/bench/coverage.R                 every scenario, printed
#   Rscript inst/bench/coverage.R --reps 100      fewer replicates (default 500; jackknife: 1/10)
#   Rscript inst/bench/coverage.R --save          also write inst/bench/results/coverage-<date>.csv
#
# Run it from the package root (the vignette "toolbox" reads the CSV). Seeds are fixed: a run
# repeats exactly.
suppressPackageStartupMessages(library(plntorch))

args <- commandArgs(trailingOnly = TRUE)
known <- c("--reps", "--save")
if (length(bad <- setdiff(grep("^--", args, value = TRUE), known)))
  stop("unknown option ", paste(bad, collapse = ", "), "; known: ", paste(known, collapse = ", "),
       call. = FALSE)
reps <- if ("--reps" %in% args) as.integer(args[which(args == "--reps") + 1L]) else 500L
save <- "--save" %in% args

## One scenario: p species, n samples, latent variance sigma2 with AR(1) correlation 0.4.
simulate_fit <- function(n, p, sigma2, depth, types) {
  B <- rbind(seq(-1, 1, length.out = p), rep(c(0.5, -0.5, 0.25, 0, 1), length.out = p))
  Sigma <- sigma2 * 0.4^abs(outer(seq_len(p), seq_len(p), "-"))
  x <- stats::rnorm(n)
  Y <- rPLN(n, mu = cbind(1, x) %*% B, Sigma = Sigma, depths = depth)
  df <- data.frame(x = x); df$Y <- Y; df$O <- attr(Y, "offsets")
  cfg <- if ("jackknife" %in% types) list(jackknife = TRUE) else list()
  fit <- PLN(Y ~ x + offset(O), data = df, control = PLN_param(config_post = cfg))
  est <- as.vector(coef(fit))
  list(est = est, truth = as.vector(B),
       se = vapply(types, function(t) as.vector(standard_error(fit, type = t)), numeric(length(est))))
}

scenarios <- data.frame(
  scenario = c("n300-p5", "n100-p5", "n300-p5-sigma1", "n100-p5-jackknife"),
  n = c(300L, 100L, 300L, 100L), p = 5L, sigma2 = c(0.5, 0.5, 1, 0.5), depth = 2000,
  reps = c(reps, reps, reps, max(20L, reps %/% 10L)),
  types = c("sandwich,variational", "sandwich,variational", "sandwich,variational",
            "jackknife,sandwich"),
  stringsAsFactors = FALSE)

rows <- list()
for (s in seq_len(nrow(scenarios))) {
  sc <- scenarios[s, ]
  types <- strsplit(sc$types, ",")[[1L]]
  set.seed(20261123 + s)
  t0 <- proc.time()[["elapsed"]]
  sims <- lapply(seq_len(sc$reps), function(r) simulate_fit(sc$n, sc$p, sc$sigma2, sc$depth, types))
  secs <- proc.time()[["elapsed"]] - t0
  est <- sapply(sims, `[[`, "est"); truth <- sims[[1L]]$truth
  emp_sd <- apply(est, 1L, stats::sd)
  for (t in types) {
    se <- sapply(sims, function(x) x$se[, t])
    covered <- abs(est - truth) <= stats::qnorm(0.975) * se
    k <- sum(covered, na.rm = TRUE); m <- sum(!is.na(covered))
    ci <- stats::binom.test(k, m)$conf.int
    rows[[length(rows) + 1L]] <- data.frame(
      scenario = sc$scenario, n = sc$n, p = sc$p, d = 2L, sigma2 = sc$sigma2, depth = sc$depth,
      type = t, replicates = sc$reps, intervals = m, covered = k, coverage = k / m,
      lower = ci[1L], upper = ci[2L],
      se_ratio = mean(rowMeans(se, na.rm = TRUE) / emp_sd),
      seconds = secs, stringsAsFactors = FALSE)
  }
  cat(sprintf("%s: %d replicates in %.1f s\n", sc$scenario, sc$reps, secs))
}
res <- do.call(rbind, rows)
print(format(res, digits = 4), row.names = FALSE)
if (save) {
  out <- file.path("inst", "bench", "results", sprintf("coverage-%s.csv", format(Sys.Date())))
  utils::write.csv(res, out, row.names = FALSE)
  cat("written:", out, "\n")
}
