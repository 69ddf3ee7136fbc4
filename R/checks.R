## Argument checks shared by PLN_param(), PLN() and PLNtorch. Each error names the
## argument it is about, so a user knows what to change.

stop_arg <- function(...) stop(..., call. = FALSE)

describe_value <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.character(x) && length(x) == 1L) return(sprintf("\"%s\"", x))
  if (is.atomic(x) && length(x) == 1L) return(format(x))
  a <- function(word) paste(if (grepl("^[aeiou]", word)) "an" else "a", word)
  if (is.atomic(x)) return(sprintf("%s of length %d", a(describe_type(x)), length(x)))
  sprintf("%s of length %d", a(class(x)[1L]), length(x))
}

## "character vector", "logical matrix", "integer factor": the type of an atomic value, and its
## shape or class, without repeating one word ("character character").
describe_type <- function(x) {
  if (is.factor(x)) return("factor")
  shape <- if (is.matrix(x)) "matrix" else if (is.array(x)) "array" else class(x)[1L]
  if (shape %in% c(typeof(x), mode(x), "numeric", "integer", "logical", "character", "complex"))
    shape <- "vector"
  paste(typeof(x), shape)
}

## Column names of counts without any, as lm() names the responses of an mlm: "Y1", ..., "Yp".
default_species_names <- function(p) paste0("Y", seq_len(p))

check_choice <- function(x, arg, choices, null_ok = FALSE) {
  if (is.null(x) && null_ok) return(NULL)
  if (!is.character(x) || length(x) != 1L || is.na(x) || !x %in% choices)
    stop_arg(sprintf("`%s` must be one of %s%s; got %s.", arg,
                     paste0("\"", choices, "\"", collapse = ", "),
                     if (null_ok) " or NULL" else "", describe_value(x)))
  x
}

check_device <- function(x, arg = "device") {
  if (!is.character(x) || length(x) != 1L || is.na(x) ||
      !grepl("^(cpu|cuda(:[0-9]+)?)$", x))
    stop_arg(sprintf("`%s` must be \"cpu\", \"cuda\" or \"cuda:N\" (N a GPU number); got %s.",
                     arg, describe_value(x)))
  x
}

check_number <- function(x, arg, lower = -Inf, upper = Inf, strict = FALSE, null_ok = FALSE) {
  if (is.null(x) && null_ok) return(NULL)
  ok <- is.numeric(x) && length(x) == 1L && !is.na(x) && is.finite(x) &&
    (if (strict) x > lower else x >= lower) && x <= upper
  if (!ok) {
    range <- if (strict) sprintf("> %s", format(lower)) else sprintf(">= %s", format(lower))
    if (is.finite(upper)) range <- paste(range, "and <=", format(upper))
    stop_arg(sprintf("`%s` must be a single finite number %s; got %s.", arg, range, describe_value(x)))
  }
  as.double(x)
}

check_count <- function(x, arg, lower = 0L, null_ok = FALSE) {
  if (is.null(x) && null_ok) return(NULL)
  ok <- is.numeric(x) && length(x) == 1L && !is.na(x) && is.finite(x) &&
    x == round(x) && x >= lower && x <= .Machine$integer.max
  if (!ok) stop_arg(sprintf("`%s` must be a single whole number >= %d; got %s.", arg, lower, describe_value(x)))
  as.integer(x)
}

## trace: 0 (FALSE, silent) or 1 (TRUE, the ELBO as the fit goes); no other level exists.
check_trace <- function(x, arg = "trace") {
  if (is.logical(x) && length(x) == 1L && !is.na(x)) return(as.integer(x))
  if (!is.numeric(x) || length(x) != 1L || is.na(x) || !x %in% c(0, 1))
    stop_arg(sprintf("`%s` must be 0 (silent) or 1 (the ELBO as the fit goes), or FALSE/TRUE; got %s.",
                     arg, describe_value(x)))
  as.integer(x)
}

