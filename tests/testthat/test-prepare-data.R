## compute_offset() and prepare_data(): PLNmodels 1.3.2's numbers (inst/extdata/offsets-reference.csv,
## written by inst/bench/toolbox-offsets.R --save), its sample matching, and the edge cases.

reference_file <- function(name) {
  f <- system.file("extdata", name, package = "plntorch")
  if (!nzchar(f)) f <- test_path("..", "..", "inst", "extdata", name)
  f
}
validation_counts <- function(name) {
  env <- new.env()
  utils::data(list = name, package = "plntorch", envir = env)
  unclass(env[[name]]$Abundance)
}

test_that("every scheme gives PLNmodels' offsets on trichoptera and mollusk", {
  ref <- utils::read.csv(reference_file("offsets-reference.csv"), stringsAsFactors = FALSE,
                         colClasses = c(sample = "character"), check.names = FALSE)
  env <- new.env()
  utils::data(list = "mollusk", package = "plntorch", envir = env)
  groups <- list(mollusk = env$mollusk$site)  # as inst/bench/toolbox-offsets.R gives them
  ## each column is named by the arguments of its compute_offset() call
  cases <- setdiff(names(ref), c("data", "sample"))
  expect_gte(length(cases), 11L)
  for (d in unique(ref$data)) {
    Y <- validation_counts(d)
    r <- ref[ref$data == d, ]
    expect_setequal(r$sample, rownames(Y))
    for (case in cases[!is.na(r[1L, cases])]) {
      args <- eval(parse(text = sprintf("list(%s)", case)), list(groups = groups[[d]]), baseenv())
      got <- suppressWarnings(do.call(compute_offset, c(list(Y), args)))
      expect_identical(names(got), rownames(Y))
      expect_equal(unname(got[r$sample]), r[[case]], tolerance = 1e-12, label = paste(d, case))
    }
  }
})

test_that("the schemes follow their definitions on a small table", {
  Y <- matrix(c(1, 2, 4, 0,
                3, 6, 12, 5,
                2, 0, 8, 1), 3, 4, byrow = TRUE, dimnames = list(c("a", "b", "c"), paste0("s", 1:4)))
  expect_identical(compute_offset(Y), c(a = 7, b = 26, c = 11))
  expect_null(compute_offset(Y, "none"))
  ## GMPR of a: geometric mean of median(a / b) over s1..s3 and median(a / c) over s1, s3
  gmpr_a <- sqrt(median(c(1, 2, 4) / c(3, 6, 12)) * median(c(1, 4) / c(2, 8)))
  expect_equal(compute_offset(Y, "GMPR")[["a"]], gmpr_a)
  ## RLE: only the species present in every sample (s1, s3)
  gm <- exp(colMeans(log(Y[, c(1, 3)])))
  expect_equal(compute_offset(Y, "RLE"), apply(sweep(Y[, c(1, 3)], 2, gm, "/"), 1, median))
  ## scale = "count": f / total counts centred to geometric mean 1
  f <- compute_offset(Y, "GMPR", scale = "count")
  r <- f / rowSums(Y)
  expect_equal(exp(mean(log(r))), 1)
  expect_equal(r / r[1], compute_offset(Y, "GMPR") / rowSums(Y) / (gmpr_a / 7))
  ## offsets of one's own, matched by name, returned n x p
  own <- compute_offset(Y, c(c = 3, a = 1, b = 2))
  expect_identical(own, matrix(c(1, 2, 3), 3, 4, dimnames = dimnames(Y)))
})

