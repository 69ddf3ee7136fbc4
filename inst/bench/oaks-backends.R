#!/usr/bin/env Rscript
# Fits oaks with PLN()'s defaults, prints the fit, then times every backend side by side in this
# one run (CPU, and CUDA when this build sees a GPU): protocol B3 of the benchmarks, plus the
# model with the tree covariate.
#
#   Rscript inst/bench/oaks-backends.R            oaks (n = 116, p = 114)
#   Rscript inst/bench/oaks-backends.R --x100     also oaks rows repeated 100 times (n = 11600)
#   Rscript inst/bench/oaks-backends.R --save     also write inst/bench/results/cpu-<date>.csv
#   Rscript inst/bench/oaks-backends.R --reps 5   best of 5 runs per configuration (default 3)
#
# PLNmodels, when installed, is timed in the same run on the same data.
suppressPackageStartupMessages(library(plntorch))
args <- commandArgs(trailingOnly = TRUE)
reps <- if ("--reps" %in% args) as.integer(args[which(args == "--reps") + 1]) else 3L

data(oaks, package = "plntorch")
cat("== The default fit: PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)\n\n")
fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
print(fit)

info <- pln_backends()
backends <- info$backends
devices <- c("cpu", if (isTRUE(info$cuda)) "cuda")

oaks_x100 <- function() {
  idx <- rep(seq_len(nrow(oaks)), 100)
  big <- oaks[idx, ]
  rownames(big) <- NULL
  big
}

# Best of `reps` wall-clock times of the whole PLN() call, package already loaded.
time_fit <- function(formula, data, control, reps) {
  best <- Inf
  for (r in seq_len(reps)) {
    t0 <- proc.time()[["elapsed"]]
    f <- PLN(formula, data = data, control = control)
    best <- min(best, proc.time()[["elapsed"]] - t0)
  }
  list(fit = f, seconds = best)
}

rows <- list()
add_row <- function(data_name, model, impl, device, dtype, threads, steps, status, seconds,
                    loglik) {
  rows[[length(rows) + 1]] <<- data.frame(
    data = data_name, model = model, implementation = impl, device = device, dtype = dtype,
    threads = threads, steps = steps, status = status, seconds = round(seconds, 3),
    ms_per_step = round(1000 * seconds / steps, 3), loglik = round(loglik, 2))
}

datasets <- list(oaks = oaks)
if ("--x100" %in% args) datasets$oaks_x100 <- oaks_x100()
models <- c("~ 1", "~ tree")

for (dn in names(datasets)) {
  dat <- datasets[[dn]]
  for (model in models) {
    form <- stats::as.formula(paste("Abundance", model, "+ offset(log(Offset))"))
    for (dev in devices) for (be in backends) {
      r <- time_fit(form, dat, PLN_param(backend = be, device = dev),
                    reps = if (dn == "oaks") reps else 1L)
      op <- r$fit$optim_par
      add_row(dn, model, paste0("plntorch ", be, " (", op$optimizer, ")"), dev, op$dtype,
              op$threads, op$steps, op$status, r$seconds, r$fit$loglik)
    }
    if (requireNamespace("PLNmodels", quietly = TRUE)) {
      for (bk in c("builtin", "nlopt")) {
        t0 <- proc.time()[["elapsed"]]
        pm <- suppressWarnings(PLNmodels::PLN(form, data = dat,
                                              control = PLNmodels::PLN_param(backend = bk, trace = 0)))
        sec <- proc.time()[["elapsed"]] - t0
        add_row(dn, model, paste0("PLNmodels ", utils::packageVersion("PLNmodels"), " ", bk), "cpu",
                "float64", NA, NA, "", sec, pm$loglik)
      }
    }
  }
}

tab <- do.call(rbind, rows)
cat(sprintf("\n== Backends side by side (%s; LibTorch %s; %s; best of %d runs on oaks)\n\n",
            format(Sys.time(), "%Y-%m-%d"), info$libtorch, R.version.string, reps))
cat("machine:", sprintf("%d cores (%s)", parallel::detectCores(),
                        tryCatch(sub(".*: *", "", grep("model name", readLines("/proc/cpuinfo"),
                                                      value = TRUE)[1]),
                                 error = function(e) "unknown CPU")), "\n\n")
print(tab, row.names = FALSE)

# The same table in markdown, for the README.
cat("\n| data | model | implementation | device | steps | seconds | ms/step | loglik |\n")
cat("|---|---|---|---|---|---|---|---|\n")
for (i in seq_len(nrow(tab))) with(tab[i, ], cat(sprintf(
  "| %s | %s | %s | %s | %s | %.3f | %s | %.2f |\n", data, model, implementation, device,
  ifelse(is.na(steps), "", steps), seconds, ifelse(is.na(ms_per_step), "", ms_per_step),
  loglik)))

if ("--save" %in% args) {
  dir.create(file.path("inst", "bench", "results"), showWarnings = FALSE, recursive = TRUE)
  out <- file.path("inst", "bench", "results", paste0("cpu-", format(Sys.Date()), ".csv"))
  utils::write.csv(cbind(date = format(Sys.Date()), libtorch = info$libtorch, tab), out,
                   row.names = FALSE)
  cat("\nwritten:", out, "\n")
}
