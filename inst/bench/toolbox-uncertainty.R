#!/usr/bin/env Rscript
# Standard errors of B side by side: plntorch against PLNmodels 1.3.2 (when installed, from
# /tmp/plnm-lib or the library path) on every model of inst/extdata/validation-reference.csv
# (trichoptera, barents, mollusk, microcosm, oaks), for the variational and sandwich standard
# errors, and the jackknife on the small sets. Both packages fit with their default control; the
# post-treatments are timed on their own in CPU seconds (plntorch: standard_error() on the fit;
# PLNmodels: its variance functions on its fit; the jackknife: the whole PLN() call).
#
# Two comparisons per case and type, over the coefficients both report as finite and identified
# (plntorch's NA under separation left out, see ?standard_error):
#   * "algebra": plntorch's C++ applied to PLNmodels' own fit (its A, S, Sigma, Omega) against
#     PLNmodels' numbers: the same estimator at the same point, so rounding only;
#   * "fits": each package on its own fit. The two fits stop at slightly different points (see
#     the validation table: plntorch's log-likelihood is equal or higher), so the standard errors
#     differ as the fits do: the table gives the median and the 95th percentile of the relative
#     differences, with the fits' distance max |B_plntorch - B_PLNmodels| / SE.
#
#   Rscript inst/bench/toolbox-uncertainty.R                 every case
#   Rscript inst/bench/toolbox-uncertainty.R --only trichoptera,oaks
#   Rscript inst/bench/toolbox-uncertainty.R --save          also write
#       inst/bench/results/uncertainty-<date>.{csv,md} and inst/extdata/uncertainty-reference.csv
#       (PLNmodels' standard errors on trichoptera, barents and oaks ~ 1) and
#       inst/extdata/uncertainty-plnmodels-fit.rds (PLNmodels' fit of trichoptera ~ Wind +
#       Temperature: A, S2, Sigma, Omega, B and its standard errors, so that the tests evaluate
#       plntorch's estimators at PLNmodels' own point); both read by
#       tests/testthat/test-uncertainty-reference.R
suppressPackageStartupMessages(library(plntorch))

args <- commandArgs(trailingOnly = TRUE)
known <- c("--only", "--save")
if (length(bad <- setdiff(grep("^--", args, value = TRUE), known)))
  stop("unknown option ", paste(bad, collapse = ", "), "; known: ", paste(known, collapse = ", "),
       call. = FALSE)
only <- if ("--only" %in% args) strsplit(args[which(args == "--only") + 1L], ",")[[1L]]
save <- "--save" %in% args

plnm_lib <- c("/tmp/plnm-lib", .libPaths())
have_plnm <- requireNamespace("PLNmodels", lib.loc = plnm_lib, quietly = TRUE)
if (!have_plnm) stop("PLNmodels is not installed: nothing to compare (see ../shared/tools/setup-plnmodels.sh).",
                     call. = FALSE)
plnm_version <- as.character(utils::packageVersion("PLNmodels", lib.loc = plnm_lib))
plnm <- asNamespace("PLNmodels")
post_sandwich_B <- getFromNamespace("post_sandwich_B", "plntorch")

ref <- utils::read.csv(file.path("inst", "extdata", "validation-reference.csv"), stringsAsFactors = FALSE)
if (!is.null(only)) ref <- ref[ref$data %in% only, ]
## the jackknife (n refits) on the small sets only
jackknife_cases <- c("trichoptera ~ 1", "trichoptera ~ Wind + Temperature", "barents ~ 1")
## PLNmodels' reference standard errors kept for the tests (a few hundred numbers)
reference_cases <- c("trichoptera ~ 1", "trichoptera ~ Wind + Temperature", "barents ~ 1",
                     "barents ~ Depth + Temperature", "oaks ~ 1")

