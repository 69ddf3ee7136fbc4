#!/usr/bin/env Rscript
# PLN-PCA against PLNmodels: the log-likelihood of every rank, and the time of the whole collection,
# of plntorch's PLNPCA() (default control, one engine call for all ranks) and PLNmodels' PLNPCA()
# (its default control, nlopt), on oaks, mollusk, microcosm and scRNA.
#
#   Rscript inst/bench/pca-validation.R                    all data sets, ranks 1:5
#   Rscript inst/bench/pca-validation.R --only oaks,mollusk
#   Rscript inst/bench/pca-validation.R --ranks 1:10
#   Rscript inst/bench/pca-validation.R --plnmodels-cache DIR
#                 PLNmodels' results are read from DIR/plnm-<data>.rds when there, else fitted
#                 and saved there (PLNmodels takes minutes on scRNA)
#   Rscript inst/bench/pca-validation.R --compare-starts   also fit with PLNPCA_param(start =
#                 "warm") and "svd" (the default "best" runs both and keeps the higher)
#   Rscript inst/bench/pca-validation.R --refresh --plnmodels-cache DIR --save
#                 no plntorch fits: the day's CSV, with PLNmodels' columns filled in from DIR
#                 for the rows that lacked them (PLNmodels finished after plntorch)
#   Rscript inst/bench/pca-validation.R --device cuda [--dtype float32] --only scRNA --ranks 1:10 --save
#                 plntorch on the GPU (PLNPCA_param(device = , dtype = )); --save then writes
#                 pca-validation-<date>-<device>.csv and .md (PLNmodels' columns from the cache when
#                 given, else filled in later on the CPU machine with --refresh FILE)
#   Rscript inst/bench/pca-validation.R --refresh FILE --plnmodels-cache DIR --save
#                 the same for a given results CSV (e.g. one written on the GPU machine)
#   Rscript inst/bench/pca-validation.R --out DIR ...       write the results under DIR
#                 (default inst/bench/results)
#   Rscript inst/bench/pca-validation.R --save             also write
#                 inst/bench/results/pca-validation-<date>.csv and .md, and
#                 inst/extdata/pca-reference.csv (PLNmodels' logliks, which the tests read); rows
#                 of other data sets already in that day's CSV are kept (runs by data set merge)
#
# Run from the package root with plntorch installed; PLNmodels is used through PLNmodels:: when
# installed (never attached: both packages export PLNPCA()). A plntorch rank is at PLNmodels'
# optimum when its loglik is at least PLNmodels' minus max(0.1, 1e-5 |loglik|).
suppressPackageStartupMessages(library(plntorch))

args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  i <- match(name, args)
  if (is.na(i)) default else args[i + 1L]
}
only <- opt("--only", NULL)
ranks <- eval(parse(text = opt("--ranks", "1:5")))
cache <- opt("--plnmodels-cache", NULL)
save <- "--save" %in% args
device <- opt("--device", "cpu")
dtype <- opt("--dtype", NULL)
out_dir <- opt("--out", "inst/bench/results")
control <- PLNPCA_param(device = device, dtype = dtype)
## Where plntorch ran (kept in the CSV: a GPU run is completed with PLNmodels' columns elsewhere).
machine <- if (device == "cpu") sprintf("%d-core CPU", parallel::detectCores()) else
  tryCatch(system("nvidia-smi --query-gpu=name --format=csv,noheader", intern = TRUE)[1],
           error = function(e) device)
compare_starts <- "--compare-starts" %in% args
command <- paste(c("Rscript inst/bench/pca-validation.R", args), collapse = " ")

sets <- list(
  oaks = list(data = function() plntorch::oaks, formula = Abundance ~ 1 + offset(log(Offset))),
  mollusk = list(data = function() plntorch::mollusk, formula = Abundance ~ 1),
  microcosm = list(data = function() plntorch::microcosm,
                   formula = Abundance ~ 1 + offset(log(Offset))),
  ## ranks 1:3 only by default: PLNmodels takes tens of minutes per rank there on 2 cores
  scRNA = list(data = function() plntorch::scRNA, formula = counts ~ 1 + offset(log(total_counts)),
               ranks = 1:3)
)
if (!is.null(only)) sets <- sets[strsplit(only, ",", fixed = TRUE)[[1]]]
have_plnm <- requireNamespace("PLNmodels", quietly = TRUE)

