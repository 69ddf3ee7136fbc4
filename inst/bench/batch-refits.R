#!/usr/bin/env Rscript
# The jackknife's refits side by side: one engine call per refit (config_post$batch = 0, the
# fit's backend) against the batched refits (batch = b: b refits solved together in one engine
# call, src/engine/models/pln/refit.cpp), on trichoptera (~ Wind + Temperature, n = 49 refits) and oaks
# (~ tree, n = 116 refits), in one run. Seconds are the post-treatment's alone
# (fit$uncertainty$jackknife$seconds, the median of --reps runs); `rel_diff_var_B` is the largest
# relative difference of the jackknife variance of B from the sequential one's (over every
# coefficient: those of a species absent from every sample of a level, which drift to -Inf and
# that no tolerance determines, make it large on oaks ~ tree; tests/testthat/test-batch-refits.R
# compares identified coefficients at a tight tol); `steps` the
# largest number of iterations of a refit (batched: the joint run's iterations until the refit's
# own rule held) and `iterations` the sum over engine calls of the optimiser's iterations.
#
#   Rscript inst/bench/batch-refits.R                         CPU, print the table
#   Rscript inst/bench/batch-refits.R --save                  also write
#       inst/bench/results/batch-refits-<date>-<device>.csv
#   Rscript inst/bench/batch-refits.R --device cuda --save --out DIR   on a GPU (files in DIR)
#   options: --batches 1,8,32,all (all: every refit in one batch), --reps 3, --only oaks,
#            --threads N (LibTorch's CPU threads; default 1 on the CPU)
suppressPackageStartupMessages(library(plntorch))

args <- commandArgs(trailingOnly = TRUE)
known <- c("--device", "--save", "--out", "--batches", "--reps", "--only", "--threads")
if (length(bad <- setdiff(grep("^--", args, value = TRUE), known)))
  stop("unknown option ", paste(bad, collapse = ", "), "; known: ", paste(known, collapse = ", "),
       call. = FALSE)
opt <- function(name, default) if (name %in% args) args[which(args == name) + 1L] else default
device <- opt("--device", "cpu")
save <- "--save" %in% args
out_dir <- opt("--out", file.path("inst", "bench", "results"))
batches <- strsplit(opt("--batches", "1,8,32,all"), ",")[[1L]]
reps <- as.integer(opt("--reps", "3"))
only <- opt("--only", NULL)
threads <- as.integer(opt("--threads", if (device == "cpu") "1" else "0"))

cases <- list(
  trichoptera = list(data = "trichoptera", formula = Abundance ~ Wind + Temperature + offset(log(Offset))),
  oaks = list(data = "oaks", formula = Abundance ~ tree + offset(log(Offset))))
if (!is.null(only)) cases <- cases[strsplit(only, ",")[[1L]]]

info <- pln_backends()
rows <- list()
for (nm in names(cases)) {
  cs <- cases[[nm]]
  env <- new.env()
  data(list = cs$data, package = "plntorch", envir = env)
  dat <- get(cs$data, envir = env)
  run <- function(batch) {
    fit <- PLN(cs$formula, data = dat, control = PLN_param(
      device = device, num_threads = if (threads > 0) threads,
      config_post = list(jackknife = TRUE, batch = batch)))
    fit$uncertainty$jackknife
  }
  ref <- NULL
  for (b in c(NA, batches)) {  # NA: one engine call per refit (batch = 0)
    if (identical(b, "all")) b <- nrow(dat$Abundance)
    b <- as.integer(b)
    jk <- lapply(seq_len(reps), function(r) run(if (is.na(b)) 0L else b))
    secs <- vapply(jk, function(j) j$seconds, 0)
    j <- jk[[1L]]
    if (is.na(b)) ref <- j
    rows[[length(rows) + 1L]] <- data.frame(
      date = format(Sys.Date()), device = device, data = nm,
      model = paste(deparse(cs$formula[[3L]]), collapse = ""),
      n = nrow(dat$Abundance), p = ncol(dat$Abundance), d = nrow(j$var_B), refits = j$refits,
      method = if (is.na(b)) "sequential" else "batched",
      batch_asked = if (is.na(b)) 0L else b, batch = j$batch,
      seconds = stats::median(secs), seconds_min = min(secs), reps = reps,
      ms_per_refit = 1000 * stats::median(secs) / j$refits,
      steps = max(j$steps), converged = sum(j$status[names(j$status) == "converged"]),
      rel_diff_var_B = max(abs(j$var_B - ref$var_B)) / max(abs(ref$var_B)),
      threads = threads, libtorch = info$libtorch, stringsAsFactors = FALSE)
    cat(sprintf("%-12s %-10s batch %4s: %7.3f s (%.1f ms / refit), steps <= %d, rel.diff %.1e\n",
                nm, rows[[length(rows)]]$method, rows[[length(rows)]]$batch,
                rows[[length(rows)]]$seconds, rows[[length(rows)]]$ms_per_refit,
                rows[[length(rows)]]$steps, rows[[length(rows)]]$rel_diff_var_B))
  }
}
res <- do.call(rbind, rows)
seq_s <- res$seconds[res$method == "sequential"][match(res$data, res$data[res$method == "sequential"])]
res$speedup <- seq_s / res$seconds

cat("\n| data | n x p | refits | method | batch | seconds | ms/refit | speed-up | steps | rel.diff var(B) |\n")
cat("|---|---|---|---|---|---|---|---|---|---|\n")
for (i in seq_len(nrow(res)))
  with(res[i, ], cat(sprintf("| %s | %d x %d | %d | %s | %d | %.3f | %.2f | %.2fx | %d | %.1e |\n",
                             data, n, p, refits, method, batch, seconds, ms_per_refit, speedup,
                             steps, rel_diff_var_B)))
if (save) {
  dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
  dev_name <- if (device == "cpu") "cpu" else {
    g <- tryCatch(system("nvidia-smi --query-gpu=name --format=csv,noheader", intern = TRUE)[1L],
                  error = function(e) "cuda", warning = function(w) "cuda")
    tolower(gsub("[^A-Za-z0-9]+", "-", trimws(g)))
  }
  file <- file.path(out_dir, sprintf("batch-refits-%s-%s.csv", format(Sys.Date()), dev_name))
  utils::write.csv(res, file, row.names = FALSE)
  cat("wrote", file, "\n")
}