## num_threads: NULL leaves LibTorch's setting; otherwise at least one thread (0 would mean
## nothing the user could want: NULL says "LibTorch's setting").
check_threads <- function(x, arg = "num_threads") {
  if (is.null(x)) return(NULL)
  ok <- is.numeric(x) && length(x) == 1L && !is.na(x) && is.finite(x) && x == round(x) &&
    x >= 1 && x <= .Machine$integer.max
  if (!ok)
    stop_arg(sprintf("`%s` must be a whole number >= 1, or NULL for LibTorch's setting; got %s.",
                     arg, describe_value(x)))
  as.integer(x)
}

check_init <- function(x, arg = "init", allowed = c("B", "M", "S")) {
  if (is.list(x)) {
    bad <- setdiff(names(x), allowed)
    if (is.null(names(x)) || any(names(x) == "") || length(bad))
      stop_arg(sprintf("`%s`, when a list, must have elements named among %s.", arg,
                       paste(allowed, collapse = ", ")))
    for (nm in names(x)) {
      v <- x[[nm]]
      if (is.null(v)) next
      if (!is.numeric(v) || !is.matrix(v))
        stop_arg(sprintf("`%s$%s` must be a numeric matrix; got %s.", arg, nm, describe_value(v)))
      if (!all(is.finite(v))) {
        k <- which(!is.finite(v), arr.ind = TRUE)[1L, ]
        stop_arg(sprintf("`%s$%s` must hold finite values; found %s at [%d, %d].",
                         arg, nm, format(v[k[1L], k[2L]]), k[1L], k[2L]))
      }
      if (nm == "S" && any(v == 0))
        stop_arg(sprintf("`%s$S` must be non-zero (S are standard deviations); found %d zero(s).",
                         arg, sum(v == 0)))
    }
    return(x[!vapply(x, is.null, logical(1))])
  }
  check_choice(x, arg, c("lm", "tutorial"))
}

## "a, b, c" for at most `max` names, then how many more.
name_list <- function(x, max = 10L) {
  if (length(x) <= max) return(paste(x, collapse = ", "))
  sprintf("%s and %d more", paste(x[seq_len(max)], collapse = ", "), length(x) - max)
}

## Duplicated sample or species names would make rows or columns of the results that cannot
## be told apart (coef(fit)[, "sp"] takes the first): they are made unique as make.unique()
## does, with a warning.
unique_names <- function(x, what, label) {
  if (is.null(x) || !anyDuplicated(x)) return(x)
  dup <- unique(x[duplicated(x)])
  new <- make.unique(as.character(x))
  warning(sprintf("%s has duplicated %s names (%s): made unique as make.unique() does (%s).",
                  label, what, name_list(dup, 5L),
                  name_list(new[x %in% dup & duplicated(x)], 5L)), call. = FALSE)
  new
}

## Plain double matrix without attributes (what the engine maps without copying).
as_double_matrix <- function(x) {
  matrix(as.double(x), nrow = NROW(x), ncol = NCOL(x))
}

as_numeric_matrix <- function(x, label) {
  ## Sparse (or dense) matrices of the Matrix package: the engine works on dense tensors,
  ## so they are made dense here (documented in ?PLN, "Input checks").
  if (inherits(x, "Matrix")) x <- as.matrix(x)
  if (is.data.frame(x)) {
    if (!all(vapply(x, is.numeric, logical(1))))
      stop_arg(label, " must be numeric; found non-numeric columns.")
    x <- as.matrix(x)
  }
  if (!is.numeric(x) || !(is.matrix(x) || is.null(dim(x))))
    stop_arg(label, " must be a numeric matrix; got ", describe_value(x), ".")
  if (is.null(dim(x))) x <- matrix(x, ncol = 1L)
  x
}

check_finite <- function(x, label, hint = "") {
  if (anyNA(x)) stop_arg(label, " contains missing values (NA)", hint, ".")
  if (!all(is.finite(x))) stop_arg(label, " contains infinite values", hint, ".")
}

