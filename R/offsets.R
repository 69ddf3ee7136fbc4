#' Offsets from a count table
#'
#' Computes one normalisation offset per sample (on the count scale: use
#' `offset(log(Offset))` in a formula) with the schemes of PLNmodels 1.3.2,
#' whose definitions and arguments it follows, so that a user switching
#' packages gets the same numbers.
#'
#' @param counts a count table, samples in rows and species in columns: a
#'   matrix, a numeric data frame or a `Matrix` (sparse counts are made dense).
#'   Counts must be non-negative whole numbers without `NA`.
#' @param offset the scheme, one of
#'   * `"TSS"` (total sum scaling, the default): the total count of the sample;
#'   * `"GMPR"` (geometric mean of pairwise ratios, Chen et al. 2018): for each
#'     sample, the geometric mean over the other samples of the median ratio of
#'     their counts, taken over the species present in both;
#'   * `"RLE"` (relative log expression, DESeq2's size factors): the median
#'     over species of the ratio of the sample's count to the species'
#'     geometric mean across samples; arguments `pseudocounts` (added to every
#'     count, default 0) and `type`: `"ratio"` (default) uses the species with
#'     a positive count in every sample, `"poscounts"` takes geometric means
#'     over positive counts only (DESeq2's choice for sparse data);
#'   * `"CSS"` (cumulative sum scaling, metagenomeSeq): the sum of the
#'     sample's counts up to the quantile where the counts' distribution
#'     across samples becomes unstable, divided by its median over samples;
#'     argument `reference`, the location function of the reference quantiles
#'     (default [stats::median()]; `mean` reproduces metagenomeSeq's
#'     `cumNormStat`);
#'   * `"Wrench"` (Kumar et al. 2018): compositional factors from the
#'     regularised ratios of each sample's proportions to the average ones,
#'     times the sequencing depths; arguments `groups` (one group label per
#'     sample, default one group) and `type`: `"wrench"` (default, the
#'     weights of `Wrench::wrench()`) or `"simple"` (uniform weights);
#'   * `"TMM"` (trimmed mean of M-values, edgeR, Robinson and Oshlack 2010):
#'     the weighted trimmed mean of log ratios to a reference sample, times the
#'     sample's total count, scaled to a geometric mean of 1; arguments
#'     `logratioTrim` (0.3), `sumTrim` (0.05), `Acutoff` (-1e10);
#'   * `"none"`: no offset (`NULL`);
#'   * a numeric vector (one value per sample) or matrix (a column, or one
#'     column per species) of offsets of your own, with sample names: they are
#'     matched to the rows of `counts` by name and returned as an n x p matrix.
#' @param scale `"none"` (default) or `"count"`: with `"count"`, the factors
#'   are rescaled to the scale of the counts, `f / l` being centred to a
#'   geometric mean of 1 where `l` are the samples' total counts.
#' @param ... the arguments of the scheme listed above (an argument the scheme
#'   does not take is an error).
#'
#' @details Edge cases, as in PLNmodels unless said:
#' * GMPR and Wrench need at least two samples; GMPR fails when a sample
#'   shares no species with any other one;
#' * RLE with `type = "ratio"` fails when no species is present in every
#'   sample (use `type = "poscounts"`). Species with a zero count in some
#'   sample are left out of the medians, as in DESeq2; PLNmodels 1.3.2 keeps
#'   them with a ratio of `Inf` (its geometric mean is 0), which makes its RLE
#'   offsets infinite or too large on sparse tables such as [oaks];
#' * CSS falls back to TSS, with a warning, when a sample has fewer than two
#'   positive counts, and to the full sums when no quantile is unstable; with a
#'   single species it is the counts divided by their median;
#' * Wrench leaves out species absent from every sample (PLNmodels 1.3.2
#'   returns `NaN` for every sample when there is one); with a single species
#'   it is the depths divided by their geometric mean;
#' * an empty sample gets the offset 0 under TSS, TMM and Wrench (TMM and
#'   Wrench compute the others' without it); a sample with a zero or
#'   non-finite offset gets a warning: its log offset is not finite, and
#'   [PLN()] would refuse it. [prepare_data()] drops empty samples before
#'   computing offsets.
#'
#' @return `NULL` for `"none"`; for a scheme, a vector of one positive offset
#'   per sample, named by the samples (PLNmodels names only some schemes'
#'   results); for offsets of your own, an n x p matrix.
#' @references
#' Chen, L. et al. (2018) GMPR: a robust normalization method for
#' zero-inflated count data with application to microbiome sequencing data.
#' PeerJ 6, e4600. \doi{10.7717/peerj.4600}
#'
#' Paulson, J. N. et al. (2013) Differential abundance analysis for microbial
#' marker-gene surveys. Nature Methods 10, 1200-1202. \doi{10.1038/nmeth.2658}
#'
#' Anders, S. and Huber, W. (2010) Differential expression analysis for
#' sequence count data. Genome Biology 11, R106. \doi{10.1186/gb-2010-11-10-r106}
#'
#' Kumar, M. et al. (2018) Analysis and correction of compositional bias in
#' sparse sequencing count data. BMC Genomics 19, 799. \doi{10.1186/s12864-018-5160-5}
#'
#' Robinson, M. D. and Oshlack, A. (2010) A scaling normalization method for
#' differential expression analysis of RNA-seq data. Genome Biology 11, R25.
#' \doi{10.1186/gb-2010-11-3-r25}
#' @seealso [prepare_data()], which matches a count table to a sample table
#'   and adds the offsets.
#' @export
#' @examples
#' counts <- oaks$Abundance
#' head(compute_offset(counts))                      # TSS: total counts
#' head(compute_offset(counts, "GMPR"))
#' head(compute_offset(counts, "RLE", type = "poscounts"))
#' head(compute_offset(counts, "CSS"))
#' head(compute_offset(counts, "Wrench", groups = oaks$tree))
#' head(compute_offset(counts, "TMM", scale = "count"))
compute_offset <- function(counts, offset = c("TSS", "GMPR", "RLE", "CSS", "Wrench", "TMM", "none"),
                           scale = c("none", "count"), ...) {
  counts <- check_counts(counts)
  if (is.data.frame(offset))
    stop_arg("`offset` must be a scheme name or a numeric vector or matrix of offsets; got a ",
             "data frame: convert it with as.matrix().")
  if (is.numeric(offset)) {
    if (...length())
      stop_arg("`...` must be empty when `offset` holds offsets of your own; got ",
               name_list(names(list(...)) %||% "unnamed arguments"), ".")
    return(match_offset(counts, offset))
  }
  offset <- choose_arg(offset, "offset", eval(formals(compute_offset)$offset))
  scale <- choose_arg(scale, "scale", c("none", "count"))
  fun <- switch(offset, TSS = offset_tss, GMPR = offset_gmpr, RLE = offset_rle,
                CSS = offset_css, Wrench = offset_wrench, TMM = offset_tmm,
                none = function(counts) NULL)
  check_scheme_args(fun, offset, list(...))
  f <- if (offset %in% c("TMM", "Wrench")) offset_nonempty(fun, counts, offset, ...)
       else fun(counts, ...)
  if (is.null(f)) return(NULL)
  f <- as.double(f)
  if (scale == "count") f <- to_count_scale(f, rowSums(counts))
  names(f) <- rownames(counts)
  bad <- which(!is.finite(f) | f <= 0)
  if (length(bad))
    warning(sprintf(paste0("offset \"%s\" is zero or not finite for %d sample(s) (%s): their log ",
                           "offset is not finite; drop them (prepare_data() drops empty samples)."),
                    offset, length(bad),
                    name_list(if (is.null(names(f))) bad else names(f)[bad], 5L)), call. = FALSE)
  f
}

