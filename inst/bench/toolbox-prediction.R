#!/usr/bin/env Rscript
# Prediction side by side: plntorch's predict() (population, and with the new samples' counts, a
# VE step) and predict_cond() against PLNmodels 1.3.2's, on oaks and the validation sets
# (trichoptera, barents, mollusk, microcosm: 880 x 259, the largest, nine counts in ten zero). Each
# data set is split: every fifth sample is held out (the new samples), the others fitted by both
# packages (same model, default controls). On the held-out samples both packages predict:
#   predict(fit, newdata)                         the population prediction O + X B
#   predict(fit, newdata, responses = Y)          O + M, M from a VE step on the samples' counts
#   predict_cond(fit, newdata, Y[, observed])     the other species given the observed half (the
#                                                 most abundant half of the species)
# Two differences per quantity: "pipeline", plntorch's fit and prediction against PLNmodels'
# (their fits differ, so their B and Sigma do), and "VE step", plntorch's prediction from
# PLNmodels' own B, Sigma and Omega against PLNmodels' (the VE step alone: both maximise the same
# strictly concave function of M and S^2; "VE ELBO gain" is plntorch's ELBO of the held-out
# samples minus PLNmodels' there, at PLNmodels' B and Omega: >= 0 where plntorch's VE step went
# further; "ve_elbo_gain_min_sample" the smallest of one sample's, each sample's problem its own). The fits' own difference on the held-out samples is the population prediction's row.
# Link-scale quantities: largest absolute difference; response-scale ones: largest relative
# difference; both over the entries that both fits predict at more than 1e-6 expected counts from
# covariates alone (a species absent from every fitted sample of a factor's level has its
# coefficient drift to -Inf, to a point each package stops at differently: "absent" either way).
# Over the same entries, the Pearson correlation of the two predictions (pipeline_cor, ve_step_cor).
# Seconds: best of three elapsed times of one call on the held-out samples (the VE step: predict(responses =);
# predict_cond(var_par = TRUE)), plntorch's from its own fit and from PLNmodels' parameters (the
# VE step alone: a fit whose coefficients drift further to -Inf starts its VE step further from
# the optimum where a held-out sample has counts of a species absent from its level in the fitted
# samples). A PLNmodels call that fails leaves its rows NA with its message
# in `note`, and the run goes on.
#
#   R_LIBS=<plntorch lib>:/tmp/plnm-lib Rscript inst/bench/toolbox-prediction.R [--save]
#       [--only oaks,trichoptera,microcosm] [--reference]
#
# --save writes inst/bench/results/prediction-<date>.{csv,md} (with --only, the rows of the other
# data sets in that day's files are kept); --reference writes
# inst/extdata/prediction-reference.csv (PLNmodels' B, Sigma and predictions for trichoptera,
# which tests/testthat/test-prediction.R reads). Run it from the package root.
suppressPackageStartupMessages(library(plntorch))
if (!requireNamespace("PLNmodels", quietly = TRUE))
  stop("PLNmodels is not installed (see ../shared/data/validation/README.md)", call. = FALSE)

args <- commandArgs(trailingOnly = TRUE)
known <- c("--save", "--reference", "--only")
if (length(bad <- setdiff(grep("^--", args, value = TRUE), known)))
  stop("unknown option ", paste(bad, collapse = ", "), "; known: ", paste(known, collapse = ", "),
       call. = FALSE)
save <- "--save" %in% args
reference <- "--reference" %in% args
only <- if ("--only" %in% args) strsplit(args[match("--only", args) + 1], ",")[[1]] else NULL
command <- paste(c("Rscript inst/bench/toolbox-prediction.R", args), collapse = " ")