#' Checks and shapes the data of a PLN model
#'
#' The one validation step before anything reaches the engine, used by [PLN()]
#' and [PLNtorch].
#' @param Y counts, n x p.
#' @param O offsets (log scale): `NULL` (zero), a number, a vector of length n
#'   (one offset per sample) or an n x p matrix.
#' @param X covariates, n x d; `NULL` is an intercept only.
#' @param w weights, length n; `NULL` is all 1.
#' @param labels how errors name each argument.
#' @return list(Y, O, X, w) as plain double matrices / vector, plus `names`
#'   (sample, species and covariate names, possibly `NULL`).
#' @noRd
check_pln_data <- function(Y, O = NULL, X = NULL, w = NULL,
                           labels = c(Y = "`Y`", O = "`O`", X = "`X`", w = "`w`")) {
  if (is.null(Y)) stop_arg(labels[["Y"]], " is missing.")
  Y <- as_numeric_matrix(Y, labels[["Y"]])
  n <- nrow(Y); p <- ncol(Y)
  if (n < 1L || p < 1L) stop_arg(labels[["Y"]], " has no rows or no columns.")
  check_finite(Y, labels[["Y"]])
  if (any(Y < 0)) stop_arg(labels[["Y"]], " must hold counts: found negative values.")
  if (any(Y != round(Y)))
    stop_arg(labels[["Y"]], " must hold counts: found non-integer values (e.g. ",
             format(Y[Y != round(Y)][1L]), ").")
  if (all(Y == 0)) stop_arg(labels[["Y"]], " has only zeros.")
  sample_names <- unique_names(rownames(Y), "sample (row)", labels[["Y"]])
  species_names <- unique_names(colnames(Y), "species (column)", labels[["Y"]])
  if (is.null(species_names)) species_names <- default_species_names(p)

  if (is.null(O)) {
    O <- matrix(0, n, p)
  } else {
    O <- as_numeric_matrix(O, labels[["O"]])
    if (length(O) == 1L) O <- matrix(O, n, p)
    if (nrow(O) != n || !ncol(O) %in% c(1L, p))
      stop_arg(sprintf("%s must be an n x p matrix (%d x %d) or a vector of length n = %d; got %d x %d.",
                       labels[["O"]], n, p, n, nrow(O), ncol(O)))
    if (ncol(O) == 1L && p > 1L) O <- matrix(O, n, p)
    check_finite(O, labels[["O"]], " (offsets are on the log scale: a log of zero?)")
  }

  if (is.null(X)) {
    X <- matrix(1, n, 1L, dimnames = list(NULL, "(Intercept)"))
  } else {
    X <- as_numeric_matrix(X, labels[["X"]])
    if (nrow(X) != n)
      stop_arg(sprintf("%s must have n = %d rows, as many as %s; got %d.",
                       labels[["X"]], n, labels[["Y"]], nrow(X)))
    if (ncol(X) < 1L)
      stop_arg(labels[["X"]], " has no column: the model needs at least one covariate (e.g. an intercept).")
    check_finite(X, labels[["X"]])
    qx <- qr(X)
    if (qx$rank < ncol(X)) {
      ## the columns lm() would report as NA: those the pivoted QR puts past the rank
      nms <- colnames(X)
      if (is.null(nms)) nms <- paste0("column ", seq_len(ncol(X)))
      aliased <- nms[qx$pivot[(qx$rank + 1L):ncol(X)]]
      stop_arg(sprintf("%s has rank %d < %d columns: the covariates are collinear (%s %s a linear combination of the others, as lm() would show by NA coefficients); drop %s.",
                       labels[["X"]], qx$rank, ncol(X), name_list(aliased),
                       if (length(aliased) == 1L) "is" else "are",
                       if (length(aliased) == 1L) "it" else "them"))
    }
  }
  covariate_names <- colnames(X)

  if (is.null(w)) {
    w <- rep(1, n)
  } else {
    if (!is.numeric(w) || !is.null(dim(w)) && min(dim(w)) > 1L)
      stop_arg(labels[["w"]], " must be a numeric vector; got ", describe_value(w), ".")
    if (length(w) != n)
      stop_arg(sprintf("%s must have length n = %d; got %d.", labels[["w"]], n, length(w)))
    check_finite(w, labels[["w"]])
    if (any(w < 0)) stop_arg(labels[["w"]], " must be positive: found ", sum(w < 0),
                             " negative weight(s).")
    if (any(w == 0))
      stop_arg(labels[["w"]], " must be positive: found ", sum(w == 0), " zero weight(s); ",
               "drop those samples instead (`subset` in PLN(), or the rows of the data).")
  }

  if (any(colSums(Y) == 0))
    warning(sprintf("%s has %d column(s) with only zeros (e.g. %s): their coefficients drift to -Inf.",
                    labels[["Y"]], sum(colSums(Y) == 0),
                    if (is.null(species_names)) which(colSums(Y) == 0)[1L] else species_names[colSums(Y) == 0][1L]),
            call. = FALSE)

  list(Y = as_double_matrix(Y), O = as_double_matrix(O), X = as_double_matrix(X),
       w = as.double(w),
       names = list(samples = sample_names, species = species_names, covariates = covariate_names))
}