`%||%` <- function(x, y) if (is.null(x)) y else x

## TMM and Wrench compare each sample's proportions with the others': an empty sample has none
## (0 / 0). Its factor is 0 (warned about by compute_offset(), as TSS's), the others' are computed
## without it; Wrench's `groups` follow the samples kept.
offset_nonempty <- function(fun, counts, offset, ...) {
  empty <- rowSums(counts) == 0
  if (!any(empty)) return(fun(counts, ...))
  if (sum(!empty) < 2L)
    stop_arg(sprintf("offset \"%s\" needs at least two samples with counts; `counts` has %d.",
                     offset, sum(!empty)))
  args <- list(...)
  if (!is.null(args$groups) && length(args$groups) == nrow(counts))
    args$groups <- args$groups[!empty]
  f <- numeric(nrow(counts))
  f[!empty] <- do.call(fun, c(list(counts[!empty, , drop = FALSE]), args))
  f
}

## match.arg() with an error that names the argument: the whole default vector is its first value.
choose_arg <- function(x, arg, choices) {
  if (identical(x, choices)) return(choices[1L])
  check_choice(x, arg, choices)
}

## An argument that the scheme does not take names the scheme's arguments, rather than
## R's "unused argument".
check_scheme_args <- function(fun, scheme, args) {
  known <- setdiff(names(formals(fun)), "counts")
  nms <- names(args)
  if (length(args) && (is.null(nms) || any(nms == "")))
    stop_arg(sprintf("the arguments of offset \"%s\" must be named (%s).", scheme,
                     if (length(known)) paste(known, collapse = ", ") else "it takes none"))
  bad <- setdiff(nms, known)
  if (length(bad))
    stop_arg(sprintf("offset \"%s\" has no argument %s; %s.", scheme, name_list(paste0("`", bad, "`")),
                     if (length(known)) paste("its arguments:", paste(known, collapse = ", "))
                     else "it takes none"))
  invisible(TRUE)
}

