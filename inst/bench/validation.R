#!/usr/bin/env Rscript
# The validation table: every model of inst/extdata/validation-reference.csv (trichoptera,
# barents, mollusk, microcosm, oaks; an intercept-only model and one with covariates each) fitted
# in one run by plntorch's PLN() with its default control, once per backend of this build, and by
# PLNmodels' PLN() with its builtin and nlopt backends when PLNmodels is installed. Each whole
# PLN() call is timed (elapsed seconds, package already loaded).
#
#   Rscript inst/bench/validation.R                         all data sets
#   Rscript inst/bench/validation.R --only trichoptera,mollusk
#   Rscript inst/bench/validation.R --reps 5                best of 5 runs for fits under 5 s
#                                                           (default 3; longer fits run once)
#   Rscript inst/bench/validation.R --skip-plnmodels        plntorch only (gaps then refer to the
#                                                           reference CSV)
#   Rscript inst/bench/validation.R --save                  also write
#                                  inst/bench/results/validation-<date>.csv and .md
#   Rscript inst/bench/validation.R --from FILE.csv --save  no fits: the report (and .md) of a
#                                                           saved run, from its CSV
#   Rscript inst/bench/validation.R --covariance diagonal,spherical,fixed,genpop
#                                  the other covariance structures (default: full); "fixed" with
#                                  Omega = I, "genpop" with C = 0.5^|j - k| (an AR(1) correlation)
#   Rscript inst/bench/validation.R --covariance ... --reference FILE.csv
#                                  also write PLNmodels' log-likelihoods of each case to FILE.csv
#                                  (inst/extdata/covariance-reference.csv, which the tests read)
#
# Run it from the package root. Models: Abundance ~ <rhs> + offset(log(Offset)), except mollusk,
# Abundance ~ <rhs> without offset (PLNmodels' own model for it). The fit to reach is the better
# of PLNmodels' two log-likelihoods measured in this run; a plntorch fit is at the optimum when
# its log-likelihood is at least that minus the tolerance max(0.1, 1e-5 * |best|) (microcosm:
# 2.2). The speed-up is the time of the faster PLNmodels backend within that tolerance of the
# best, divided by plntorch's time.
suppressPackageStartupMessages(library(plntorch))

## ---- options
args <- commandArgs(trailingOnly = TRUE)
known <- c("--only", "--reps", "--skip-plnmodels", "--save", "--from", "--covariance",
           "--reference")
flags <- grep("^--", args, value = TRUE)
if (length(bad <- setdiff(flags, known)))
  stop("unknown option ", paste(bad, collapse = ", "), "; known: ", paste(known, collapse = ", "),
       call. = FALSE)
option_value <- function(name, default) {
  i <- match(name, args)
  if (is.na(i)) return(default)
  if (i == length(args) || startsWith(args[i + 1], "--"))
    stop(name, " needs a value", call. = FALSE)
  args[i + 1]
}
reps <- as.integer(option_value("--reps", "3"))
if (is.na(reps) || reps < 1) stop("--reps must be a positive integer", call. = FALSE)
only <- option_value("--only", NULL)
save <- "--save" %in% args
from <- option_value("--from", NULL)
covariances <- strsplit(option_value("--covariance", "full"), ",", fixed = TRUE)[[1]]
reference_out <- option_value("--reference", NULL)
command <- paste(c("Rscript inst/bench/validation.R", args), collapse = " ")

plnm_version <- if ("--skip-plnmodels" %in% args) {
  "skipped (--skip-plnmodels)"
} else if (requireNamespace("PLNmodels", quietly = TRUE)) {
  as.character(utils::packageVersion("PLNmodels"))
} else {
  "not installed"
}
run_plnm <- grepl("^[0-9]", plnm_version)
if (!run_plnm && !("--from" %in% args))
  cat("PLNmodels", plnm_version, "-- its rows are left NA; gaps refer to the reference CSV's",
      "best log-likelihood.\n")
regenerated <- NULL

## ---- what to fit
## The package root's copy when run from there, else the installed one.
ref_file <- file.path("inst", "extdata", "validation-reference.csv")
if (!file.exists(ref_file))
  ref_file <- system.file("extdata", "validation-reference.csv", package = "plntorch")
ref <- utils::read.csv(ref_file, stringsAsFactors = FALSE)
if (!is.null(only)) {
  only <- strsplit(only, ",", fixed = TRUE)[[1]]
  if (length(bad <- setdiff(only, ref$data)))
    stop("--only: unknown data set ", paste(bad, collapse = ", "), "; known: ",
         paste(unique(ref$data), collapse = ", "), call. = FALSE)
  ref <- ref[ref$data %in% only, ]
}
tolerance <- function(data, best) ifelse(data == "microcosm", 2.2, pmax(0.1, 1e-5 * abs(best)))

