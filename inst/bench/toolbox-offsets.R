#!/usr/bin/env Rscript
# Side by side with PLNmodels: offsets, prepare_data() and R^2.
#
#   R_LIBS=<plntorch lib>:/tmp/plnm-lib Rscript inst/bench/toolbox-offsets.R [--save] [--skip-r2]
#
# 1. compute_offset() of every scheme on the count tables of oaks and of the validation sets
#    (trichoptera, barents, mollusk, microcosm: ../shared/data/validation), by both packages: the
#    largest relative difference per data set and scheme, and the elapsed seconds of each.
# 2. prepare_data() on PLNmodels' own raw tables (trichoptera, mollusk: 4 empty samples): the
#    same samples, counts, covariates and offsets?
# 3. R^2 (fit$R_squared) of the validation models (PLN() with default controls in both
#    packages): plntorch's, PLNmodels', and plntorch's formula applied to PLNmodels' fit (which
#    separates the formula from the difference of the fits).
# With --save: inst/bench/results/offsets-<date>.{csv,md} and the references the tests read,
# inst/extdata/offsets-reference.csv (PLNmodels' offsets of trichoptera's and mollusk's samples,
# one column per scheme) and inst/extdata/rsquared-reference.csv.
suppressPackageStartupMessages({
  library(plntorch)
  if (!requireNamespace("PLNmodels", quietly = TRUE))
    stop("PLNmodels is needed (R_LIBS=/tmp/plnm-lib)", call. = FALSE)
})
args <- commandArgs(trailingOnly = TRUE)
save <- "--save" %in% args
skip_r2 <- "--skip-r2" %in% args
today <- format(Sys.Date())
validation_dir <- "../shared/data/validation"
if (!dir.exists(validation_dir)) validation_dir <- "/work/shared/data/validation"

read_table <- function(name, file) {
  as.matrix(utils::read.delim(file.path(validation_dir, name, file), row.names = 1,
                              check.names = FALSE))
}
counts <- list(oaks = plntorch::oaks$Abundance)
for (d in c("trichoptera", "barents", "mollusk", "microcosm")) counts[[d]] <- read_table(d, "counts.tsv")
## Wrench's sample groups, `groups` in the calls below: oaks' tree, mollusk's and microcosm's site
groups <- list(oaks = plntorch::oaks$tree,
               mollusk = utils::read.delim(file.path(validation_dir, "mollusk", "samples.tsv"))$site,
               microcosm = utils::read.delim(file.path(validation_dir, "microcosm", "samples.tsv"))$site)

## The schemes: the arguments of the same compute_offset() call in both packages, as text (the
## labels of the results and the columns of the reference file, which the tests evaluate).
schemes <- c('offset = "TSS"', 'offset = "GMPR"', 'offset = "GMPR", scale = "count"',
             'offset = "RLE"', 'offset = "RLE", type = "poscounts"',
             'offset = "RLE", pseudocounts = 1', 'offset = "CSS"', 'offset = "CSS", reference = mean',
             'offset = "Wrench"', 'offset = "Wrench", type = "simple"',
             'offset = "Wrench", groups = groups', 'offset = "TMM"')
scheme_args <- function(s, groups) eval(parse(text = sprintf("list(%s)", s)),
                                        list(groups = groups), baseenv())

timed <- function(expr) {
  t0 <- proc.time()[["elapsed"]]
  value <- tryCatch(suppressWarnings(expr), error = function(e) e)
  list(value = value, seconds = proc.time()[["elapsed"]] - t0)
}

rows <- list()
reference <- list()
cat("== offsets\n")
for (d in names(counts)) for (s in schemes) {
  if (grepl("groups", s) && is.null(groups[[d]])) next
  Y <- counts[[d]]
  scheme <- scheme_args(s, groups[[d]])
  a <- timed(do.call(plntorch::compute_offset, c(list(Y), scheme)))
  b <- timed(do.call(PLNmodels::compute_offset, c(list(Y), scheme)))
  err_a <- inherits(a$value, "error"); err_b <- inherits(b$value, "error")
  finite_b <- !err_b && all(is.finite(b$value))
  rel <- if (!err_a && finite_b) max(abs(as.double(a$value) - b$value) / abs(b$value)) else NA_real_
  status <- if (err_a && err_b) "both stop" else if (err_b) "PLNmodels stops"
            else if (err_a) "plntorch stops" else if (!finite_b) "PLNmodels not finite"
            else if (rel < 1e-12) "equal" else "differ"
  rows[[length(rows) + 1L]] <- data.frame(
    part = "offset", data = d, n = nrow(Y), p = ncol(Y), case = s, status = status,
    max_rel_diff = rel, plntorch_s = a$seconds, PLNmodels_s = b$seconds,
    plntorch_value = NA_real_, PLNmodels_value = NA_real_, stringsAsFactors = FALSE)
  cat(sprintf("  %-12s %-24s %-22s max rel diff %-9s %6.2f s / %6.2f s\n", d, s, status,
              format(signif(rel, 2)), a$seconds, b$seconds))
  if (d %in% c("trichoptera", "mollusk") && finite_b) {
    if (is.null(reference[[d]]))
      reference[[d]] <- data.frame(data = d, sample = rownames(Y), stringsAsFactors = FALSE)
    reference[[d]][[s]] <- sprintf("%.15g", b$value)
  }
}