## Counts as a plain numeric matrix with names: non-negative whole numbers, no NA.
check_counts <- function(counts, arg = "counts") {
  if (missing(counts) || is.null(counts)) stop_arg(sprintf("`%s` is missing.", arg))
  if (inherits(counts, "Matrix")) counts <- dense_counts(counts, sprintf("`%s`", arg))
  if (is.data.frame(counts)) counts <- check_counts_frame(counts)
  if (!is.numeric(counts) || !(is.matrix(counts) || is.null(dim(counts))))
    stop_arg(sprintf("`%s` must be a numeric count matrix (samples in rows); got %s.", arg,
                     describe_value(counts)))
  if (is.null(dim(counts))) counts <- matrix(counts, ncol = 1L, dimnames = list(names(counts), NULL))
  if (nrow(counts) < 1L || ncol(counts) < 1L) stop_arg(sprintf("`%s` has no rows or no columns.", arg))
  if (anyNA(counts)) stop_arg(sprintf("`%s` contains missing values (NA).", arg))
  if (any(!is.finite(counts))) stop_arg(sprintf("`%s` contains infinite values.", arg))
  if (any(counts < 0)) stop_arg(sprintf("`%s` must hold counts: found %d negative value(s).",
                                        arg, sum(counts < 0)))
  if (any(counts != round(counts)))
    stop_arg(sprintf("`%s` must hold counts: found non-integer values (e.g. %s).", arg,
                     format(counts[counts != round(counts)][1L])))
  counts
}

## Offsets of the user's own: a vector or one-column matrix (one per sample) or an n x p matrix,
## matched to the samples (rows of counts) by name; returned n x p, as PLNmodels does.
match_offset <- function(counts, offset) {
  n <- nrow(counts); p <- ncol(counts)
  if (is.null(dim(offset))) offset <- matrix(offset, ncol = 1L, dimnames = list(names(offset), NULL))
  if (!is.matrix(offset)) stop_arg("`offset` must be a numeric vector or matrix; got ",
                                   describe_value(offset), ".")
  if (!ncol(offset) %in% c(1L, p))
    stop_arg(sprintf("`offset` must have one column, or one per species (%d); got %d.", p, ncol(offset)))
  if (is.null(rownames(offset))) {
    if (!is.null(rownames(counts)) || nrow(offset) != n)
      stop_arg(sprintf(paste0("`offset` has no sample names: name its values (or rows) by the samples ",
                              "of `counts`%s, which are matched by name."),
                       if (is.null(rownames(counts))) sprintf(", or give one per sample (%d)", n) else ""))
    rownames(offset) <- rownames(counts)
  } else {
    missing_ <- setdiff(rownames(counts), rownames(offset))
    if (is.null(rownames(counts)) || length(missing_))
      stop_arg(sprintf("`offset` has no value for sample(s) %s of `counts` (samples are matched by name).",
                       if (is.null(rownames(counts))) "(`counts` has no row names)"
                       else name_list(missing_, 5L)))
    offset <- offset[rownames(counts), , drop = FALSE]
  }
  check_finite(offset, "`offset`")
  out <- matrix(as.double(offset), n, p, dimnames = list(rownames(counts), colnames(counts)))
  out
}

