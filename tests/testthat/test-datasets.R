## The validation data sets and their reference table (inst/extdata/validation-reference.csv).
ref <- read.csv(system.file("extdata", "validation-reference.csv", package = "plntorch"),
                stringsAsFactors = FALSE)

test_that("the reference table lists two models of each data set", {
  expect_named(ref, c("data", "n", "p", "rhs", "offset", "builtin_loglik", "nlopt_loglik",
                      "best_loglik", "source"))
  expect_identical(as.vector(table(ref$data)[unique(ref$data)]), rep(2L, 5))
  expect_setequal(ref$data, c("trichoptera", "barents", "mollusk", "microcosm", "oaks"))
  expect_identical(ref$best_loglik, pmax(ref$builtin_loglik, ref$nlopt_loglik))
  expect_identical(ref$offset, ref$data != "mollusk")
})

test_that("each data set has the shape, counts and covariates of its models", {
  for (i in seq_len(nrow(ref))) {
    env <- new.env()
    utils::data(list = ref$data[i], package = "plntorch", envir = env)
    d <- env[[ref$data[i]]]
    Y <- d$Abundance
    expect_identical(dim(Y), c(ref$n[i], ref$p[i]), label = ref$data[i])
    expect_type(unclass(Y), "integer")
    expect_true(all(Y >= 0) && all(rowSums(Y) > 0), label = ref$data[i])
    expect_identical(rownames(d), rownames(Y))
    expect_true(all(d$Offset > 0))
    expect_true(all(all.vars(stats::as.formula(paste("~", ref$rhs[i]))) %in% names(d)))
  }
})