load_data <- function(name) {
  env <- new.env()
  utils::data(list = name, package = "plntorch", envir = env)
  env[[name]]
}

## The covariance structure's arguments, in both packages' PLN_param(): "fixed" with Omega = I,
## "genpop" with an AR(1) correlation matrix C = 0.5^|j - k|.
structure_args <- function(covariance, p) {
  switch(covariance,
         fixed = list(covariance = covariance, Omega = diag(p)),
         genpop = list(covariance = covariance, C = 0.5^abs(outer(seq_len(p), seq_len(p), "-"))),
         list(covariance = covariance))
}

model_formula <- function(rhs, offset) {
  stats::as.formula(paste("Abundance ~", rhs, if (offset) "+ offset(log(Offset))"))
}

## Best of `reps` elapsed times of fit_once() (one run when the first takes 5 s or more);
## an error is kept as the row's status so that the run goes on.
time_fit <- function(fit_once) {
  best <- Inf
  for (r in seq_len(reps)) {
    t0 <- proc.time()[["elapsed"]]
    fit <- tryCatch(fit_once(), error = function(e) e)
    if (inherits(fit, "error")) return(list(fit = NULL, seconds = NA_real_,
                                            error = conditionMessage(fit)))
    best <- min(best, proc.time()[["elapsed"]] - t0)
    if (best >= 5) break
  }
  list(fit = fit, seconds = best, error = NULL)
}

## One row of the table from a timed fit (`timed` NULL: not run, `why` says why).
fit_row <- function(case, covariance, implementation, timed, why = NA_character_) {
  fit <- timed$fit
  op <- if (is.null(fit)) list() else fit$optim_par
  is_torch <- startsWith(implementation, "plntorch")
  status <- if (!is.null(timed$error)) "error" else if (is.null(fit)) why else
    as.character(op$status)
  row <- data.frame(
    data = case$data, n = case$n, p = case$p, rhs = case$rhs, offset = case$offset,
    covariance = covariance, implementation = implementation,
    optimizer = if (is_torch && !is.null(fit)) op$optimizer else NA_character_,
    steps = if (is_torch && !is.null(fit)) as.integer(op$steps) else NA_integer_,
    status = status,
    seconds = if (is.null(fit)) NA_real_ else timed$seconds,
    loglik = if (is.null(fit)) NA_real_ else fit$loglik,
    stringsAsFactors = FALSE)
  cat(sprintf("  %-50s %-18s %s\n", paste(case$data, "~", case$rhs, sprintf("(%s)", covariance)),
              implementation,
              if (!is.null(timed$error)) paste("error:", timed$error)
              else if (is.null(fit)) paste("not run:", why)
              else sprintf("%8s s  loglik %12.2f  %s", format_seconds(row$seconds), row$loglik,
                           status)))
  row
}

format_seconds <- function(s) {
  ifelse(is.na(s), "", ifelse(s < 1, sprintf("%.3f", s), sprintf("%.2f", s)))
}
format_speedup <- function(x) ifelse(x < 1, sprintf("%.2fx", x), sprintf("%.1fx", x))

## ---- the fits (or a saved run's rows)
backends <- pln_backends()$backends
rows <- list()
if (!is.null(from)) {
  saved <- utils::read.csv(from, stringsAsFactors = FALSE)
  if (!"covariance" %in% names(saved)) saved$covariance <- "full"
  rows <- list(saved[, c("data", "n", "p", "rhs", "offset", "covariance", "implementation",
                         "optimizer", "steps", "status", "seconds", "loglik")])
  plnm_version <- as.character(saved$plnmodels[1])
  run_plnm <- grepl("^[0-9]", plnm_version)
  regenerated <- sprintf("This report was regenerated from that run's CSV by `%s`.", command)
  command <- if ("command" %in% names(saved)) saved$command[1] else
    "Rscript inst/bench/validation.R --save"
}
for (i in seq_len(if (is.null(from)) nrow(ref) else 0L)) {
  case <- ref[i, ]
  dat <- load_data(case$data)
  stopifnot(nrow(dat) == case$n, ncol(dat$Abundance) == case$p)
  form <- model_formula(case$rhs, case$offset)
  for (cv in covariances) {
    sargs <- structure_args(cv, case$p)
    for (be in backends) {
      timed <- time_fit(function()
        PLN(form, data = dat, control = do.call(PLN_param, c(list(backend = be), sargs))))
      rows[[length(rows) + 1]] <- fit_row(case, cv, paste("plntorch", be), timed)
    }
    for (bk in c("builtin", "nlopt")) {
      timed <- if (run_plnm) time_fit(function() {
        PLNmodels::PLN(form, data = dat, control = do.call(PLNmodels::PLN_param,
                                                           c(list(backend = bk, trace = 0), sargs)))
      })
      rows[[length(rows) + 1]] <- fit_row(case, cv, paste("PLNmodels", bk), timed,
                                          why = plnm_version)
    }
  }
}
tab <- do.call(rbind, rows)