test_that("edge cases: zero-heavy and all-zero columns, empty samples, single samples", {
  Y <- validation_counts("trichoptera")
  Y0 <- cbind(Y, absent = 0)
  ## a species absent everywhere changes no scheme (PLNmodels' Wrench returns NaN there)
  for (s in c("TSS", "GMPR", "Wrench"))  # (CSS's and TMM's quantiles are over the species)
    expect_equal(suppressWarnings(compute_offset(Y0, s)), suppressWarnings(compute_offset(Y, s)),
                 label = s)
  expect_equal(compute_offset(Y0, "RLE", type = "poscounts"), compute_offset(Y, "RLE", type = "poscounts"))
  oaks0 <- cbind(oaks$Abundance, absent = 0)  # RLE "ratio" is defined on oaks (a few species everywhere)
  expect_equal(compute_offset(oaks0, "RLE"), compute_offset(oaks$Abundance, "RLE"))
  expect_true(all(is.finite(compute_offset(oaks0, "RLE"))))
  ## no species in every sample: RLE "ratio" stops, poscounts works
  expect_error(compute_offset(validation_counts("barents"), "RLE"),
               "offset \"RLE\" is undefined.*type = \"poscounts\"")
  expect_true(all(compute_offset(validation_counts("barents"), "RLE", type = "poscounts") > 0))
  ## an empty sample: TSS 0 with a warning naming it; GMPR cannot place it
  Ye <- rbind(Y, empty = 0)
  expect_warning(o <- compute_offset(Ye), "zero or not finite for 1 sample\\(s\\) \\(empty\\)")
  expect_identical(o[["empty"]], 0)
  expect_error(compute_offset(Ye, "GMPR"), "\"GMPR\" is undefined: sample\\(s\\) empty share no species")
  expect_error(compute_offset(Y[1, , drop = FALSE], "GMPR"), "at least two samples")
  expect_error(compute_offset(Y[1, , drop = FALSE], "Wrench"), "at least two samples")
  ## a sample with a single positive count: CSS falls back to TSS, with a warning
  Y1 <- Y; Y1[1, ] <- 0; Y1[1, 3] <- 7
  expect_warning(o <- compute_offset(Y1, "CSS"), "fewer than two positive counts.*TSS")
  expect_identical(unname(o), unname(rowSums(Y1)))
  ## one species
  y <- Y[, 3, drop = FALSE] + 1
  expect_equal(compute_offset(y, "CSS"), y[, 1] / median(y))
})

test_that("bad input stops with the argument named", {
  Y <- validation_counts("trichoptera")
  expect_error(compute_offset(replace(Y, 1, -1)), "`counts` must hold counts: found 1 negative")
  expect_error(compute_offset(replace(Y, 1, 0.5)), "`counts` must hold counts: found non-integer values \\(e.g. 0.5\\)")
  expect_error(compute_offset(replace(Y, 1, NA)), "`counts` contains missing values")
  expect_error(compute_offset(matrix("1", 2, 2)), "`counts` must be a numeric count matrix")
  expect_error(compute_offset(data.frame(a = 1:2, b = c("x", "y"))), "`counts` must hold numeric counts; column\\(s\\) b")
  expect_error(compute_offset(Y, "tss"), "`offset` must be one of \"TSS\", \"GMPR\"")
  expect_error(compute_offset(Y, scale = "log"), "`scale` must be one of \"none\", \"count\"")
  expect_error(compute_offset(Y, "RLE", type = "pos"), "`type` must be one of \"ratio\", \"poscounts\"")
  expect_error(compute_offset(Y, "GMPR", pseudocounts = 1), "offset \"GMPR\" has no argument `pseudocounts`; it takes none")
  expect_error(compute_offset(Y, "RLE", reference = mean), "offset \"RLE\" has no argument `reference`; its arguments: pseudocounts, type")
  expect_error(compute_offset(Y, "Wrench", groups = 1:3), "`groups` must hold one group label per sample \\(49\\)")
  expect_error(compute_offset(Y, as.data.frame(Y)), "`offset` must be a scheme name.*data frame")
  expect_error(compute_offset(Y, setNames(rep(1, 49), paste0("x", 1:49))),
               "`offset` has no value for sample\\(s\\) 1, 2, 3, 4, 5 and 44 more")
  expect_error(compute_offset(Y, rep(1, 49)), "`offset` has no sample names")
  expect_error(compute_offset(Y, matrix(1, 49, 3, dimnames = list(rownames(Y), NULL))),
               "`offset` must have one column, or one per species \\(17\\); got 3")
})