## Sparse counts (a Matrix sparseMatrix) for PLNPCA(): the checks of check_pln_data() on the
## non-zeros, the covariates and weights by check_pln_data() itself (on a stand-in column), and
## the offsets kept as one column when given one value per sample. The counts become CSR (0-based
## rowptr, col, val), which is what the engine takes.
check_sparse_data <- function(Y, O = NULL, X = NULL, w = NULL,
                              labels = c(Y = "`Y`", O = "`O`", X = "`X`", w = "`w`")) {
  if (!requireNamespace("Matrix", quietly = TRUE))
    stop_arg(labels[["Y"]], " is a sparse matrix, which needs the 'Matrix' package: install it.")
  n <- nrow(Y); p <- ncol(Y)
  if (n < 1L || p < 1L) stop_arg(labels[["Y"]], " has no rows or no columns.")
  if (!methods::is(Y, "dMatrix"))
    stop_arg(sprintf("%s must be a numeric count matrix; got a %s sparse matrix (%s).",
                     labels[["Y"]], if (methods::is(Y, "lMatrix") || methods::is(Y, "nMatrix"))
                       "logical" else "non-numeric", class(Y)[1L]))
  R <- methods::as(methods::as(Y, "generalMatrix"), "RsparseMatrix")
  if (!methods::is(R, "dgRMatrix")) R <- methods::as(R, "dMatrix")
  v <- R@x
  check_finite(v, labels[["Y"]])
  if (any(v < 0)) stop_arg(labels[["Y"]], " must hold counts: found negative values.")
  if (any(v != round(v)))
    stop_arg(labels[["Y"]], " must hold counts: found non-integer values (e.g. ",
             format(v[v != round(v)][1L]), ").")
  if (!any(v != 0)) stop_arg(labels[["Y"]], " has only zeros.")
  base <- check_pln_data(matrix(1, n, 1L), NULL, X, w, labels)
  if (is.null(O)) {
    O <- matrix(0, n, 1L)
  } else {
    O <- as_numeric_matrix(O, labels[["O"]])
    if (length(O) == 1L) O <- matrix(O, n, 1L)
    if (nrow(O) != n || !ncol(O) %in% c(1L, p))
      stop_arg(sprintf("%s must be an n x p matrix (%d x %d) or a vector of length n = %d; got %d x %d.",
                       labels[["O"]], n, p, n, nrow(O), ncol(O)))
    check_finite(O, labels[["O"]], " (offsets are on the log scale: a log of zero?)")
  }
  dn <- dimnames(Y)
  list(Y = NULL, O = as_double_matrix(O), X = base$X, w = base$w, n = n, p = p,
       csr = list(rowptr = as.double(R@p), col = as.double(R@j), val = as.double(v), n = n, p = p),
       names = list(samples = unique_names(dn[[1L]], "sample (row)", labels[["Y"]]),
                    species = unique_names(dn[[2L]], "species (column)", labels[["Y"]]) %||%
                      default_species_names(p),
                    covariates = base$names$covariates))
}