## scale = "count": factors f with f / l centred to geometric mean 1 (l: total counts).
to_count_scale <- function(f, lib_size) {
  r <- f / lib_size
  r / geom_mean_pos(r) * lib_size
}

## Geometric mean of the positive values (NA and non-positive values left out).
geom_mean_pos <- function(x) {
  x <- x[!is.na(x) & x > 0]
  exp(mean(log(x)))
}

## Medians of the rows of x, NA left out (NA for a row without values); as median() computes
## them, sorted in one radix pass rather than a call per row.
row_medians <- function(x) {
  n <- nrow(x); p <- ncol(x)
  if (p == 0L) return(rep(NA_real_, n))
  k <- rowSums(!is.na(x))
  sorted <- matrix(x[order(rep.int(seq_len(n), p), x, na.last = TRUE)], n, p, byrow = TRUE)
  lo <- pmax((k + 1L) %/% 2L, 1L)
  hi <- ifelse(k %% 2L == 1L, lo, lo + 1L)
  hi[k == 0L] <- 1L
  med <- (sorted[cbind(seq_len(n), lo)] + sorted[cbind(seq_len(n), hi)]) / 2
  med[k == 0L] <- NA
  med
}

offset_tss <- function(counts) rowSums(counts)

offset_gmpr <- function(counts) {
  n <- nrow(counts); p <- ncol(counts)
  if (n < 2L) stop_arg("offset \"GMPR\" needs at least two samples; `counts` has one.")
  present <- counts > 0
  safe <- counts
  safe[!present] <- NA
  ## for sample i, the median over shared species of counts[i, ] / counts[j, ], for every j (only
  ## the species present in i can be shared)
  size <- vapply(seq_len(n), function(i) {
    mine <- which(present[i, ])
    ratios <- matrix(counts[i, mine], n, length(mine), byrow = TRUE) / safe[, mine, drop = FALSE]
    med <- row_medians(ratios)[-i]
    geom_mean_pos(med)
  }, numeric(1))
  if (any(!is.finite(size) | size == 0)) {
    alone <- which(!is.finite(size) | size == 0)
    stop_arg(sprintf(paste0("offset \"GMPR\" is undefined: sample(s) %s share no species with any ",
                            "other sample."),
                     name_list(if (is.null(rownames(counts))) alone else rownames(counts)[alone], 5L)))
  }
  size
}

offset_rle <- function(counts, pseudocounts = 0L, type = c("ratio", "poscounts")) {
  type <- choose_arg(type, "type", c("ratio", "poscounts"))
  check_number(pseudocounts, "pseudocounts", lower = 0)
  counts <- counts + pseudocounts
  if (type == "poscounts") counts[counts == 0] <- NA
  log_gm <- colMeans(log(counts), na.rm = TRUE)
  usable <- is.finite(log_gm)  # species with a zero (type "ratio") or no positive count are left out
  if (!any(usable))
    stop_arg("offset \"RLE\" is undefined: no species has a positive count in every sample; ",
             "use type = \"poscounts\" (geometric means of positive counts) or pseudocounts.")
  gm <- exp(log_gm[usable])
  ratios <- sweep(counts[, usable, drop = FALSE], 2L, gm, "/")
  ratios[is.na(ratios) | ratios <= 0] <- NA
  row_medians(ratios)
}