cat("== prepare_data on PLNmodels' raw tables\n")
raw <- new.env()
utils::data(list = c("trichoptera", "mollusk"), package = "PLNmodels", envir = raw)
for (d in c("trichoptera", "mollusk")) for (s in c("TSS", "GMPR", "CSS", "TMM")) {
  a <- timed(plntorch::prepare_data(raw[[d]]$Abundance, raw[[d]]$Covariate, offset = s))
  b <- timed(PLNmodels::prepare_data(raw[[d]]$Abundance, raw[[d]]$Covariate, offset = s))
  same <- !inherits(a$value, "error") && !inherits(b$value, "error") &&
    identical(rownames(a$value), rownames(b$value)) &&
    identical(names(a$value), names(b$value)) &&
    all(a$value$Abundance == b$value$Abundance) &&
    isTRUE(all.equal(a$value[setdiff(names(a$value), c("Abundance", "Offset"))],
                     b$value[setdiff(names(b$value), c("Abundance", "Offset"))],
                     tolerance = 0))
  rel <- if (same) max(abs(as.double(a$value$Offset) - b$value$Offset) / b$value$Offset) else NA_real_
  status <- if (same && rel < 1e-12) "equal" else "differ"
  rows[[length(rows) + 1L]] <- data.frame(
    part = "prepare_data", data = d, n = NROW(b$value), p = NCOL(b$value$Abundance),
    case = s, status = status, max_rel_diff = rel, plntorch_s = a$seconds,
    PLNmodels_s = b$seconds, plntorch_value = NA_real_, PLNmodels_value = NA_real_,
    stringsAsFactors = FALSE)
  cat(sprintf("  %-12s %-6s %d samples kept: %s (max rel diff of offsets %s)\n", d, s,
              NROW(b$value), status, format(signif(rel, 2))))
}

r2_reference <- NULL
if (!skip_r2) {
  cat("== R^2 of the validation models (default controls)\n")
  models <- utils::read.csv(file.path("inst", "extdata", "validation-reference.csv"),
                            stringsAsFactors = FALSE)
  load_data <- function(name) {
    env <- new.env()
    utils::data(list = name, package = "plntorch", envir = env)
    env[[name]]
  }
  r2_reference <- list()
  for (k in seq_len(nrow(models))) {
    m <- models[k, ]
    dat <- load_data(m$data)
    f <- stats::as.formula(paste("Abundance ~", m$rhs, if (m$offset) "+ offset(log(Offset))"))
    a <- timed(plntorch::PLN(f, data = dat))
    b <- timed(PLNmodels::PLN(f, data = dat, control = PLNmodels::PLN_param(trace = 0)))
    ## plntorch's formula at PLNmodels' latent layer
    X <- stats::model.matrix(stats::delete.response(stats::terms(f)), dat)
    O <- if (m$offset) matrix(log(dat$Offset), nrow(dat), ncol(dat$Abundance)) else
      matrix(0, nrow(dat), ncol(dat$Abundance))
    Y <- unclass(dat$Abundance); storage.mode(Y) <- "double"
    formula_r2 <- plntorch:::compute_rsquared(b$value$latent,
                                              list(Y = Y, X = X, O = O, w = rep(1, nrow(Y))))
    fitted_rel <- stats::median(abs(stats::fitted(a$value) - stats::fitted(b$value)) / stats::fitted(b$value))
    case <- paste("~", m$rhs)
    for (what in c("R_squared", "R_squared, plntorch's formula at PLNmodels' fit")) {
      mine <- if (what == "R_squared") a$value$R_squared else formula_r2
      rows[[length(rows) + 1L]] <- data.frame(
        part = what, data = m$data, n = nrow(Y), p = ncol(Y), case = case,
        status = sprintf("loglik %.2f vs %.2f", a$value$loglik, b$value$loglik),
        max_rel_diff = abs(mine - b$value$R_squared) / abs(b$value$R_squared),
        plntorch_s = a$seconds, PLNmodels_s = b$seconds, plntorch_value = mine,
        PLNmodels_value = b$value$R_squared, stringsAsFactors = FALSE)
    }
    cat(sprintf("  %-12s %-22s R2 %.6f vs %.6f (formula at PLNmodels' fit: %.6f); loglik %.2f vs %.2f; fitted() median rel diff %.2g\n",
                m$data, case, a$value$R_squared, b$value$R_squared, formula_r2,
                a$value$loglik, b$value$loglik, fitted_rel))
    r2_reference[[k]] <- data.frame(data = m$data, rhs = m$rhs, offset = m$offset,
                                    PLNmodels_loglik = round(b$value$loglik, 2),
                                    PLNmodels_R_squared = sprintf("%.10f", b$value$R_squared),
                                    formula_at_PLNmodels_fit = sprintf("%.10f", formula_r2),
                                    source = paste("PLNmodels", utils::packageVersion("PLNmodels"), today),
                                    stringsAsFactors = FALSE)
  }
  r2_reference <- do.call(rbind, r2_reference)
}