## ---- the fit to reach, gaps and speed-ups, per (data, rhs, covariance)
is_plnm <- startsWith(tab$implementation, "PLNmodels")
key <- paste(tab$data, tab$rhs, tab$covariance)
## References: PLNmodels' full-covariance fits (inst/extdata/validation-reference.csv) and, when
## present, its other structures' (covariance-reference.csv, written by --reference).
cov_ref_file <- sub("validation-reference", "covariance-reference", ref_file)
all_ref <- ref
all_ref$covariance <- "full"
if (file.exists(cov_ref_file))
  all_ref <- rbind(all_ref[, c("data", "rhs", "covariance", "best_loglik")],
                   utils::read.csv(cov_ref_file)[, c("data", "rhs", "covariance", "best_loglik")])
ref_best <- all_ref$best_loglik[match(key, paste(all_ref$data, all_ref$rhs, all_ref$covariance))]
measured_best <- ave(ifelse(is_plnm, tab$loglik, NA), key,
                     FUN = function(x) if (all(is.na(x))) NA_real_ else max(x, na.rm = TRUE))
tab$best_from_reference <- is.na(measured_best)
tab$best_plnm <- ifelse(is.na(measured_best), ref_best, measured_best)
tab$tolerance <- tolerance(tab$data, tab$best_plnm)
tab$gap <- tab$loglik - tab$best_plnm
tab$at_optimum <- tab$gap >= -tab$tolerance
tab$plnm_seconds <- ave(ifelse(is_plnm & tab$at_optimum, tab$seconds, NA), key,
                        FUN = function(x) if (all(is.na(x))) NA_real_ else min(x, na.rm = TRUE))
tab$speedup <- ifelse(is_plnm, NA, tab$plnm_seconds / tab$seconds)

## ---- report
cpu <- tryCatch(sub(".*: *", "", grep("^model name", readLines("/proc/cpuinfo"), value = TRUE)[1]),
                error = function(e) NA_character_)
info <- pln_backends()
machine <- if (is.null(from)) data.frame(
  date = format(Sys.Date()), cores = parallel::detectCores(), cpu = cpu,
  r_version = paste(R.version$major, R.version$minor, sep = "."), libtorch = info$libtorch,
  torch_threads = info$threads, plnmodels = plnm_version, command = command,
  stringsAsFactors = FALSE) else
  saved[1, intersect(c("date", "cores", "cpu", "r_version", "libtorch", "torch_threads",
                       "plnmodels", "command"), names(saved))]

markdown_table <- function(tab) {
  model <- paste("~", tab$rhs, ifelse(tab$offset, "+ offset(log(Offset))", "(no offset)"),
                 ifelse(tab$covariance == "full", "", sprintf("[%s]", tab$covariance)))
  impl <- ifelse(is.na(tab$optimizer), tab$implementation,
                 sprintf("%s (%s)", tab$implementation, tab$optimizer))
  loglik <- ifelse(is.na(tab$loglik), "", sprintf("%.2f", tab$loglik))
  gap <- ifelse(is.na(tab$gap), "", sprintf("%+.2f", tab$gap))
  gap <- ifelse(!is.na(tab$at_optimum) & !tab$at_optimum, paste0("**", gap, "**"), gap)
  gap <- ifelse(tab$best_from_reference & gap != "", paste(gap, "(ref.)"), gap)
  speedup <- ifelse(is.na(tab$speedup), "", format_speedup(tab$speedup))
  c(paste("| data | n x p | model | implementation | steps | status | seconds | loglik",
          "| gap to PLNmodels best | speed-up |"),
    "|---|---|---|---|---|---|---|---|---|---|",
    sprintf("| %s | %d x %d | %s | %s | %s | %s | %s | %s | %s | %s |", tab$data, tab$n, tab$p,
            model, impl, ifelse(is.na(tab$steps), "", tab$steps), tab$status,
            format_seconds(tab$seconds), loglik, gap, speedup))
}

## The summary is about what a user gets: the default backend (PLN() with default control).
torch_rows <- !is_plnm & !is.na(tab$loglik)
default_rows <- torch_rows & tab$implementation == paste("plntorch", info$default_backend)
slowest <- function(rows) {
  if (!any(rows)) return("not measured")
  j <- which(rows)[which.min(tab$speedup[rows])]
  sprintf("%s (%s ~ %s)", format_speedup(tab$speedup[j]), tab$data[j], tab$rhs[j])
}
big <- default_rows & !is.na(tab$plnm_seconds) & tab$plnm_seconds > 0.5
small <- default_rows & !is.na(tab$plnm_seconds) & tab$plnm_seconds <= 0.5
summary_line <- sprintf(paste(
  "Summary: %d of %d plntorch fits (every backend) at PLNmodels' best log-likelihood (within",
  "tolerance); the default backend (%s): smallest speed-up %s where PLNmodels needs more than",
  "0.5 s, %s where it needs less."),
  sum(tab$at_optimum[torch_rows]), sum(torch_rows), info$default_backend, slowest(big),
  slowest(small))