plnmodels_fit <- function(name, s) {
  f <- if (!is.null(cache)) file.path(cache, paste0("plnm-", name, ".rds"))
  if (!is.null(f) && file.exists(f)) {
    r <- readRDS(f)
    if (all(ranks %in% r$rank)) return(r[r$rank %in% ranks, ])
  }
  if (!have_plnm) return(NULL)
  dat <- s$data()
  t <- system.time(pca <- PLNmodels::PLNPCA(s$formula, data = dat, ranks = ranks,
                                             control = PLNmodels::PLNPCA_param(trace = 0)))[["elapsed"]]
  r <- data.frame(data = name, rank = ranks,
                  loglik = sapply(ranks, function(q) pca$getModel(q)$loglik),
                  BIC = sapply(ranks, function(q) pca$getModel(q)$BIC),
                  ICL = sapply(ranks, function(q) pca$getModel(q)$ICL),
                  nb_param = sapply(ranks, function(q) pca$getModel(q)$nb_param),
                  R2 = sapply(ranks, function(q) pca$getModel(q)$R_squared),
                  seconds = t)
  if (!is.null(f)) saveRDS(r, f)
  r
}

## plntorch's rows with PLNmodels' columns (when PLNmodels' results `pm` are there) and the gap.
with_plnmodels <- function(out, pm) {
  if (is.null(pm)) return(out)
  out$plnmodels_loglik <- pm$loglik[match(out$rank, pm$rank)]
  out$plnmodels_ICL <- pm$ICL[match(out$rank, pm$rank)]
  out$plnmodels_seconds <- pm$seconds[1]
  out$gap <- out$plntorch_loglik - out$plnmodels_loglik
  out$at_optimum <- out$gap >= -pmax(0.1, 1e-5 * abs(out$plnmodels_loglik))
  out
}

refresh <- "--refresh" %in% args
refresh_file <- opt("--refresh", NULL)
if (refresh && (is.null(refresh_file) || startsWith(refresh_file, "--"))) refresh_file <- NULL
rows <- list()
all_ranks <- ranks
if (refresh) {
  old <- utils::read.csv(if (!is.null(refresh_file)) refresh_file else
    file.path(out_dir, paste0("pca-validation-", format(Sys.Date()), ".csv")))
  devs <- if (is.null(old$device)) character() else stats::na.omit(old$device)
  if (length(devs)) device <- sub(":.*", "", devs[1])
  sets <- sets[intersect(names(sets), unique(old$data))]
}
for (name in names(sets)) {
  s <- sets[[name]]
  ranks <- if (!is.null(s$ranks) && !"--ranks" %in% args) s$ranks else all_ranks
  if (refresh) {
    out <- old[old$data == name, , drop = FALSE]
    ranks <- out$rank
    rows[[name]] <- with_plnmodels(out, plnmodels_fit(name, s))
    next
  }
  dat <- s$data()
  t <- system.time(pca <- PLNPCA(s$formula, data = dat, ranks = ranks,
                                 control = control))[["elapsed"]]
  if (compare_starts) {
    tw <- system.time(warm <- PLNPCA(s$formula, data = dat, ranks = ranks,
                                     control = PLNPCA_param(start = "warm")))[["elapsed"]]
    tc <- system.time(cold <- PLNPCA(s$formula, data = dat, ranks = ranks,
                                     control = PLNPCA_param(start = "svd")))[["elapsed"]]
  }
  pm <- plnmodels_fit(name, s)
  cr <- pca$criteria
  out <- data.frame(data = name, n = nrow(dat), p = pca$fits[[1]]$p, rank = cr$rank,
                    plntorch_loglik = cr$loglik, plntorch_ICL = cr$ICL,
                    plntorch_steps = sapply(pca$fits, function(m) m$optim_par$steps),
                    plntorch_status = sapply(pca$fits, function(m) m$optim_par$status),
                    plntorch_seconds = t, device = pca$optim_par$device,
                    dtype = pca$optim_par$dtype, machine = machine,
                    libtorch = pln_backends()$libtorch, date = format(Sys.Date()))
  if (compare_starts) {
    out$warm_loglik <- warm$criteria$loglik
    out$warm_seconds <- tw
    out$svd_loglik <- cold$criteria$loglik
    out$svd_seconds <- tc
  }
  out <- with_plnmodels(out, pm)
  print(out)
  rows[[name]] <- out
}
res <- do.call(rbind, rows)
rownames(res) <- NULL