load_data <- function(name) {
  env <- new.env()
  utils::data(list = name, package = "plntorch", envir = env)
  env[[name]]
}
## CPU seconds (user + system, this process and its threads) of one evaluation of `expr`: the
## development machine is shared, so elapsed time measures the neighbours' load as much as the
## code. The mean over repeated runs until 0.5 CPU s have passed, so that millisecond timings
## mean something (repeat_until = 0: one run).
cpu <- function() sum(proc.time()[c("user.self", "sys.self")])
elapsed <- function(expr, repeat_until = 0.5) {
  e <- substitute(expr); env <- parent.frame()
  t0 <- cpu()
  value <- eval(e, env)
  runs <- 1L
  while ((spent <- cpu() - t0) < repeat_until) {
    eval(e, env)
    runs <- runs + 1L
  }
  list(value = value, seconds = spent / runs)
}
rel_diff <- function(a, b) abs(a - b) / abs(b)

## PLNmodels' fit kept whole for the tests' matched comparison (a few thousand numbers)
state_case <- "trichoptera ~ Wind + Temperature"
rows <- list(); reference <- list(); state <- NULL
for (k in seq_len(nrow(ref))) {
  case <- ref[k, ]
  label <- paste(case$data, "~", case$rhs)
  data <- load_data(case$data)
  f <- stats::as.formula(paste("Abundance ~", case$rhs, if (case$offset) "+ offset(log(Offset))"))
  jack <- label %in% jackknife_cases
  cat(label, "\n")

  ## plntorch: the fit, then each post-treatment on its own
  fit <- PLN(f, data = data)
  ours <- list(
    variational = elapsed(standard_error(fit, "variational")),
    sandwich = elapsed(suppressWarnings(standard_error(fit, "sandwich"))))
  if (jack) {
    fit_jk <- elapsed(PLN(f, data = data, control = PLN_param(config_post = list(jackknife = TRUE))), 0)
    ## the whole PLN() call, as for PLNmodels below (its n refits dominate it)
    ours$jackknife <- list(value = standard_error(fit_jk$value, "jackknife"), seconds = fit_jk$seconds)
  }

  ## PLNmodels: its fit, then its post-treatments (timed through its own methods)
  pf <- suppressWarnings(plnm$PLN(f, data = data, control = plnm$PLN_param(trace = 0)))
  priv <- pf$.__enclos_env__$private
  X <- stats::model.matrix(stats::delete.response(stats::terms(f)), data)
  Y <- as.matrix(data$Abundance); storage.mode(Y) <- "double"
  theirs <- list(
    variational = elapsed({ priv$variance_variational(X); plnm$standard_error(pf, "variational") }),
    sandwich = elapsed({ priv$vcov_sandwich_B(Y, X); plnm$standard_error(pf, "sandwich") }))
  if (jack) {
    pj <- elapsed(suppressWarnings(plnm$PLN(f, data = data, control = plnm$PLN_param(
      trace = 0, config_post = list(jackknife = TRUE)))), 0)
    ## the whole PLN() call: its n refits dominate it
    theirs$jackknife <- list(value = plnm$standard_error(pj$value, "jackknife"), seconds = pj$seconds)
  }

  ## the same estimator at PLNmodels' point (its A, S, Sigma, Omega)
  at_theirs <- list(
    sandwich = sqrt(post_sandwich_B(Y, X, as.matrix(pf$fitted), sqrt(as.matrix(pf$var_par$S2)),
                                    as.matrix(pf$model_par$Sigma),
                                    as.double(diag(as.matrix(pf$model_par$Omega))),
                                    rep(1, nrow(Y)), FALSE)$var))
  at_theirs$variational <- sqrt(getFromNamespace("post_variational_B", "plntorch")(
    X, as.matrix(pf$fitted), rep(1, nrow(Y)))$var)

  B_ours <- coef(fit); B_theirs <- as.matrix(pf$model_par$B)
  if (label == state_case)
    state <- list(data = case$data, rhs = case$rhs, A = unname(as.matrix(pf$fitted)),
                  S2 = unname(as.matrix(pf$var_par$S2)), Sigma = unname(as.matrix(pf$model_par$Sigma)),
                  Omega = unname(as.matrix(pf$model_par$Omega)), B = B_theirs,
                  se_variational = as.matrix(theirs$variational$value),
                  se_sandwich = as.matrix(theirs$sandwich$value),
                  source = paste("PLNmodels", plnm_version, format(Sys.Date())))
  for (type in names(ours)) {
    a <- as.vector(ours[[type]]$value); b <- as.vector(as.matrix(theirs[[type]]$value))
    ok <- is.finite(a) & is.finite(b) & b > 0
    ## coefficients without a finite optimum (separation: plntorch's sandwich says NA, or |B| >
    ## 20 in either fit) are no comparison: their values say how far each optimiser drifted
    ok <- ok & is.finite(as.vector(ours$sandwich$value)) &
      abs(as.vector(B_ours)) < 20 & abs(as.vector(B_theirs)) < 20
    rd <- rel_diff(a[ok], b[ok])
    alg <- if (!is.null(at_theirs[[type]])) {
      aa <- as.vector(at_theirs[[type]])
      okk <- ok & is.finite(aa)
      max(rel_diff(aa[okk], b[okk]))
    } else NA_real_
    rows[[length(rows) + 1L]] <- data.frame(
      data = case$data, rhs = case$rhs, n = nrow(Y), p = ncol(Y), d = ncol(X), type = type,
      coefficients = length(a), compared = sum(ok), plntorch_na = sum(is.na(a)),
      algebra_max_rel_diff = alg,
      fits_median_rel_diff = stats::median(rd),
      fits_q95_rel_diff = unname(stats::quantile(rd, 0.95)),
      fits_max_dB_over_se = max(abs(as.vector(B_ours - B_theirs))[ok] / b[ok]),
      median_se = stats::median(b[ok]),
      plntorch_seconds = ours[[type]]$seconds, plnmodels_seconds = theirs[[type]]$seconds,
      stringsAsFactors = FALSE)
    if (label %in% reference_cases)
      reference[[length(reference) + 1L]] <- data.frame(
        data = case$data, rhs = case$rhs, offset = case$offset, type = type,
        species = rep(colnames(B_theirs), each = nrow(B_theirs)),
        covariate = rep(rownames(B_theirs), ncol(B_theirs)),
        estimate = signif(as.vector(B_theirs), 8), se = signif(b, 8),
        source = paste("PLNmodels", plnm_version, format(Sys.Date())), stringsAsFactors = FALSE)
  }
}
res <- do.call(rbind, rows)
print(format(res, digits = 3), row.names = FALSE)

