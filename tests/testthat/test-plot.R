## plot(fit): the gap to the final ELBO (default), log(-ELBO), the latent correlations; and
## PLNtorch$plotLogNegElbo(). Each draws on a null device and returns what it drew.

count_warnings <- function(expr) {
  n <- 0L
  withCallingHandlers(tryCatch(expr, error = function(e) NULL),
                      warning = function(w) { n <<- n + 1L; invokeRestart("muffleWarning") })
  n
}

test_that("plot(fit) draws the gap to the final ELBO of a converged fit, on a log scale", {
  fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
  pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_invisible(plot(fit))
  expect_invisible(plot(fit, main = "my title", col = "red"))
  expect_invisible(plot(fit, type = "correlation", top = 5, main = "my title"))
  elbo <- fit$optim_par$objective
  drawn <- plot_fit_trace(fit, type = "gap", from = 1)
  ## lbfgs numbers its start 0; every step before the last is drawn, the gap to the final ELBO
  expect_identical(drawn$step, seq_len(length(elbo) - 2L))
  expect_equal(drawn$value, max(elbo) - elbo[-c(1L, length(elbo))])
  expect_identical(which.max(elbo), length(elbo))   # converged: the final ELBO is the largest
  expect_true(all(drawn$value > 0))
  ## the gap falls by orders of magnitude: what the log scale is there to show
  expect_gt(log10(drawn$value[1] / drawn$value[nrow(drawn)]), 3)
  ## the torch tutorials' view
  lne <- plot_fit_trace(fit, type = "elbo", from = 0)
  expect_equal(lne$value, log(-elbo))
  expect_identical(lne$step, seq_along(elbo) - 1L)
  expect_identical(plot_fit_trace(fit, type = "elbo", from = 1)$step, seq_along(elbo)[-1L] - 1L)
  expect_identical(nrow(plot_fit_trace(fit, type = "gap", from = 10)), length(elbo) - 11L)
})

test_that("plot(fit) errors name `type` and `from`", {
  fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
  steps <- fit$optim_par$steps
  pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_error(plot(fit, type = "trace"),
               "^`type` must be one of \"gap\", \"elbo\", \"correlation\", \"coefficients\"; got \"trace\"\\.$")
  expect_error(plot(fit, from = 1e6),
               sprintf("^`from` = 1e\\+06 is past the ELBO trace: it has %d steps", steps))
  expect_error(plot(fit, from = "a"), "^`from` must be a single whole step number >= 0 \\(the trace's first step\\); got \"a\"\\.$")
})

test_that("PLNtorch$plotLogNegElbo(from = 1e6) is one error naming `from` and the steps, no warning", {
  m <- PLNtorch$new(Y = oaks$Abundance, O = log(oaks$Offset), X = matrix(1, nrow(oaks), 1),
                    backend = "fused")
  m$fit(N_iter = 40, optimizer = "rprop", lr = 0.05, tol = 0)
  pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_identical(count_warnings(m$plotLogNegElbo(from = 1e6)), 0L)
  expect_error(m$plotLogNegElbo(from = 1e6),
               "^`from` = 1000000 is past the ELBO trace: it has 40 steps, so `from` can be at most 40\\.$")
  expect_error(m$plotLogNegElbo(from = 40, type = "gap"),
               "it has 40 steps, so `from` can be at most 39 \\(the gap to the final ELBO is zero at the last step\\)")
  expect_error(m$plotLogNegElbo(type = "log"), "^`type` must be one of \"elbo\", \"gap\"; got \"log\"\\.$")
  expect_error(m$plotLogNegElbo(from = -3), "^`from` must be a single whole number >= 1; got -3\\.$")
  expect_invisible(m$plotLogNegElbo(from = 40))
  expect_invisible(m$plotLogNegElbo(type = "gap", ref = max(m$ELBO_list) + 1))
  expect_error(m$plotLogNegElbo(type = "gap", ref = max(m$ELBO_list) - 1),
               "^`ref` must be a number at or above the largest ELBO")
  fresh <- PLNtorch$new(Y = oaks$Abundance, backend = "fused")
  expect_error(fresh$plotLogNegElbo(), "there is no ELBO trace to plot: fit the model first")
})

test_that("plot(fit, type = \"correlation\") draws cov2cor(Sigma), clustered, with the species asked for", {
  fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks)
  pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_invisible(plot(fit, type = "correlation"))
  C <- cov2cor(sigma(fit))
  R <- plot_correlation(fit)
  expect_identical(dim(R), dim(C))
  expect_setequal(rownames(R), rownames(C))
  expect_identical(rownames(R), colnames(R))
  expect_equal(R, C[rownames(R), rownames(R)])
  ## hclust groups the species: neighbours are more correlated than in Sigma's own order
  neighbours <- function(M) mean(M[cbind(seq_len(nrow(M) - 1L), seq_len(nrow(M))[-1L])])
  expect_gt(neighbours(R), neighbours(C) + 0.05)
  expect_identical(rownames(plot_correlation(fit, order = "none")), rownames(C))
  ## top: the most abundant species by total fitted count
  top <- names(sort(colSums(fitted(fit)), decreasing = TRUE))[1:10]
  expect_setequal(rownames(plot_correlation(fit, top = 10)), top)
  expect_identical(rownames(plot_correlation(fit, species = top[3:1], order = "none")), top[3:1])
  expect_identical(rownames(plot_correlation(fit, species = c(5, 2), order = "none")),
                   rownames(C)[c(5, 2)])
  expect_error(plot(fit, type = "correlation", species = c("f_OTU_1", "nope")),
               "^`species` names no species of the fit: \"?nope")
  expect_error(plot(fit, type = "correlation", species = 200),
               "^`species` must be column numbers between 1 and 114")
  expect_error(plot(fit, type = "correlation", species = "f_OTU_1"),
               "^`species` must select at least 2 species")
  expect_error(plot(fit, type = "correlation", top = 1), "^`top` must be a single whole number >= 2")
  expect_error(plot(fit, type = "correlation", order = "alpha"), "^`order` must be one of")
})
