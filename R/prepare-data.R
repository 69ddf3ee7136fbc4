#' A data frame for PLN() from a count table and a sample table
#'
#' Matches the samples of a count table to the rows of a table of covariates,
#' drops empty samples, computes offsets and returns the data frame that
#' [PLN()] takes: the covariates, the counts as the matrix column `Abundance`
#' and the offsets as the column `Offset`, as PLNmodels 1.3.2's function of
#' the same name does.
#'
#' @param counts the count table: a matrix, a numeric data frame or a `Matrix`
#'   (such as a sparse `dgCMatrix`, made dense: the engine is dense), samples in
#'   rows (samples in columns are recognised by their names and transposed).
#'   Non-negative whole numbers; `NA` counts are replaced by 0 with a warning.
#' @param covariates a data frame (or anything [as.data.frame()] takes) with one
#'   row per sample, preferably with the sample names as row names.
#' @param offset the offset scheme or offsets of your own, see
#'   [compute_offset()]: `"TSS"` (default), `"GMPR"`, `"RLE"`, `"CSS"`,
#'   `"Wrench"`, `"TMM"`, `"none"`, or a numeric vector or matrix with sample
#'   names.
#' @param ... arguments of the scheme, passed to [compute_offset()] (`scale`,
#'   `pseudocounts`, `groups`...). A `groups` of one value per row of
#'   `covariates` is subset with the samples kept.
#'
#' @details Samples are matched as PLNmodels matches them:
#' * by name, between the row names (or, when they match, the column names, and
#'   then the table is transposed) of `counts` and the row names of
#'   `covariates`; samples found in only one of them are dropped with a
#'   warning;
#' * when no name matches, by position, with a warning: both must then have
#'   the same number of rows, and `counts` no row names of its own (which would
#'   contradict those of `covariates`: an error).
#'
#' Samples whose counts are all zero are dropped with a warning (their offset
#' would be zero, its log infinite). Species absent from every sample are kept
#' ([PLN()] warns about them). Column names of `covariates` go through
#' [data.frame()] (`check.names`), as in PLNmodels.
#'
#' @return A data frame with one row per sample kept, named by the samples:
#'   `Abundance` (the counts, a base matrix), the columns of `covariates`, and
#'   `Offset` (a vector of one value per sample, or an n x p matrix for offsets
#'   of your own; absent for `offset = "none"`). Fit it with
#'   `PLN(Abundance ~ ... + offset(log(Offset)), data = )`.
#' @seealso [compute_offset()] for the schemes.
#' @export
#' @examples
#' ## a count table and a sample table, as a user has them
#' counts <- oaks$Abundance
#' samples <- data.frame(tree = oaks$tree, distTOground = oaks$distTOground,
#'                       row.names = rownames(counts))
#' dat <- prepare_data(counts, samples, offset = "GMPR")
#' str(dat[, c("tree", "Offset")])
#' fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = dat)
#' fit$loglik
#'
#' ## sparse counts (package Matrix) are accepted and made dense
#' if (requireNamespace("Matrix", quietly = TRUE)) {
#'   sparse <- Matrix::Matrix(counts, sparse = TRUE)
#'   dat_sparse <- prepare_data(sparse, samples)
#'   identical(dat_sparse$Offset, prepare_data(counts, samples)$Offset)
#' }
prepare_data <- function(counts, covariates, offset = "TSS", ...) {
  if (missing(counts)) stop_arg("`counts` is missing.")
  if (missing(covariates)) stop_arg("`covariates` is missing.")
  if (inherits(counts, "Matrix")) counts <- dense_counts(counts, "`counts`")
  if (is.data.frame(counts)) {
    counts <- check_counts_frame(counts)
  } else if (is.null(dim(counts)) || !is.numeric(counts)) {
    stop_arg("`counts` must be a numeric count matrix (samples in rows); got ",
             describe_value(counts), ".")
  }
  covariates <- tryCatch(as.data.frame(covariates), error = function(e)
    stop_arg("`covariates` must be a data frame (one row per sample): ", conditionMessage(e)))
  n_cov <- nrow(covariates)
  own_offset <- is.numeric(offset)
  if (own_offset && is.null(dim(offset)))
    offset <- matrix(offset, ncol = 1L, dimnames = list(names(offset), NULL))

  matched <- match_samples(counts, covariates)
  counts <- matched$counts
  if (matched$by_position) rownames(covariates) <- matched$covariate_names
  if (matched$by_position && own_offset && is.null(rownames(offset)) && nrow(offset) == nrow(counts))
    rownames(offset) <- rownames(counts)
  samples <- matched$samples
  counts <- counts[samples, , drop = FALSE]

  if (anyNA(counts)) {
    warning(sprintf("`counts` has %d NA value(s): replaced by 0, as PLNmodels does.", sum(is.na(counts))),
            call. = FALSE)
    counts[is.na(counts)] <- 0
  }
  counts <- check_counts(counts)
  empty <- rowSums(counts) == 0
  if (any(empty)) {
    warning(sprintf("`counts` has %d empty sample(s) (%s): dropped, for lack of positive counts.",
                    sum(empty), name_list(samples[empty], 10L)), call. = FALSE)
    samples <- samples[!empty]
    counts <- counts[samples, , drop = FALSE]
  }
  if (!length(samples)) stop_arg("`counts` has no sample with a positive count.")
  kept <- match(samples, matched$covariate_names)
  covariates <- covariates[kept, , drop = FALSE]

  args <- list(...)
  if (!is.null(args$groups) && length(args$groups) == n_cov && n_cov != length(samples))
    args$groups <- args$groups[kept]
  off <- do.call(compute_offset, c(list(counts, offset), args))

  ## placeholders first, so that the matrix columns are plain matrices (no I(), no "AsIs")
  result <- data.frame(Abundance = NA, covariates, Offset = NA)
  result$Abundance <- counts
  result$Offset <- off
  result
}

