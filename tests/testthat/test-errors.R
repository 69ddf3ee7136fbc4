## Errors name the argument the user gave, in the user's words, or the call works as in lm() or
## PLNmodels (issue 22, third pass): no message from R's internals, no input silently accepted.

err_data <- local({
  set.seed(22)
  n <- 17; p <- 4
  Y <- matrix(rpois(n * p, 5), n, p)
  df <- data.frame(x = rnorm(n), g = factor(rep(c("a", "b", "c"), length.out = n)))
  list(n = n, p = p, Y = Y, df = df)
})

test_that("a response without column names gets lm()'s names Y1..Yp, and every method works", {
  Y <- err_data$Y; x <- err_data$df$x
  fit <- PLN(Y ~ x)
  expect_identical(colnames(coef(fit)), paste0("Y", 1:4))
  expect_identical(colnames(fit$responses), paste0("Y", 1:4))
  expect_identical(rownames(sigma(fit)), paste0("Y", 1:4))
  ## lm() names an mlm's responses so
  expect_identical(names(summary(lm(Y ~ x))), paste0("Response Y", 1:4))
  s <- summary(fit)
  expect_identical(unique(s$coefficients$species), paste0("Y", 1:4))
  grDevices::pdf(NULL); on.exit(grDevices::dev.off())
  expect_invisible(plot(fit))
  pr <- predict(fit, newdata = data.frame(x = x), responses = Y)
  expect_identical(dim(pr), dim(Y))
  expect_identical(colnames(pr), paste0("Y", 1:4))
  ## PLNtorch and sparse counts too
  expect_identical(colnames(PLNtorch$new(Y)$B), paste0("Y", 1:4))
  pca <- PLNPCA(Matrix::Matrix(Y, sparse = TRUE) ~ 1, ranks = 1)
  expect_identical(colnames(coef(getBestModel(pca))), paste0("Y", 1:4))
})

test_that("a single-species response keeps its column name", {
  y1 <- err_data$Y[, 1, drop = FALSE]; colnames(y1) <- "sp1"
  x <- err_data$df$x
  expect_identical(colnames(coef(PLN(y1 ~ x))), "sp1")
  ## without a name (or a vector), the response's own name, as before
  y2 <- unname(y1); yv <- err_data$Y[, 1]
  expect_identical(colnames(coef(PLN(y2 ~ x))), "y2")
  expect_identical(colnames(coef(PLN(yv ~ x))), "yv")
})

test_that("PLNPCA() with a rank above the number of samples names `ranks`", {
  set.seed(2)
  Y <- matrix(rpois(5 * 10, 5), 5, 10, dimnames = list(NULL, paste0("s", 1:10)))
  expect_error(PLNPCA(Y ~ 1, ranks = 6),
               "^`ranks` must be at most the number of samples n = 5 \\(the scores are n x rank\\); got 6\\.$")
  expect_error(PLNPCA(Matrix::Matrix(Y, sparse = TRUE) ~ 1, ranks = 1:6), "number of samples n = 5")
  expect_identical(getBestModel(PLNPCA(Y ~ 1, ranks = 5))$rank, 5L)
})

test_that("TMM and Wrench give an empty sample the offset 0 (warned), the others theirs", {
  Y <- err_data$Y
  for (s in c("TMM", "Wrench")) {
    full <- compute_offset(Y, s)
    expect_warning(with_empty <- compute_offset(rbind(Y, 0), s),
                   sprintf("offset \"%s\" is zero or not finite for 1 sample\\(s\\) \\(18\\)", s))
    expect_identical(with_empty[18], 0)
    expect_equal(with_empty[1:17], full)
    ## one species with an empty sample
    expect_warning(one <- compute_offset(matrix(c(0, 3, 4, 5), 4), s), "1 sample")
    expect_identical(one[1], 0)
    expect_true(all(is.finite(one[-1]) & one[-1] > 0))
    expect_error(suppressWarnings(compute_offset(matrix(c(0, 0, 4), 3, 2), s)),
                 sprintf("^offset \"%s\" needs at least two samples with counts; `counts` has 1\\.$", s))
  }
  ## Wrench's groups follow the samples kept
  g <- rep(1:2, length.out = 18)
  expect_equal(suppressWarnings(compute_offset(rbind(Y, 0), "Wrench", groups = g))[1:17],
               compute_offset(Y, "Wrench", groups = g[1:17]))
})