## ---- the models: Abundance ~ rhs + offset(log(Offset)) (mollusk: no offset), as in validation.R
cases <- list(
  list(data = "oaks", rhs = "1"),
  list(data = "oaks", rhs = "tree"),
  list(data = "trichoptera", rhs = "Wind + Temperature"),
  list(data = "barents", rhs = "Depth + Temperature"),
  list(data = "mollusk", rhs = "site + season"),
  list(data = "microcosm", rhs = "1"),
  list(data = "microcosm", rhs = "site")
)
all_data <- unique(vapply(cases, `[[`, "", "data"))
if (!is.null(only)) {
  if (length(bad <- setdiff(only, all_data)))
    stop("--only: unknown data set ", paste(bad, collapse = ", "), call. = FALSE)
  cases <- Filter(function(k) k$data %in% only, cases)
}
load_at_start <- paste(strsplit(readLines("/proc/loadavg"), " ")[[1]][1:3], collapse = ", ")

load_data <- function(name) {
  e <- new.env()
  utils::data(list = name, package = "plntorch", envir = e)
  d <- e[[name]]
  ## PLNmodels' predict_cond() takes the offsets' columns of the observed species: it needs an
  ## n x p offset matrix (a vector offset stops it), the same model as a vector.
  if (!is.null(d$Offset) && is.null(dim(d$Offset)))
    d$Offset <- I(matrix(d$Offset, nrow(d), ncol(d$Abundance)))
  d
}

## The value of a call and the best of `reps` elapsed times (the machine is shared)
reps <- 3
timed_call <- function(call, env) {
  best <- Inf
  for (r in seq_len(reps)) {
    t0 <- proc.time()[["elapsed"]]
    value <- eval(call, env)
    best <- min(best, proc.time()[["elapsed"]] - t0)
  }
  list(value = value, seconds = best)
}
timed <- function(expr) timed_call(substitute(expr), parent.frame())
strip <- function(x) { attributes(x) <- list(dim = dim(x)); x }
## A PLNmodels call: its value, or NULL and the error's message (the run goes on)
attempt <- function(expr) {
  r <- tryCatch(timed_call(substitute(expr), parent.frame()), error = function(e) e)
  if (inherits(r, "error")) {
    cat("  PLNmodels failed:", conditionMessage(r), "\n")
    return(list(value = NULL, seconds = NA_real_, error = conditionMessage(r)))
  }
  r$error <- NA_character_
  r
}