## One row per model: the default backend against PLNmodels' two backends (the README's table).
compact_table <- function(tab) {
  keys <- unique(key)
  one <- function(k, impl) tab[key == k & tab$implementation == impl, ][1, ]
  lines <- vapply(keys, function(k) {
    d <- one(k, paste("plntorch", info$default_backend))
    b <- one(k, "PLNmodels builtin")
    nl <- one(k, "PLNmodels nlopt")
    ll <- function(r) if (is.na(r$loglik)) "" else sprintf("%.2f", r$loglik)
    sprintf("| %s | %d x %d | ~ %s%s | %s | %s | %s (%s s) | %s (%s s) | %s | %s |", d$data, d$n,
            d$p, d$rhs, if (d$covariance == "full") "" else sprintf(" [%s]", d$covariance), ll(d), format_seconds(d$seconds), ll(b), format_seconds(b$seconds), ll(nl),
            format_seconds(nl$seconds), sprintf("%+.2f", d$gap),
            if (is.na(d$speedup)) "" else format_speedup(d$speedup))
  }, character(1))
  c(sprintf(paste("| data | n x p | model | plntorch %s loglik | s | PLNmodels builtin | PLNmodels nlopt",
                  "| gap | speed-up |"), info$default_backend),
    "|---|---|---|---|---|---|---|---|---|", unname(lines))
}

report <- c(
  sprintf(paste("Validation of plntorch against PLNmodels, %s. Machine: %d cores (%s), R %s,",
                "LibTorch %s (%d threads), PLNmodels %s. Command: `%s`."),
          machine$date, machine$cores, machine$cpu, machine$r_version, machine$libtorch,
          machine$torch_threads, machine$plnmodels, command),
  regenerated,
  "",
  "Each row is one `PLN()` call with the default control, `PLN_param(backend = b)` in both",
  "packages (PLNmodels with `trace = 0` besides, which only silences it); seconds: elapsed",
  sprintf("time of the whole call, %s.",
          if (reps == 1) "one run" else sprintf("best of %d runs for fits under 5 s", reps)),
  "Steps: plntorch's optimisation steps; status: plntorch's, or PLNmodels' `optim_par$status`.",
  "Gap: log-likelihood minus the better of PLNmodels' two in this run, in bold when below it by",
  "more than the tolerance max(0.1, 1e-5 |best|) (microcosm: 2.2).",
  if (any(tab$best_from_reference))
    "(ref.): PLNmodels not run; gap to the best of `inst/extdata/validation-reference.csv`.",
  "Speed-up: time of the faster PLNmodels backend within the tolerance of the best, divided by",
  "plntorch's time.",
  "",
  sprintf("The default backend (%s) against PLNmodels, one row per model:", info$default_backend),
  "",
  compact_table(tab),
  "",
  "Every fit:",
  "",
  markdown_table(tab),
  "",
  summary_line)

cat("\n", report, sep = "\n")

if (save) {
  dir.create(file.path("inst", "bench", "results"), showWarnings = FALSE, recursive = TRUE)
  stem <- file.path("inst", "bench", "results", paste0("validation-", machine$date,
                    if (!identical(covariances, "full")) "-covariance"))
  utils::write.csv(cbind(machine, tab), paste0(stem, ".csv"), row.names = FALSE)
  writeLines(report, paste0(stem, ".md"))
  cat("\nwritten:", paste0(stem, c(".csv", ".md")), "\n")
}

## PLNmodels' log-likelihoods of each case, for the tests (structures other than full).
if (!is.null(reference_out)) {
  plnm <- tab[is_plnm & tab$covariance != "full", ]
  wide <- function(bk) plnm$loglik[plnm$implementation == paste("PLNmodels", bk)]
  one <- plnm[plnm$implementation == "PLNmodels builtin", c("data", "n", "p", "rhs", "offset",
                                                            "covariance")]
  one$builtin_loglik <- wide("builtin")
  one$nlopt_loglik <- wide("nlopt")
  one$best_loglik <- pmax(one$builtin_loglik, one$nlopt_loglik, na.rm = TRUE)
  one$source <- sprintf("PLNmodels %s, %s", plnm_version, machine$date)
  utils::write.csv(one, reference_out, row.names = FALSE)
  cat("written:", reference_out, "\n")
}