## Checks explicit starting values against the data's dimensions.
check_start <- function(start, n, p, d, arg = "init") {
  want <- list(B = c(d, p), M = c(n, p), S = c(n, p))
  out <- list(B = NULL, M = NULL, S = NULL)
  for (nm in names(start)) {
    v <- start[[nm]]
    if (!identical(as.integer(dim(v)), as.integer(want[[nm]])))
      stop_arg(sprintf("`%s$%s` must be %d x %d; got %d x %d.", arg, nm,
                       want[[nm]][1L], want[[nm]][2L], nrow(v), ncol(v)))
    out[nm] <- list(as_double_matrix(v))
  }
  out
}

## Omega (covariance "fixed") and C (covariance "genpop"): given when, and only when, the structure
## needs it; a symmetric numeric matrix of finite values; C a correlation matrix. Their size is
## checked against the data when fitting (check_structure_dims()).
check_structure_matrix <- function(x, arg, needed, structure) {
  if (is.null(x)) {
    if (needed)
      stop_arg(sprintf("`%s` is required when covariance = \"%s\" (a p x p %s matrix).", arg,
                       structure, if (arg == "C") "correlation" else "precision"))
    return(NULL)
  }
  if (!needed)
    stop_arg(sprintf("`%s` is used only with covariance = \"%s\"; drop it, or set covariance.",
                     arg, structure))
  if (inherits(x, "Matrix")) x <- as.matrix(x)
  if (!is.numeric(x) || !is.matrix(x) || nrow(x) != ncol(x) || nrow(x) < 1L)
    stop_arg(sprintf("`%s` must be a square numeric matrix; got %s.", arg, describe_value(x)))
  check_finite(x, sprintf("`%s`", arg))
  if (!isSymmetric(unname(x), tol = 1e-8))
    stop_arg(sprintf("`%s` must be symmetric.", arg))
  if (arg == "C" && (any(abs(diag(x) - 1) > 1e-8) || any(abs(x) > 1 + 1e-8)))
    stop_arg("`C` must be a correlation matrix: ones on its diagonal, entries in [-1, 1].")
  if (arg == "C") {
    ## a correlation matrix is positive semi-definite; allow for rounding (C's diagonal is 1)
    lmin <- min(eigen(x, symmetric = TRUE, only.values = TRUE)$values)
    if (lmin < -1e-8 * nrow(x))
      stop_arg(sprintf("`C` must be positive semi-definite (a correlation matrix); its smallest eigenvalue is %s.",
                       format(signif(lmin, 3))))
  }
  if (arg == "Omega" && min(eigen(x, symmetric = TRUE, only.values = TRUE)$values) <= 0)
    stop_arg("`Omega` must be positive definite (a precision matrix).")
  storage.mode(x) <- "double"
  x
}

check_structure_dims <- function(control, p) {
  for (arg in c("Omega", "C")) {
    x <- control[[arg]]
    if (!is.null(x) && nrow(x) != p)
      stop_arg(sprintf("`%s` must be %d x %d, one row and column per species of the response; got %d x %d.",
                       arg, p, p, nrow(x), ncol(x)))
  }
  invisible(TRUE)
}

## The cores this process may run on: its CPU affinity (as taskset or a container's cpuset set
## it), else the machine's cores.
available_cores <- function() {
  aff <- tryCatch(parallel::mcaffinity(), error = function(e) NULL)
  n <- if (length(aff)) length(aff) else parallel::detectCores()
  if (is.na(n) || n < 1L) 1L else as.integer(n)
}