test_that("model.matrix(fit) is lm()'s", {
  df <- err_data$df; df$Y <- err_data$Y
  fit <- suppressWarnings(PLN(Y ~ x + g, data = df, control = PLN_param(maxit = 5)))
  expect_identical(model.matrix(fit), model.matrix(lm(Y ~ x + g, data = df)))
  ## from a function's local data, where model.frame() cannot find the variables again
  f_local <- function() { d <- df[1:12, ]; suppressWarnings(PLN(Y ~ g, data = d, control = PLN_param(maxit = 3))) }
  X <- model.matrix(f_local())
  expect_identical(colnames(X), c("(Intercept)", "gb", "gc"))
  expect_identical(attr(X, "contrasts"), list(g = "contr.treatment"))
  ## a PLN-PCA fit's too
  pca <- PLNPCA(Y ~ x, data = df, ranks = 1)
  expect_equal(unname(model.matrix(getBestModel(pca))), unname(model.matrix(lm(Y ~ x, data = df))),
               ignore_attr = TRUE)
})

test_that("a character offset names the offset term", {
  df <- err_data$df; df$Y <- err_data$Y; df$o <- as.character(seq_len(err_data$n))
  expect_error(PLN(Y ~ 1 + offset(o), data = df),
               "^the offset `offset\\(o\\)` of `formula` must be numeric \\(log scale\\); got a character vector of length 17\\.$")
  ## in predict()'s newdata too
  df$oo <- rep(1, err_data$n)
  fit <- suppressWarnings(PLN(Y ~ 1 + offset(oo), data = df, control = PLN_param(maxit = 3)))
  nd <- df; nd$oo <- as.character(nd$oo)
  expect_error(predict(fit, newdata = nd), "^the offset `offset\\(oo\\)` of `formula` must be numeric")
  expect_true(is.matrix(predict(fit, newdata = df)))
})

test_that("plot() of a one-step fit works with its default arguments; `from` below the trace is an error", {
  df <- err_data$df; df$Y <- err_data$Y
  one <- suppressWarnings(PLN(Y ~ x, data = df, control = PLN_param(maxit = 1)))
  grDevices::pdf(NULL); on.exit(grDevices::dev.off())
  expect_invisible(plot(one))
  drawn <- plntorch:::plot_fit_trace(one, type = "gap", from = 0)
  expect_identical(drawn$step, 0L)
  adam1 <- suppressWarnings(PLN(Y ~ x, data = df, control = PLN_param(optimizer = "adam", maxit = 1)))
  expect_error(plot(adam1), "^the ELBO trace has a single value: there is no gap to the final ELBO to draw; use type = \"elbo\"\\.$")
  expect_invisible(plot(adam1, type = "elbo"))
  fit <- suppressWarnings(PLN(Y ~ x, data = df))
  expect_error(plot(fit, from = -1),
               "^`from` must be a single whole step number >= 0 \\(the trace's first step\\); got -1\\.$")
  expect_error(plot(fit, from = 1.5), "`from` must be a single whole step number")
})

test_that("PCA plot(axes = ) refuses a repeated axis", {
  df <- err_data$df; df$Y <- err_data$Y
  m <- getModel(PLNPCA(Y ~ 1, data = df, ranks = 2), 2)
  grDevices::pdf(NULL); on.exit(grDevices::dev.off())
  expect_error(plot(m, axes = c(1, 1)),
               "^`axes` must be one or two distinct axes of the fit, among 1..2; got a double vector of length 2\\.$")
  expect_invisible(plot(m, axes = c(2, 1)))
})

test_that("divergence advice fits the fit: lr for Adam and Rprop only, float64 for float32 fits only", {
  ctl <- function(...) PLN_param(backend = "fused", maxit = 300, ...)
  msg <- conditionMessage(expect_error(PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
                                           control = ctl(optimizer = "rprop", lr = 10)), "diverged"))
  expect_match(msg, "; lower lr$")
  msg32 <- conditionMessage(expect_error(PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
                                             control = ctl(optimizer = "rprop", lr = 10, dtype = "float32")),
                                         "diverged|non-finite"))
  expect_match(msg32, "lower lr, or use dtype = 'float64'$")
})

test_that("type descriptions do not repeat a word", {
  expect_error(PLN_param(dtype = c("a", "b")), "got a character vector of length 2\\.$")
  yc <- matrix(as.character(err_data$Y), err_data$n)
  expect_error(PLN(yc ~ 1), "^the response `yc` must be a numeric count matrix; got a character matrix\\.$")
  expect_identical(plntorch:::describe_value(c(TRUE, FALSE)), "a logical vector of length 2")
  expect_identical(plntorch:::describe_value(factor(c("a", "b"))), "a factor of length 2")
  expect_identical(plntorch:::describe_value(matrix(1:4, 2)), "an integer matrix of length 4")
})

test_that("plot(type = \"coefficients\", se_type = ) names `se_type`", {
  df <- err_data$df; df$Y <- err_data$Y
  fit <- suppressWarnings(PLN(Y ~ x, data = df))
  expect_error(plot(fit, type = "coefficients", se_type = "nope"),
               "^`se_type` must be one of \"sandwich\", \"variational\", \"jackknife\", \"bootstrap\" or NULL; got \"nope\"\\.$")
})