test_that("prepare_data() matches samples by name, drops empty ones, and builds PLN's data frame", {
  Y <- validation_counts("mollusk")
  covs <- data.frame(site = rep(c("u", "v"), length.out = nrow(Y)), row.names = rownames(Y))
  ## empty samples: dropped with a warning naming them
  Ye <- rbind(Y, e1 = 0, e2 = 0)
  ce <- rbind(covs, data.frame(site = c("u", "v"), row.names = c("e1", "e2")))
  expect_warning(d <- prepare_data(Ye, ce), "2 empty sample\\(s\\) \\(e1, e2\\): dropped")
  expect_identical(rownames(d), rownames(Y))
  expect_identical(names(d), c("Abundance", "site", "Offset"))
  expect_identical(d$Abundance, Ye[rownames(Y), ])
  expect_identical(d$Offset, unname(compute_offset(Y)))
  ## samples in another order, and transposed counts: matched by name
  perm <- rev(seq_len(nrow(Y)))
  expect_identical(prepare_data(t(Y[perm, ]), covs)$Abundance, Y[perm, ])
  ## samples in one table only: dropped, with a warning each way
  expect_warning(d <- prepare_data(Y[-1, ], covs), "1 sample\\(s\\) of `covariates` have no counts")
  expect_identical(nrow(d), nrow(Y) - 1L)
  expect_warning(prepare_data(Y, covs[-(1:2), , drop = FALSE]), "2 sample\\(s\\) of `counts` have no row")
  ## no shared name: by position when counts have no names; an error when both have names
  expect_warning(d <- prepare_data(unname(Y), covs), "share no sample name: samples are matched by position")
  expect_identical(rownames(d), rownames(covs))
  expect_error(suppressWarnings(prepare_data(`rownames<-`(Y, paste0("x", seq_len(nrow(Y)))), covs)),
               "sample names of `counts` \\(x1, x2, x3 and .*\\) and of `covariates` \\(.*\\) differ")
  expect_error(prepare_data(unname(Y), covs[-1, , drop = FALSE]),
               "share no sample name.*`counts` has 159 rows and `covariates` 158")
  ## NA counts become 0, with a warning; bad counts stop naming `counts`
  expect_warning(d <- prepare_data(replace(Y, 2, NA), covs), "1 NA value\\(s\\): replaced by 0")
  expect_identical(d$Abundance[2], 0)
  expect_error(prepare_data(replace(Y, 2, -3), covs), "`counts` must hold counts: found 1 negative")
  expect_error(prepare_data(replace(Y, 2, 2.5), covs), "`counts` must hold counts: found non-integer")
  expect_error(prepare_data(covariates = covs), "`counts` is missing")
  expect_error(prepare_data(Y), "`covariates` is missing")
  ## offset "none": no Offset column; offsets of one's own are trimmed with the samples
  expect_identical(names(prepare_data(Y, covs, offset = "none")), c("Abundance", "site"))
  own <- setNames(seq_len(nrow(Ye)) + 0.5, rownames(Ye))
  d <- suppressWarnings(prepare_data(Ye, ce, offset = own))
  expect_identical(d$Offset[, 1], own[rownames(Y)], ignore_attr = TRUE)
  ## Wrench groups given per row of `covariates` follow the samples kept
  g <- ce$site
  d <- suppressWarnings(prepare_data(Ye, ce, offset = "Wrench", groups = g))
  expect_equal(d$Offset, compute_offset(Y, "Wrench", groups = covs$site), ignore_attr = TRUE)
})

test_that("the data frame of prepare_data() fits as PLN()'s data", {
  counts <- oaks$Abundance
  samples <- data.frame(tree = oaks$tree, row.names = rownames(counts))
  d <- prepare_data(counts, samples)
  expect_equal(d$Offset, rowSums(counts), ignore_attr = TRUE)
  fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = d, subset = 1:80,
             control = PLN_param(maxit = 3, tol = 0))
  expect_identical(fit$n, 80L)
  expect_identical(rownames(fit$responses), rownames(counts)[1:80])
})

test_that("sparse Matrix counts are taken by compute_offset(), prepare_data() and PLN()", {
  skip_if_not_installed("Matrix")
  Y <- oaks$Abundance
  S <- Matrix::Matrix(Y, sparse = TRUE)
  expect_s4_class(S, "dgCMatrix")
  expect_identical(compute_offset(S, "GMPR"), compute_offset(Y, "GMPR"))
  samples <- data.frame(tree = oaks$tree, row.names = rownames(Y))
  d <- prepare_data(S, samples)
  expect_identical(d$Abundance, unclass(Y) + 0)
  expect_identical(d$Offset, prepare_data(Y, samples)$Offset)
  ## as PLN()'s response: a variable, a column of `data`, or written with `$`
  ctrl <- PLN_param(maxit = 20, tol = 0)
  o <- oaks$Offset
  ref <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks, control = ctrl)
  expect_equal(PLN(S ~ 1 + offset(log(o)), control = ctrl)$loglik, ref$loglik)
  df <- oaks; df$Abundance <- S
  fit <- PLN(Abundance ~ tree + offset(log(Offset)), data = df, control = ctrl)
  expect_equal(fit$loglik, PLN(Abundance ~ tree + offset(log(Offset)), data = oaks, control = ctrl)$loglik)
  expect_identical(colnames(coef(fit)), colnames(Y))
  expect_identical(dim(predict(fit, newdata = oaks[1:3, ])), c(3L, ncol(Y)))
  lst <- list(Y = S, o = o)
  expect_equal(PLN(lst$Y ~ 1 + offset(log(lst$o)), control = ctrl)$loglik, ref$loglik)
  ## too large once dense: an error with the size, before any allocation
  old <- options(plntorch.max_memory = 1e4)
  on.exit(options(old))
  expect_error(prepare_data(S, samples), "`counts` is a 116 x 114 Matrix: made dense.*105.8 kB, above options\\(plntorch.max_memory\\) = 10 kB")
  expect_error(PLN(S ~ 1), "the response `S` is a 116 x 114 Matrix: made dense")
})