md <- c(
  sprintf("Standard errors of B, plntorch against PLNmodels %s, each on its own default fit (`Rscript inst/bench/toolbox-uncertainty.R --save`, %s). \"algebra\": plntorch's estimator at PLNmodels' fit against PLNmodels' numbers (largest relative difference); \"fits\": each on its own fit (median and 95th percentile of the relative differences; the fits' distance max |dB| / SE). Seconds: CPU seconds (user + system) of the post-treatment alone (jackknife: the whole PLN() call with config_post = list(jackknife = TRUE)), on a shared 2-core machine.",
          plnm_version, format(Sys.Date())), "",
  "| data | n x p x d | type | compared | algebra | fits: median | fits: q95 | max dB/SE | plntorch s | PLNmodels s |",
  "|---|---|---|---|---|---|---|---|---|---|",
  sprintf("| %s ~ %s | %d x %d x %d | %s | %d/%d | %s | %s | %s | %s | %s | %s |",
          res$data, res$rhs, res$n, res$p, res$d, res$type, res$compared, res$coefficients,
          ifelse(is.na(res$algebra_max_rel_diff), "", format(signif(res$algebra_max_rel_diff, 2))),
          format(signif(res$fits_median_rel_diff, 2)), format(signif(res$fits_q95_rel_diff, 2)),
          format(signif(res$fits_max_dB_over_se, 2)),
          format(signif(res$plntorch_seconds, 3)), format(signif(res$plnmodels_seconds, 3))))
cat(md, sep = "\n")
if (save) {
  stem <- file.path("inst", "bench", "results", sprintf("uncertainty-%s", format(Sys.Date())))
  utils::write.csv(res, paste0(stem, ".csv"), row.names = FALSE)
  writeLines(md, paste0(stem, ".md"))
  if (!is.null(state))
    saveRDS(state, file.path("inst", "extdata", "uncertainty-plnmodels-fit.rds"), version = 2)
  if (length(reference))
    utils::write.csv(do.call(rbind, reference), file.path("inst", "extdata", "uncertainty-reference.csv"),
                     row.names = FALSE)
  cat("written:", paste0(stem, c(".csv", ".md")), "\n")
}
