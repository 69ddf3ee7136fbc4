#!/usr/bin/env Rscript
# Two installed builds of plntorch side by side in one run (a refactor's before and after): each
# case fitted by both, in alternating fresh R processes (callr), with the same data and control.
# Reports, per case, the best wall time of each build over --reps runs (the whole PLN() or
# PLNPCA() call, package loaded), the log-likelihoods, steps and statuses, and whether the two
# builds gave the same numbers (log-likelihood and coefficients to 1e-10 relative).
#
#   Rscript inst/bench/compare-builds.R --before LIB1 --after LIB2 [--reps 5] [--threads 1]
#          [--save FILE.csv]
#
# LIB1 and LIB2 are library folders holding an installed plntorch each (R CMD INSTALL
# --library=LIB). Cases: oaks (n = 116, p = 114) and oaks x 100 (rows repeated, n = 11600),
# ~ 1 and ~ tree, every backend on the CPU; PLN-PCA on oaks, ranks 1:3.
args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default = NULL) {
  i <- match(name, args)
  if (is.na(i)) default else args[i + 1]
}
before <- opt("--before"); after <- opt("--after")
if (is.null(before) || is.null(after)) stop("give --before LIB1 and --after LIB2", call. = FALSE)
reps <- as.integer(opt("--reps", "5"))
threads <- as.integer(opt("--threads", "1"))
save <- opt("--save")

cases <- list(
  list(name = "oaks ~ 1", data = "oaks", rhs = "1", kind = "PLN"),
  list(name = "oaks ~ tree", data = "oaks", rhs = "tree", kind = "PLN"),
  list(name = "oaks x100 ~ 1", data = "oaks_x100", rhs = "1", kind = "PLN"),
  list(name = "oaks x100 ~ tree", data = "oaks_x100", rhs = "tree", kind = "PLN"),
  list(name = "oaks PLNPCA 1:3", data = "oaks", rhs = "1", kind = "PLNPCA")
)
backends <- c("fused", "eager", "script")

## One case in a fresh process on one library: the best time over `reps`, and the fit's numbers.
run_case <- function(lib, case, backend, reps, threads) {
  callr::r(function(case, backend, reps, threads) {
    suppressPackageStartupMessages(library(plntorch))
    data(oaks, package = "plntorch")
    dat <- oaks
    if (case$data == "oaks_x100") {
      dat <- oaks[rep(seq_len(nrow(oaks)), 100), ]
      rownames(dat) <- NULL
    }
    f <- stats::as.formula(paste("Abundance ~", case$rhs, "+ offset(log(Offset))"))
    fit_once <- function() {
      if (case$kind == "PLN")
        PLN(f, data = dat, control = PLN_param(backend = backend, num_threads = threads))
      else PLNPCA(f, data = dat, ranks = 1:3,
                  control = PLNPCA_param(backend = backend, num_threads = threads))
    }
    best <- Inf
    for (r in seq_len(reps)) {
      t0 <- proc.time()[["elapsed"]]
      fit <- fit_once()
      best <- min(best, proc.time()[["elapsed"]] - t0)
    }
    if (case$kind == "PLN") {
      list(seconds = best, loglik = fit$loglik, steps = fit$optim_par$steps,
           status = fit$optim_par$status, coef = unname(fit$model_par$B))
    } else {
      fits <- lapply(1:3, function(q) getModel(fit, q))
      list(seconds = best, loglik = sum(vapply(fits, function(m) m$loglik, 0)),
           steps = sum(vapply(fits, function(m) m$optim_par$steps, 0)),
           status = paste(vapply(fits, function(m) m$optim_par$status, ""), collapse = "/"),
           coef = unlist(lapply(fits, function(m) unname(m$model_par$C))))
    }
  }, args = list(case, backend, reps, threads), libpath = c(lib, .libPaths()))
}

rows <- list()
for (case in cases) for (backend in backends) {
  if (case$kind == "PLNPCA" && backend != "fused" && grepl("x100", case$data)) next
  b <- run_case(before, case, backend, reps, threads)
  a <- run_case(after, case, backend, reps, threads)
  same <- isTRUE(all.equal(b$loglik, a$loglik, tolerance = 1e-10)) &&
    isTRUE(all.equal(b$coef, a$coef, tolerance = 1e-10)) && b$steps == a$steps
  rows[[length(rows) + 1]] <- data.frame(
    case = case$name, backend = backend, before_s = round(b$seconds, 3),
    after_s = round(a$seconds, 3), ratio = round(a$seconds / b$seconds, 3),
    loglik_before = b$loglik, loglik_after = a$loglik, steps_before = b$steps,
    steps_after = a$steps, status_after = a$status, same_numbers = same)
  r <- rows[[length(rows)]]
  cat(sprintf("%-18s %-6s before %8.3f s  after %8.3f s  (x%.3f)  loglik %.6f / %.6f  steps %d / %d  %s\n",
              r$case, r$backend, r$before_s, r$after_s, r$ratio, r$loglik_before,
              r$loglik_after, r$steps_before, r$steps_after,
              if (r$same_numbers) "same numbers" else "NUMBERS DIFFER"))
}
tab <- do.call(rbind, rows)
cat(sprintf("\n%d of %d cases give the same numbers; time ratio after / before: median %.3f, range %.3f to %.3f (best of %d runs, %d thread(s))\n",
            sum(tab$same_numbers), nrow(tab), stats::median(tab$ratio), min(tab$ratio),
            max(tab$ratio), reps, threads))
if (!is.null(save)) {
  utils::write.csv(tab, save, row.names = FALSE)
  cat("written:", save, "\n")
}