rows <- list()
ref_rows <- list()
for (k in cases) {
  d <- load_data(k$data)
  offset <- if (k$data == "mollusk") "" else " + offset(log(Offset))"
  formula <- stats::as.formula(paste("Abundance ~", k$rhs, offset))
  n <- nrow(d)
  test <- seq(5, n, by = 5)
  train <- setdiff(seq_len(n), test)
  dtrain <- d[train, ]
  dtest <- d[test, ]
  Ytest <- unclass(d$Abundance)[test, ]
  cat(sprintf("%s ~ %s: fitting %d samples, predicting %d\n", k$data, k$rhs, length(train),
              length(test)))
  pt <- suppressWarnings(plntorch::PLN(formula, data = dtrain))
  pm <- suppressWarnings(PLNmodels::PLN(formula, data = dtrain,
                                        control = PLNmodels::PLN_param(trace = 0)))
  ## plntorch's prediction from PLNmodels' parameters: the VE step alone
  pt_pm <- pt
  pt_pm$model_par <- list(B = pm$model_par$B, Sigma = as.matrix(pm$model_par$Sigma),
                          Omega = as.matrix(pm$model_par$Omega))
  species <- colnames(pt$model_par$B)
  ## the most abundant half, in the fit's order: PLNmodels pairs the columns of cond_responses
  ## with the species in that order
  top <- order(colSums(unclass(dtrain$Abundance)), decreasing = TRUE)[seq_len(length(species) %/% 2)]
  observed <- species[sort(top)]
  Yobs <- Ytest[, observed, drop = FALSE]

  ## population; the entries compared (see the header)
  a <- predict(pt, dtest)
  b <- predict(pm, dtest)
  keep <- unclass(a) > log(1e-6) & unclass(b) > log(1e-6)
  keep_u <- keep[, !species %in% observed, drop = FALSE]
  abs_diff <- function(x, y, m = keep) max(abs(unclass(x) - unclass(y))[m])
  rel_diff <- function(x, y, m = keep) max((abs(unclass(x) - unclass(y)) / pmax(1, abs(unclass(y))))[m])
  fit_diff <- abs_diff(a, b)
  ## VE step
  t_pt <- timed(predict(pt, dtest, responses = Ytest))
  t_pm <- attempt(predict(pm, dtest, responses = Ytest))
  t_pt_pm <- timed(predict(pt_pm, dtest, responses = Ytest))
  ve_pt_pm <- t_pt_pm$value
  r_pt <- predict(pt, dtest, responses = Ytest, type = "response")
  r_pm <- if (is.null(t_pm$value)) NULL else predict(pm, dtest, responses = Ytest, type = "response")
  r_pt_pm <- predict(pt_pm, dtest, responses = Ytest, type = "response")
  ## conditional
  c_pt <- timed(predict_cond(pt, dtest, Yobs, var_par = TRUE))
  c_pm <- attempt(PLNmodels::predict_cond(pm, dtest, Yobs, var_par = TRUE))
  tc_pt_pm <- timed(predict_cond(pt_pm, dtest, Yobs, var_par = TRUE))
  c_pt_pm <- tc_pt_pm$value
  cr_pt <- predict_cond(pt, dtest, Yobs, type = "response")
  cr_pm <- if (is.null(c_pm$value)) NULL else
    PLNmodels::predict_cond(pm, dtest, Yobs, type = "response")
  cr_pt_pm <- predict_cond(pt_pm, dtest, Yobs, type = "response")
  Sdiag <- function(x) t(apply(attr(x, "S"), 3, diag))
  ## PLNmodels' attributes of predict_cond(), NULL where it failed
  pm_attr <- function(what) if (is.null(c_pm$value)) NULL else
    if (what == "S") Sdiag(c_pm$value) else attr(c_pm$value, what)

  ## the ELBO of the held-out samples at PLNmodels' B and Omega, from each VE step's M and S2
  ve_elbo <- function(link, resp) {
    S2 <- 2 * (log(unclass(resp)) - unclass(link))
    X <- stats::model.matrix(stats::delete.response(pt$terms), dtest)
    O <- unclass(a) - X %*% pt$model_par$B
    Mres <- unclass(link) - O - X %*% pm$model_par$B
    Om <- as.matrix(pm$model_par$Omega)
    rowSums(Ytest * unclass(link) - unclass(resp) + 0.5 * log(S2) - 0.5 * (Mres %*% Om) * Mres -
              0.5 * sweep(S2, 2, diag(Om), "*"))
  }
  ## each sample's VE problem is its own: the total gain, and the smallest of one sample
  gains <- if (is.null(t_pm$value)) NA_real_ else
    ve_elbo(ve_pt_pm, r_pt_pm) - ve_elbo(t_pm$value, r_pm)
  gain <- sum(gains)

  ## One row: the differences (diff: abs_diff or rel_diff) and correlations of plntorch's
  ## prediction (x, from its fit; x_pm, from PLNmodels' parameters) with PLNmodels' (y; NULL where
  ## PLNmodels failed, `note` then its message) over the entries m.
  add <- function(quantity, diff, x, x_pm, y, m = keep, s_pt = NA, s_pm = NA, s_pt_pm = NA,
                  note = NA) {
    measure <- function(f, u) if (is.null(y)) NA_real_ else f(u, y, m)
    cor_on <- function(u, v, m) stats::cor(unclass(u)[m], unclass(v)[m])
    rows[[length(rows) + 1]] <<- data.frame(
      data = k$data, model = paste("~", k$rhs), n_fit = length(train), n_new = length(test),
      p = length(species), p_observed = length(observed), entries_left_out = sum(!keep),
      quantity = quantity, pipeline = measure(diff, x), ve_step = measure(diff, x_pm),
      pipeline_cor = measure(cor_on, x), ve_step_cor = measure(cor_on, x_pm),
      fits_difference = fit_diff, ve_elbo_gain = gain, ve_elbo_gain_min_sample = min(gains),
      plntorch_s = s_pt, PLNmodels_s = s_pm,
      plntorch_at_PLNmodels_s = s_pt_pm,
      note = if (is.null(y)) note else NA_character_, stringsAsFactors = FALSE)
  }
  add("predict, population (link)", abs_diff, a, predict(pt_pm, dtest), b)
  add("predict, responses (link)", abs_diff, t_pt$value, ve_pt_pm, t_pm$value,
      s_pt = t_pt$seconds, s_pm = t_pm$seconds, s_pt_pm = t_pt_pm$seconds, note = t_pm$error)
  add("predict, responses (response, relative)", rel_diff, r_pt, r_pt_pm, r_pm, note = t_pm$error)
  cond_y <- function(y) if (is.null(y)) NULL else strip(y)
  add("predict_cond (link)", abs_diff, strip(c_pt$value), strip(c_pt_pm), cond_y(c_pm$value),
      keep_u, c_pt$seconds, c_pm$seconds, tc_pt_pm$seconds, note = c_pm$error)
  add("predict_cond (response, relative)", rel_diff, strip(cr_pt), strip(cr_pt_pm), cond_y(cr_pm),
      keep_u, note = c_pm$error)
  add("predict_cond, attribute M", abs_diff, attr(c_pt$value, "M"), attr(c_pt_pm, "M"),
      pm_attr("M"), keep_u, note = c_pm$error)
  add("predict_cond, attribute S (diagonals)", abs_diff, Sdiag(c_pt$value), Sdiag(c_pt_pm),
      pm_attr("S"), keep_u, note = c_pm$error)

  if (reference && k$data == "trichoptera") {
    long <- function(what, m) {
      m <- as.matrix(m)
      data.frame(what = what, row = rep(seq_len(nrow(m)), ncol(m)),
                 col = rep(seq_len(ncol(m)), each = nrow(m)), value = as.vector(m))
    }
    ref_rows <- list(
      long("B", pm$model_par$B), long("Sigma", as.matrix(pm$model_par$Sigma)),
      long("predict_link", t_pm$value), long("predict_S2", 2 * (log(unclass(r_pm)) - unclass(t_pm$value))),
      long("predict_cond_link", strip(c_pm$value)),
      long("predict_cond_M", attr(c_pm$value, "M")), long("predict_cond_S_diag", Sdiag(c_pm$value)))
  }
}
res <- do.call(rbind, rows)
print(res, digits = 3, row.names = FALSE)