offset_css <- function(counts, reference = stats::median) {
  if (!is.function(reference))
    stop_arg("`reference` must be a function such as median or mean; got ", describe_value(reference), ".")
  p <- ncol(counts)
  if (p == 1L) return(counts[, 1L] / stats::median(counts))
  counts[counts == 0] <- NA
  if (any(rowSums(!is.na(counts)) < 2L)) {
    warning("offset \"CSS\": some samples have fewer than two positive counts, so their ",
            "quantiles are undefined: falling back to TSS (total counts).", call. = FALSE)
    return(rowSums(counts, na.rm = TRUE))
  }
  probs <- seq(0, 1, length.out = p)
  quant <- t(apply(counts, 1L, stats::quantile, probs = probs, na.rm = TRUE, names = FALSE))
  ref <- apply(quant, 2L, reference)
  mad <- apply(abs(sweep(quant, 2L, ref)), 2L, stats::median)
  ## the first quantile l where the spread jumps: mad[l + 1] - mad[l] >= 0.1 mad[l], never below
  ## the median quantile (metagenomeSeq's rule)
  unstable <- diff(mad) >= 0.1 * mad[-p]
  if (any(unstable)) {
    l <- max(min(which(unstable)), ceiling(p / 2))
  } else {
    warning("offset \"CSS\": no quantile is unstable across samples; using the full sums ",
            "(scaled TSS).", call. = FALSE)
    l <- p
  }
  sums <- rowSums(counts * (counts <= quant[, l]), na.rm = TRUE)
  sums / stats::median(sums)
}

offset_tmm <- function(counts, logratioTrim = 0.3, sumTrim = 0.05, Acutoff = -1e10) {
  check_number(logratioTrim, "logratioTrim", lower = 0, upper = 0.5)
  check_number(sumTrim, "sumTrim", lower = 0, upper = 0.5)
  check_number(Acutoff, "Acutoff", lower = -Inf)
  lib <- rowSums(counts)
  f75 <- apply(counts, 1L, stats::quantile, probs = 0.75, names = FALSE) / lib
  ## edgeR's reference sample: upper quartile closest to the mean one (or the largest sum of
  ## square roots when upper quartiles vanish)
  ref_row <- if (stats::median(f75) < 1e-20) which.max(rowSums(sqrt(counts)))
             else which.min(abs(f75 - mean(f75)))
  ref <- counts[ref_row, ]
  f <- vapply(seq_len(nrow(counts)), function(i)
    tmm_factor(counts[i, ], ref, lib[i], lib[ref_row], logratioTrim, sumTrim, Acutoff), numeric(1))
  f <- f * lib
  f / geom_mean_pos(f)
}

## TMM factor of one sample against the reference (edgeR's .calcFactorTMM, with weighting).
tmm_factor <- function(obs, ref, n_obs, n_ref, logratioTrim, sumTrim, Acutoff) {
  log_ratio <- log2((obs / n_obs) / (ref / n_ref))
  abs_expr <- (log2(obs / n_obs) + log2(ref / n_ref)) / 2
  variance <- (n_obs - obs) / n_obs / obs + (n_ref - ref) / n_ref / ref
  ok <- is.finite(log_ratio) & is.finite(abs_expr) & abs_expr > Acutoff
  log_ratio <- log_ratio[ok]; abs_expr <- abs_expr[ok]; variance <- variance[ok]
  if (!length(log_ratio) || max(abs(log_ratio)) < 1e-6) return(1)
  m <- length(log_ratio)
  lo_l <- floor(m * logratioTrim) + 1; hi_l <- m + 1 - lo_l
  lo_s <- floor(m * sumTrim) + 1; hi_s <- m + 1 - lo_s
  r_l <- rank(log_ratio); r_s <- rank(abs_expr)
  keep <- r_l >= lo_l & r_l <= hi_l & r_s >= lo_s & r_s <= hi_s
  f <- sum(log_ratio[keep] / variance[keep], na.rm = TRUE) / sum(1 / variance[keep], na.rm = TRUE)
  if (is.na(f)) f <- 0  # no shared species: factor 1
  2^f
}