## The variables an expression reads, as all.vars() gives them, but for what `lm()` reads
## too: the right side of `$` and `@` is a name, not a variable (oaks$Abundance reads `oaks`),
## and pkg::name reads nothing of the data.
formula_vars <- function(e) {
  if (is.symbol(e)) return(if (nzchar(as.character(e))) as.character(e) else character())
  if (!is.call(e)) return(character())
  f <- e[[1L]]
  if (identical(f, as.name("$")) || identical(f, as.name("@"))) return(formula_vars(e[[2L]]))
  if (identical(f, as.name("::")) || identical(f, as.name(":::"))) return(character())
  unique(c(if (is.call(f)) formula_vars(f),
           unlist(lapply(seq_along(e)[-1L], function(i) formula_vars(e[[i]])), use.names = FALSE)))
}

## `subset` of PLN(), evaluated: logical (one value per sample, or one for all), row numbers
## (all positive or all negative, as `[` takes them) or row names of the data, within range and
## without NA (model.frame() would turn an NA into a row of NAs, or index past the end).
check_subset <- function(x, n, row_names, arg = "`subset`") {
  if (is.null(x)) return(NULL)
  na_at <- function() which(is.na(x))[1L]
  if (!is.null(dim(x)) || !(is.logical(x) || is.numeric(x) || is.character(x)))
    stop_arg(sprintf("%s must be a logical vector, row numbers or row names; got %s.",
                     arg, describe_value(x)))
  if (is.logical(x)) {
    if (!length(x) %in% c(1L, n))
      stop_arg(sprintf("%s must hold one TRUE or FALSE per sample (n = %d); got %d value(s).",
                       arg, n, length(x)))
    if (anyNA(x))
      stop_arg(sprintf("%s is NA at position %d: give TRUE or FALSE for every sample.", arg, na_at()))
    kept <- sum(rep_len(x, n))
  } else if (is.numeric(x)) {
    if (anyNA(x))
      stop_arg(sprintf("%s is NA at position %d: give row numbers in 1..%d.", arg, na_at(), n))
    if (any(x != round(x)))
      stop_arg(sprintf("%s must hold whole row numbers; found %s.", arg, format(x[x != round(x)][1L])))
    if (any(x > 0) && any(x < 0))
      stop_arg(arg, " mixes positive and negative row numbers: give the rows to keep, or the rows to drop.")
    out <- x[abs(x) > n]
    if (length(out))
      stop_arg(sprintf("%s selects row(s) %s outside 1..%d, the samples of the data.",
                       arg, name_list(unique(out), 5L), n))
    kept <- if (any(x < 0)) n - length(unique(x[x < 0])) else sum(x > 0)
  } else {
    if (anyNA(x)) stop_arg(sprintf("%s is NA at position %d: give row names of the data.", arg, na_at()))
    unknown <- setdiff(x, row_names)
    if (length(unknown))
      stop_arg(sprintf("%s names row(s) that are not samples of the data: %s.",
                       arg, name_list(unknown, 5L)))
    kept <- length(x)
  }
  if (kept == 0L) stop_arg(arg, " selects no sample.")
  x
}

## predict() with `newdata`: every variable of the model must be a column of it. One that is not
## is looked up in the formula's environment, where it has the rows of the fitted data (a local
## variable of the function that called PLN()), and model.frame() fails without naming it.
check_newdata_vars <- function(terms, newdata) {
  env <- environment(terms)
  for (v in setdiff(formula_vars(terms), names(newdata))) {
    found <- !is.null(env) && exists(v, envir = env)
    rows <- if (found) NROW(get(v, envir = env)) else NA
    if (found && rows %in% c(1L, nrow(newdata))) next
    term <- Filter(function(t) v %in% formula_vars(t), as.list(attr(terms, "variables"))[-1L])
    stop_arg(sprintf("`newdata` has no column `%s`, a variable of the model (in %s)%s: add it to `newdata`.",
                     v, deparse1(term[[1L]]),
                     if (found) sprintf("; the `%s` of the formula's environment has %d rows, not the %d of `newdata`",
                                        v, rows, nrow(newdata)) else ""))
  }
  invisible(TRUE)
}