if (reference) {
  if (!length(ref_rows)) stop("--reference needs the trichoptera case", call. = FALSE)
  out <- file.path("inst", "extdata", "prediction-reference.csv")
  header <- c(
    "# PLNmodels 1.3.2 on trichoptera, Abundance ~ Wind + Temperature + offset(log(Offset)) (Offset",
    "# an n x p matrix), fitted on the samples not in seq(5, 49, by = 5) with its default control:",
    "# B (3 x 17) and Sigma; predict(responses =) link and its VE step's S2 on the samples",
    "# seq(5, 49, by = 5); predict_cond() of them given the 8 species most abundant in the fitted\n# samples, in the fit's order (link,",
    "# attribute M, diagonals of attribute S: sample in row). Written by",
    "# inst/bench/toolbox-prediction.R --reference.")
  writeLines(header, out)
  suppressWarnings(utils::write.table(do.call(rbind, ref_rows), out, sep = ",", append = TRUE,
                                      row.names = FALSE, col.names = TRUE))
  cat("wrote", out, "\n")
}

if (save) {
  stamp <- format(Sys.Date())
  dir.create(file.path("inst", "bench", "results"), showWarnings = FALSE)
  csv <- file.path("inst", "bench", "results", sprintf("prediction-%s.csv", stamp))
  kept <- NULL
  if (!is.null(only) && file.exists(csv)) {
    ## the day's rows of the other data sets, in the cases' order (columns that they lack: NA)
    old <- utils::read.csv(csv, stringsAsFactors = FALSE)
    old <- old[!old$data %in% only, , drop = FALSE]
    for (col in setdiff(names(res), names(old))) old[[col]] <- rep(NA, nrow(old))
    if (nrow(old)) kept <- unique(old$data)
    res <- rbind(old[names(res)], res)
    res <- res[order(match(res$data, all_data), seq_len(nrow(res))), ]
  }
  utils::write.csv(res, csv, row.names = FALSE)
  f <- function(x) ifelse(is.na(x), "", formatC(x, digits = 2, format = "g"))
  r4 <- function(x) ifelse(is.na(x), "", formatC(x, digits = 4, format = "f"))
  info <- pln_backends()
  cpu <- tryCatch(sub(".*: *", "", grep("^model name", readLines("/proc/cpuinfo"), value = TRUE)[1]),
                  error = function(e) NA_character_)
  load_now <- paste(strsplit(readLines("/proc/loadavg"), " ")[[1]][1:3], collapse = ", ")
  failed <- unique(res[!is.na(res$note) & nzchar(res$note), c("data", "model", "quantity", "note")])
  md <- c(
    sprintf("# Prediction: plntorch %s against PLNmodels %s", utils::packageVersion("plntorch"),
            utils::packageVersion("PLNmodels")),
    "",
    sprintf("`%s`, %s%s. Every fifth sample held out; the others fitted by both packages.", command,
            stamp, if (is.null(kept)) "" else
              sprintf(" (rows of %s kept from the day's earlier run)", paste(kept, collapse = ", "))),
    sprintf(paste("Machine: %d cores (%s), R %s, plntorch's default backend (%s), LibTorch %s,",
                  "%d thread(s). Load average (the machine is shared; times compare only within a",
                  "run): %s at the start, %s when written."),
            parallel::detectCores(), cpu, getRversion(), info$default_backend, info$libtorch,
            info$threads, load_at_start, load_now),
    "",
    "\"pipeline\": plntorch's fit and prediction against PLNmodels'; \"VE step\": plntorch's",
    "prediction from PLNmodels' B, Sigma and Omega against PLNmodels'. Largest absolute",
    "difference on the link scale, largest relative difference on the response scale; \"cor\":",
    "Pearson correlation of the two predictions over the same entries. Seconds: best of three",
    "elapsed times of one call on the held-out samples (the VE step: `predict(responses =)`;",
    "`predict_cond(var_par = TRUE)`), plntorch's from its own fit and (\"at PLNmodels'\") from",
    "PLNmodels' parameters. `predict_cond()`: the species other than the observed (the most",
    "abundant half in the fitted samples) given the observed ones' counts, the same species in",
    "both packages.",
    "Entries left out: predicted below 1e-6 counts from covariates alone by either fit",
    "(coefficients drifting to -Inf). VE ELBO gain: plntorch's ELBO of the held-out samples minus",
    "PLNmodels', both at PLNmodels' B and Omega (in brackets: the smallest gain of one sample;",
    "each sample's VE problem is its own).",
    if (nrow(failed)) c("", "PLNmodels failed (its rows left empty):",
                        sprintf("- %s %s, %s: `%s`", failed$data, failed$model, failed$quantity,
                                failed$note)),
    "",
    paste("| data | model | n fitted / new | p (observed) | entries left out | VE ELBO gain",
          "(smallest per sample) | quantity | pipeline | VE step | pipeline cor | VE step cor |",
          "plntorch s | plntorch s at PLNmodels' | PLNmodels s |"),
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    sprintf("| %s | %s | %d / %d | %d (%d) | %d | %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s |",
            res$data, res$model, res$n_fit, res$n_new, res$p, res$p_observed, res$entries_left_out,
            f(res$ve_elbo_gain), f(res$ve_elbo_gain_min_sample), res$quantity, f(res$pipeline),
            f(res$ve_step), r4(res$pipeline_cor), r4(res$ve_step_cor), f(res$plntorch_s),
            f(res$plntorch_at_PLNmodels_s), f(res$PLNmodels_s)))
  writeLines(md, sub("csv$", "md", csv))
  cat("wrote", csv, "and its .md\n")
}
