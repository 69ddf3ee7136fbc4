## Argument checks shared by PLN_param(), PLN() and PLNtorch. Each error names the
## argument it is about, so a user knows what to change.

stop_arg <- function(...) stop(..., call. = FALSE)

describe_value <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.character(x) && length(x) == 1L) return(sprintf("\"%s\"", x))
  if (is.atomic(x) && length(x) == 1L) return(format(x))
  if (is.atomic(x)) return(sprintf("a %s %s of length %d", typeof(x), class(x)[1L], length(x)))
  sprintf("a %s of length %d", class(x)[1L], length(x))
}

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

check_trace <- function(x, arg = "trace") {
  if (is.logical(x) && length(x) == 1L && !is.na(x)) return(as.integer(x))
  check_count(x, arg, lower = 0L)
}

check_init <- function(x, arg = "init") {
  if (is.list(x)) {
    bad <- setdiff(names(x), c("B", "M", "S"))
    if (is.null(names(x)) || any(names(x) == "") || length(bad))
      stop_arg(sprintf("`%s`, when a list, must have elements named among B, M, S.", arg))
    for (nm in names(x)) {
      v <- x[[nm]]
      if (!is.null(v) && (!is.numeric(v) || !is.matrix(v) || !all(is.finite(v))))
        stop_arg(sprintf("`%s$%s` must be a numeric matrix of finite values.", arg, nm))
      if (nm == "S" && !is.null(v) && any(v == 0))
        stop_arg(sprintf("`%s$S` must be non-zero (S are standard deviations).", arg))
    }
    return(x[!vapply(x, is.null, logical(1))])
  }
  check_choice(x, arg, c("lm", "tutorial"))
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
  sample_names <- rownames(Y)
  species_names <- colnames(Y)

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
                       labels[["X"]], qx$rank, ncol(X), paste(aliased, collapse = ", "),
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

## The cores this process may run on: its CPU affinity (as taskset or a container's cpuset set
## it), else the machine's cores.
available_cores <- function() {
  aff <- tryCatch(parallel::mcaffinity(), error = function(e) NULL)
  n <- if (length(aff)) length(aff) else parallel::detectCores()
  if (is.na(n) || n < 1L) 1L else as.integer(n)
}