if (save) {
  day <- if (refresh && !is.null(refresh_file))
    regmatches(refresh_file, regexpr("[0-9]{4}-[0-9]{2}-[0-9]{2}", refresh_file)) else format(Sys.Date())
  if (!length(day)) day <- format(Sys.Date())
  dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
  base <- file.path(out_dir, paste0("pca-validation-", day, if (device != "cpu") paste0("-", device)))
  merge_rows <- function(new, file) {
    if (!file.exists(file)) return(new)
    old <- utils::read.csv(file)
    old <- old[!old$data %in% new$data, , drop = FALSE]
    for (col in setdiff(names(new), names(old))) old[[col]] <- rep(NA, nrow(old))
    for (col in setdiff(names(old), names(new))) new[[col]] <- rep(NA, nrow(new))
    rbind(old[, names(new)], new)
  }
  res <- merge_rows(res, paste0(base, ".csv"))
  utils::write.csv(res, paste0(base, ".csv"), row.names = FALSE)
  if (!is.null(res$plnmodels_loglik) && out_dir == "inst/bench/results") {
    ## by (data, rank): a run of fewer ranks keeps the reference of the others
    ref_new <- res[!is.na(res$plnmodels_loglik), c("data", "rank", "plnmodels_loglik")]
    ref_old <- utils::read.csv("inst/extdata/pca-reference.csv")
    ref_old <- ref_old[!paste(ref_old$data, ref_old$rank) %in% paste(ref_new$data, ref_new$rank), ]
    ref <- rbind(ref_old, ref_new)
    utils::write.csv(ref[!is.na(ref$plnmodels_loglik), ], "inst/extdata/pca-reference.csv",
                     row.names = FALSE)
  }
  fmt <- function(x, d = 2) formatC(as.numeric(x), format = "f", digits = d, big.mark = "")
  info <- pln_backends()
  md <- c(
    sprintf("# PLN-PCA: plntorch against PLNmodels %s (%s)",
            if (have_plnm) as.character(utils::packageVersion("PLNmodels")) else "(cached)", day),
    "",
    sprintf("Command: `%s` (the rows of earlier runs of the day kept). plntorch %s, LibTorch %s, %d thread(s), default backend, R %s, %s.",
            command, utils::packageVersion("plntorch"), info$libtorch, info$threads,
            getRversion(), utils::sessionInfo()$running),
    if (!is.null(res$machine) && !is.na(res$machine[1]) && device != "cpu")
      sprintf("plntorch ran on %s (%s, %s, LibTorch %s, %s); PLNmodels on this CPU machine, one core.",
              res$machine[1], res$device[1], res$dtype[1], res$libtorch[1], res$date[1]),
    sprintf("Load average when written (the machine is shared; times compare only within a run): %s.",
            paste(strsplit(readLines("/proc/loadavg"), " ")[[1]][1:3], collapse = ", ")),
    "Each PLNPCA() call fits every rank (elapsed seconds of the whole call, ranks included);",
    "PLNmodels with its default control. gap = plntorch loglik - PLNmodels loglik.",
    "",
    "| data | n x p | rank | plntorch loglik | PLNmodels loglik | gap | plntorch steps | plntorch s | PLNmodels s |",
    "|---|---|---|---|---|---|---|---|---|",
    sprintf("| %s | %d x %d | %d | %s | %s | %s | %d | %s | %s |", res$data, res$n, res$p, res$rank,
            fmt(res$plntorch_loglik), fmt(res$plnmodels_loglik), fmt(res$gap),
            res$plntorch_steps, fmt(res$plntorch_seconds, 1), fmt(res$plnmodels_seconds, 1)))
  if (!is.null(res$warm_loglik) && !all(is.na(res$warm_loglik)))
    md <- c(md, "", "The starts: `start = \"warm\"` (each rank from the previous rank's optimum), `\"svd\"`",
            "(every rank from the SVD start, PLNmodels'), and the default `\"best\"` (both, the higher kept):", "",
            "| data | rank | warm loglik | SVD loglik | best loglik | warm s | SVD s | best s |",
            "|---|---|---|---|---|---|---|---|",
            sprintf("| %s | %d | %s | %s | %s | %s | %s | %s |", res$data, res$rank, fmt(res$warm_loglik),
                    fmt(res$svd_loglik), fmt(res$plntorch_loglik), fmt(res$warm_seconds, 1),
                    fmt(res$svd_seconds, 1), fmt(res$plntorch_seconds, 1)))
  writeLines(md, paste0(base, ".md"))
  cat("wrote", paste0(base, c(".csv", ".md")), "\n")
}