offset_wrench <- function(counts, groups = rep(1, nrow(counts)), type = c("wrench", "simple")) {
  type <- choose_arg(type, "type", c("wrench", "simple"))
  n <- nrow(counts)
  if (n < 2L) stop_arg("offset \"Wrench\" needs at least two samples; `counts` has one.")
  if (length(groups) != n || anyNA(groups))
    stop_arg(sprintf("`groups` must hold one group label per sample (%d), without NA; got %s.",
                     n, describe_value(groups)))
  counts <- counts[, colSums(counts) > 0, drop = FALSE]  # absent species carry no ratio
  p <- ncol(counts)
  depths <- rowSums(counts)
  if (p == 1L) return(depths / geom_mean_pos(depths))
  log_var <- function(x) stats::var(log(x[is.finite(x) & x > 0]))
  props <- counts / depths
  props_ref <- colMeans(props)
  ratios <- sweep(props, 2L, props_ref, "/")
  species_vars <- wrench_species_variance(counts, groups, depths_as_offset = type == "simple")

  groups <- as.character(groups)
  if (length(unique(groups)) == 1L) {
    overall <- (colSums(counts) / sum(counts)) / props_ref
    sample_scales <- rep(mean(overall), n)
    sample_vars <- rep(log_var(overall), n)
  } else {
    group_counts <- rowsum(counts, groups, reorder = TRUE)
    group_ratios <- sweep(group_counts / rowSums(group_counts), 2L, props_ref, "/")
    sample_scales <- rowMeans(group_ratios)[groups]
    sample_vars <- apply(group_ratios, 1L, log_var)[groups]
  }
  ## regularised log ratios: a sample effect a_i (precision-weighted mean) plus shrunken species
  ## deviations b_ij
  log_ratios <- log(ratios / sample_scales)
  total_var <- outer(sample_vars, species_vars, "+")
  w <- 1 / total_var
  w <- w / rowSums(w)
  w[!is.finite(log_ratios)] <- NA
  a <- rowSums(log_ratios * w, na.rm = TRUE)
  b <- (sample_vars / total_var) * (log_ratios - a)
  ratios <- exp(b + a) * sample_scales

  if (type == "wrench") {
    ratios <- sweep(ratios, 2L, exp(species_vars / 2), "/")
    ## probability of a zero, by a logistic regression of absence on log depth (no intercept)
    pi0 <- apply(counts, 2L, function(y) suppressWarnings(
      stats::glm.fit(cbind(log(depths)), 0L + (y == 0), family = stats::binomial())$fitted.values))
    w <- 1 / ((1 - pi0) * (pi0 + exp(total_var) - 1))
    w[!is.finite(w)] <- NA
  } else {
    w <- matrix(1, n, p)
  }
  w <- w / rowSums(w, na.rm = TRUE)
  comp <- rowSums(ratios * w, na.rm = TRUE)
  comp <- comp / geom_mean_pos(comp)
  comp * depths / geom_mean_pos(depths)
}

## Per-species residual variance of log counts (positive counts only) regressed on the groups,
## with the log depths as an offset ("simple") or a covariate ("wrench"); at least machine eps.
wrench_species_variance <- function(counts, groups, depths_as_offset) {
  log_depths <- log(rowSums(counts))
  log_counts <- log(counts)
  log_counts[!is.finite(log_counts)] <- NA
  groups <- as.character(groups)
  design <- if (length(unique(groups)) > 1L) stats::model.matrix(~ 0 + groups)
            else matrix(1, nrow(counts), 1L)
  if (depths_as_offset) log_counts <- log_counts - log_depths
  else design <- cbind(design, log_depths)
  v <- vapply(seq_len(ncol(counts)), function(j) {
    ok <- !is.na(log_counts[, j])
    fit <- stats::.lm.fit(design[ok, , drop = FALSE], log_counts[ok, j])
    if (fit$rank == sum(ok)) return(0)
    sum(fit$residuals^2) / (sum(ok) - fit$rank)
  }, numeric(1))
  pmax(v, .Machine$double.eps)
}