results <- do.call(rbind, rows)
if (save) {
  dir.create(file.path("inst", "bench", "results"), showWarnings = FALSE)
  base <- file.path("inst", "bench", "results", paste0("offsets-", today))
  utils::write.csv(results, paste0(base, ".csv"), row.names = FALSE)
  fmt <- function(x) ifelse(is.na(x), "", format(signif(x, 3)))
  offsets <- results[results$part == "offset", ]
  md <- c(sprintf("# Offsets, prepare_data() and R^2: plntorch %s vs PLNmodels %s (%s)",
                  utils::packageVersion("plntorch"), utils::packageVersion("PLNmodels"), today),
          "", sprintf("Command: `Rscript inst/bench/toolbox-offsets.R %s`", paste(args, collapse = " ")),
          "", "## compute_offset(): largest relative difference per data set and scheme", "",
          "| data | n x p | scheme | status | max rel diff | plntorch s | PLNmodels s |",
          "|---|---|---|---|---|---|---|",
          sprintf("| %s | %d x %d | %s | %s | %s | %.2f | %.2f |", offsets$data, offsets$n, offsets$p,
                  offsets$case, offsets$status, fmt(offsets$max_rel_diff), offsets$plntorch_s,
                  offsets$PLNmodels_s))
  prep <- results[results$part == "prepare_data", ]
  md <- c(md, "", "## prepare_data() on PLNmodels' raw tables", "",
          "| data | samples kept | offset | status | max rel diff of Offset |", "|---|---|---|---|---|",
          sprintf("| %s | %d | %s | %s | %s |", prep$data, prep$n, prep$case, prep$status,
                  fmt(prep$max_rel_diff)))
  r2 <- results[startsWith(results$part, "R_squared"), ]
  if (nrow(r2))
    md <- c(md, "", "## R^2 (fit$R_squared) of the validation models", "",
            "| data | model | compared | plntorch | PLNmodels | rel diff | log-likelihoods |",
            "|---|---|---|---|---|---|---|",
            sprintf("| %s | Abundance %s | %s | %.6f | %.6f | %s | %s |", r2$data, r2$case,
                    ifelse(r2$part == "R_squared", "fits of each package",
                           "plntorch's formula at PLNmodels' fit"),
                    r2$plntorch_value, r2$PLNmodels_value, fmt(r2$max_rel_diff), r2$status))
  writeLines(md, paste0(base, ".md"))
  ## one row per sample, one column per scheme (empty where a set has no such case)
  cases <- unique(unlist(lapply(reference, names)))
  for (d in names(reference)) reference[[d]][setdiff(cases, names(reference[[d]]))] <- NA
  utils::write.csv(do.call(rbind, lapply(reference, `[`, cases)),
                   file.path("inst", "extdata", "offsets-reference.csv"), row.names = FALSE,
                   na = "")
  if (!is.null(r2_reference))
    utils::write.csv(r2_reference, file.path("inst", "extdata", "rsquared-reference.csv"),
                     row.names = FALSE)
  cat("written:", paste0(base, c(".csv", ".md")), "and inst/extdata references\n")
}
