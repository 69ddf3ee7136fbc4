#!/usr/bin/env Rscript
# The default fit's tolerance: every validation model fitted with tol 1e-9, 1e-8 (the default in
# float64) and 1e-7: steps, seconds and the log-likelihood lost against 1e-9. Backs the choice
# of PLN_param()'s default (inst/bench/NOTES-optimiser.md).
#   Rscript inst/bench/tolerance.R
suppressPackageStartupMessages(library(plntorch))
ref <- utils::read.csv(system.file("extdata", "validation-reference.csv", package = "plntorch"))
tols <- c(1e-9, 1e-8, 1e-7)
cat(sprintf("Default fit (backend %s, float64) by tol, %s; seconds of the whole PLN() call.\n\n",
            pln_backends()$default_backend, format(Sys.Date())))
cat("| data | model | loglik at 1e-9 | steps (1e-9 / 1e-8 / 1e-7) | seconds | loglik - loglik at 1e-9 (1e-8 / 1e-7) |\n")
cat("|---|---|---|---|---|---|\n")
for (i in seq_len(nrow(ref))) {
  row <- ref[i, ]
  env <- new.env()
  utils::data(list = row$data, package = "plntorch", envir = env)
  f <- stats::as.formula(paste("Abundance ~", row$rhs, if (row$offset) "+ offset(log(Offset))"))
  r <- vapply(tols, function(tol) {
    t0 <- proc.time()[["elapsed"]]
    fit <- PLN(f, data = env[[row$data]], control = PLN_param(tol = tol))
    c(fit$loglik, fit$optim_par$steps, proc.time()[["elapsed"]] - t0)
  }, numeric(3))
  cat(sprintf("| %s | ~ %s | %.3f | %d / %d / %d | %.3f / %.3f / %.3f | %+.4f / %+.4f |\n",
              row$data, row$rhs, r[1, 1], r[2, 1], r[2, 2], r[2, 3], r[3, 1], r[3, 2], r[3, 3],
              r[1, 2] - r[1, 1], r[1, 3] - r[1, 1]))
}