test_that("predict_cond() names an unnamed column of `cond_responses`", {
  df <- err_data$df; df$Y <- err_data$Y; colnames(df$Y) <- paste0("sp", 1:4)
  fit <- suppressWarnings(PLN(Y ~ x, data = df))
  Yc <- df$Y[, 1:2]; colnames(Yc) <- c("sp1", "")
  expect_error(predict_cond(fit, newdata = df, cond_responses = Yc),
               "^`cond_responses` has column\\(s\\) without a name \\(column 2\\): name each column by its species\\.$")
})

test_that("options of PLN-PCA that are not numbers are named", {
  df <- err_data$df; df$Y <- err_data$Y
  old <- options(plntorch.pca_store_latent = NA)
  on.exit(options(old))
  expect_error(PLNPCA(Y ~ 1, data = df, ranks = 1),
               "^options\\(plntorch.pca_store_latent\\) must be a single number >= 0 .*; got NA\\.$")
  options(plntorch.pca_store_latent = 0, plntorch.max_dense_bytes = "big")
  m <- getBestModel(PLNPCA(Y ~ 1, data = df, ranks = 1))
  expect_error(m$latent, "^options\\(plntorch.max_dense_bytes\\) must be a single number >= 0 of bytes; got \"big\"\\.$")
  options(plntorch.max_dense_bytes = NULL)
  expect_identical(dim(m$latent), dim(df$Y))
})

test_that("print(summary(fit), digits = ) names `digits`", {
  df <- err_data$df; df$Y <- err_data$Y
  s <- summary(suppressWarnings(PLN(Y ~ x, data = df)))
  expect_error(print(s, digits = 0), "^`digits` must be a whole number from 1 to 22; got 0\\.$")
  expect_output(print(s, digits = 2), "Coefficients")
})

test_that("trace and num_threads take only their documented values", {
  expect_error(PLN_param(trace = 5),
               "^`trace` must be 0 \\(silent\\) or 1 \\(the ELBO as the fit goes\\), or FALSE/TRUE; got 5\\.$")
  expect_error(PLNPCA_param(trace = 2), "`trace` must be 0")
  expect_identical(PLN_param(trace = TRUE)$trace, 1L)
  expect_identical(PLN_param(trace = 0)$trace, 0L)
  expect_error(PLN_param(num_threads = 0),
               "^`num_threads` must be a whole number >= 1, or NULL for LibTorch's setting; got 0\\.$")
  expect_error(PLNPCA_param(num_threads = 0), "`num_threads` must be a whole number >= 1")
  expect_null(PLN_param(num_threads = NULL)$num_threads)
  expect_identical(PLN_param(num_threads = 1)$num_threads, 1L)
})

test_that("predict(se.fit = TRUE) says it is not available", {
  df <- err_data$df; df$Y <- err_data$Y
  fit <- suppressWarnings(PLN(Y ~ x, data = df))
  expect_error(predict(fit, newdata = df, se.fit = TRUE),
               "^`se.fit = TRUE` is not available: plntorch \\(as PLNmodels\\) gives no standard errors of predictions")
  expect_identical(dim(predict(fit, newdata = df, se.fit = FALSE)), dim(df$Y))
})

test_that("PLNtorch$new() refuses a device this build lacks", {
  skip_if(isTRUE(pln_backends()$cuda))
  expect_error(PLNtorch$new(err_data$Y, device = "cuda"),
               "^`device` \"cuda\" requested, but this build has no usable CUDA device; see pln_backends\\(\\)\\.$")
})

test_that("logical sparse counts are refused by PLNPCA() as by PLN()", {
  Ysl <- Matrix::Matrix(err_data$Y > 4, sparse = TRUE)
  expect_error(PLN(Ysl ~ 1), "^the response `Ysl` must be a numeric count matrix; got a logical matrix\\.$")
  expect_error(PLNPCA(Ysl ~ 1, ranks = 1),
               "^the response `Ysl` must be a numeric count matrix; got a logical sparse matrix \\(lgCMatrix\\)\\.$")
})

test_that("PLNmodels' methods of PLN-PCA fits work or say what is not available", {
  df <- err_data$df; df$Y <- err_data$Y
  pca <- PLNPCA(Y ~ x, data = df, ranks = 1:2)
  expect_identical(names(pca$models), c("1", "2"))
  m <- getModel(pca, 2)
  expect_identical(dim(fitted(m)), dim(df$Y))
  expect_equal(residuals(m, type = "response"), df$Y - fitted(m), ignore_attr = TRUE)
  expect_equal(nobs(m), err_data$n)
  expect_identical(dim(predict(m, newdata = df)), dim(df$Y))
  expect_identical(dim(vcov(m, type = "covariance")), c(4L, 4L))
  expect_error(vcov(m), "not available for PLN-PCA fits")
  expect_error(standard_error(m), "^standard_error\\(\\) is not available for PLN-PCA fits")
})