## A data frame of counts: numeric columns only (data.matrix() would turn factors into codes);
## its row names kept, automatic ones too, as PLNmodels keeps them for matching.
check_counts_frame <- function(counts) {
  num <- vapply(counts, is.numeric, logical(1))
  if (!all(num))
    stop_arg(sprintf("`counts` must hold numeric counts; column(s) %s are not numeric.",
                     name_list(names(counts)[!num], 5L)))
  m <- as.matrix(counts)
  rownames(m) <- rownames(counts)
  m
}

## Which rows of `counts` are which rows of `covariates` (PLNmodels' heuristics): by name, with
## counts transposed when its column names are the samples; else by position. The row names of
## `covariates` count even when automatic ("1", "2", ...), as in PLNmodels.
match_samples <- function(counts, covariates) {
  cov_names <- rownames(covariates)
  count_names <- c(rownames(counts), colnames(counts))
  by_position <- is.null(cov_names) || !any(count_names %in% cov_names)
  if (by_position) {
    if (nrow(counts) != nrow(covariates))
      stop_arg(sprintf(paste0("`counts` and `covariates` share no sample name, so samples are matched ",
                              "by position, but `counts` has %d rows and `covariates` %d: give both ",
                              "the sample names (row names)."), nrow(counts), nrow(covariates)))
    if (!is.null(rownames(counts)) && !is.null(cov_names))
      stop_arg(sprintf(paste0("the sample names of `counts` (%s) and of `covariates` (%s) differ: ",
                              "name the rows of both by the same samples."),
                       name_list(rownames(counts), 3L), name_list(cov_names, 3L)))
    warning("`counts` and `covariates` share no sample name: samples are matched by position ",
            "(rows of `counts` taken as samples, in the order of `covariates`).", call. = FALSE)
    names <- rownames(counts) %||% cov_names %||% paste0("Sample_", seq_len(nrow(counts)))
    rownames(counts) <- names
    return(list(counts = counts, samples = names, covariate_names = names, by_position = TRUE))
  }
  if (any(colnames(counts) %in% cov_names)) counts <- t(counts)
  samples <- intersect(rownames(counts), cov_names)
  if (length(samples) < nrow(counts))
    warning(sprintf("%d sample(s) of `counts` have no row in `covariates` and are dropped (%s).",
                    nrow(counts) - length(samples),
                    name_list(setdiff(rownames(counts), samples), 10L)), call. = FALSE)
  if (length(samples) < length(cov_names))
    warning(sprintf("%d sample(s) of `covariates` have no counts and are dropped (%s).",
                    length(cov_names) - length(samples),
                    name_list(setdiff(cov_names, samples), 10L)), call. = FALSE)
  list(counts = counts, samples = samples, covariate_names = cov_names, by_position = FALSE)
}

## A `Matrix` (sparse or dense) made a base matrix, with its names: PLN's engine is dense. The
## size is checked first, so that a table too large fails with its size rather than in Matrix.
## `label` names the argument in errors.
dense_counts <- function(x, label) {
  if (!requireNamespace("Matrix", quietly = TRUE))
    stop_arg(label, " is a Matrix object: install the package Matrix to use it.")
  n <- as.double(nrow(x)); p <- as.double(ncol(x))
  bytes <- n * p * 8
  limit <- getOption("plntorch.max_memory", Inf)
  if (n * p > .Machine$integer.max || bytes > limit)
    stop_arg(sprintf(paste0("%s is a %.0f x %.0f Matrix: made dense (PLN's engine works on dense ",
                            "counts) it would take %s%s; select samples or species first."),
                     label, n, p, size_text(bytes),
                     if (bytes > limit) sprintf(", above options(plntorch.max_memory) = %s", size_text(limit))
                     else ", more than a base R matrix holds"))
  as.matrix(x)
}

size_text <- function(bytes) format(structure(bytes, class = "object_size"), units = "auto", standard = "SI")

## PLN() with a response that is a `Matrix` (say sparse): model.frame() cannot hold one, so the
## formula's response is replaced by a dense copy, bound in an environment whose parent is the
## formula's (the copy lives as long as the fit's `terms`). Other responses: formula unchanged.
dense_response <- function(formula, data) {
  lhs <- formula[[2L]]
  env <- environment(formula) %||% parent.frame(2L)
  y <- tryCatch(eval(lhs, if (is.null(data) || is.environment(data)) NULL else data, env),
                error = function(e) NULL)
  if (!inherits(y, "Matrix")) return(formula)
  if (!is.null(data) && "." %in% formula_vars(formula[[3L]]))
    formula <- stats::formula(stats::terms(formula, data = data))  # expand `.` before renaming
  dense <- new.env(parent = env)
  assign(".plntorch_dense_response", dense_counts(y, sprintf("the response `%s`", deparse1(lhs))),
         envir = dense)
  formula[[2L]] <- as.name(".plntorch_dense_response")
  environment(formula) <- dense
  formula
}
