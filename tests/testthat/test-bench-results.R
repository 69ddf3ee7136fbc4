## pln_bench_results(): the results files that the vignettes quote.

test_that("pln_bench_results() reads the newest file of each kind, with its name", {
  val <- pln_bench_results("validation")
  expect_match(attr(val, "file"), "^validation-[0-9]{4}-[0-9]{2}-[0-9]{2}\\.csv$")
  expect_true(all(c("data", "rhs", "implementation", "loglik", "seconds", "plnmodels", "cpu") %in%
                    names(val)))
  gpu <- pln_bench_results("gpu")
  expect_match(attr(gpu, "file"), "^[0-9]{4}-[0-9]{2}-[0-9]{2}-.*\\.csv$")
  expect_false(grepl("traces|pieces", attr(gpu, "file")))
  expect_true(all(c("bench", "backend", "device", "dtype", "seconds", "final_elbo") %in% names(gpu)))
  expect_match(attr(pln_bench_results("gpu-traces"), "file"), "-traces\\.csv$")
  expect_match(attr(pln_bench_results("gpu-pieces"), "file"), "-pieces\\.csv$")
  cpu <- pln_bench_results("cpu")
  older <- pln_bench_results("cpu", date = "2026-11-22")
  expect_identical(attr(older, "file"), "cpu-2026-11-22.csv")
  expect_true(attr(cpu, "file") >= attr(older, "file"))
  sc <- pln_bench_results("script-cost")
  expect_true(all(c("setting", "backend", "measure", "ms", "cpu_ms", "faults") %in% names(sc)))
})

test_that("pln_bench_results() errors name `what` and `date`", {
  expect_error(pln_bench_results("speed"), "`what` must be one of")
  expect_error(pln_bench_results("cpu", date = "23/11/2026"),
               "^`date` must be NULL or a single date \"YYYY-MM-DD\"; got \"23/11/2026\"\\.$")
  expect_error(pln_bench_results("cpu", date = "1999-01-01"), "^no cpu results file of 1999-01-01 in ")
})

test_that("the prediction results that the toolbox vignette quotes cover every data set", {
  ## inst/bench/toolbox-prediction.R --save: one block of rows per model; the VE step from
  ## PLNmodels' parameters reaches at least PLNmodels' ELBO on every held-out sample (to rounding)
  ## and its predictions correlate with PLNmodels' wherever PLNmodels ran.
  dir <- system.file("bench", "results", package = "plntorch")
  files <- sort(list.files(dir, "^prediction-[0-9]{4}-[0-9]{2}-[0-9]{2}\\.csv$"))
  skip_if(!length(files), "no prediction results installed")
  res <- utils::read.csv(file.path(dir, files[length(files)]), stringsAsFactors = FALSE)
  expect_true(all(c("data", "model", "quantity", "pipeline", "ve_step", "pipeline_cor",
                    "ve_step_cor", "ve_elbo_gain", "ve_elbo_gain_min_sample", "plntorch_s",
                    "plntorch_at_PLNmodels_s", "PLNmodels_s", "note") %in% names(res)))
  script <- system.file("bench", "toolbox-prediction.R", package = "plntorch")
  cases <- regmatches(readLines(script), regexpr("list\\(data = \"[a-z]+\"", readLines(script)))
  expect_setequal(unique(res$data), sub(".*\"([a-z]+)\"", "\\1", cases))
  ran <- is.na(res$note) | !nzchar(res$note)
  expect_true(all(res$ve_elbo_gain_min_sample[ran] > -1e-6))
  link <- ran & grepl("(link)", res$quantity, fixed = TRUE)
  expect_true(all(res$ve_step_cor[link] > 0.99))
  timed <- ran & res$quantity %in% c("predict, responses (link)", "predict_cond (link)")
  expect_false(anyNA(res[timed, c("plntorch_s", "plntorch_at_PLNmodels_s", "PLNmodels_s")]))
})

test_that("the PLN-PCA results reach PLNmodels' loglik on every rank of every data set", {
  ## inst/bench/pca-validation.R --save (CPU) and its --device cuda runs completed with PLNmodels'
  ## columns (--refresh): for each data set, the newest file holding it. A rank below PLNmodels'
  ## loglik (to max(0.1, 1e-5 |loglik|)) must never say "converged" (the fit warned: maxit), on
  ## any data set; every data set has every rank at or above it, and oaks, mollusk and scRNA every
  ## rank converged. microcosm's ranks 2 to 5 stop at maxit = 10000 (warned) while still rising:
  ## a few dominant species' loadings grow without end there (NOTES-optimiser.md). The fits on
  ## scRNA and microcosm take minutes to hours on a CPU: set PLNTORCH_LONG_TESTS=1 to refit them
  ## here as well.
  dir <- system.file("bench", "results", package = "plntorch")
  files <- sort(list.files(dir, "^pca-validation-[0-9]{4}-[0-9]{2}-[0-9]{2}.*\\.csv$"))
  skip_if(!length(files), "no PLN-PCA results installed")
  res <- lapply(files, function(f) utils::read.csv(file.path(dir, f), stringsAsFactors = FALSE))
  for (set in c("oaks", "mollusk", "microcosm", "scRNA")) {
    has <- vapply(res, function(r) any(r$data == set & !is.na(r$plnmodels_loglik)), TRUE)
    expect_true(any(has), info = set)
    if (!any(has)) next
    r <- res[[max(which(has))]]
    r <- r[r$data == set, ]
    tol <- pmax(0.1, 1e-5 * abs(r$plnmodels_loglik))
    below <- r$plntorch_loglik < r$plnmodels_loglik - tol
    expect_false(any(below & r$plntorch_status == "converged"), info = set)
    expect_false(any(below), info = set)
    expect_true(all(seq_len(if (set == "scRNA") 3 else 5) %in% r$rank), info = set)
    if (set != "microcosm") expect_true(all(r$plntorch_status == "converged"), info = set)
  }
  ## scRNA on the GPU covers ranks 1 to 10, as the issue asks
  gpu <- res[grepl("-cuda", files)]
  skip_if(!length(gpu), "no GPU PLN-PCA results installed")
  g <- gpu[[length(gpu)]]
  expect_true(all(1:10 %in% g$rank[g$data == "scRNA"]))
  expect_true(all(g$plntorch_status[g$data == "scRNA"] == "converged"))
})

test_that("PLN-PCA reaches PLNmodels' loglik on scRNA and microcosm (long: PLNTORCH_LONG_TESTS=1)", {
  skip_if_not(identical(Sys.getenv("PLNTORCH_LONG_TESTS"), "1"), "long test: set PLNTORCH_LONG_TESTS=1")
  ref <- utils::read.csv(system.file("extdata", "pca-reference.csv", package = "plntorch"))
  sets <- list(scRNA = list(data = plntorch::scRNA, formula = counts ~ 1 + offset(log(total_counts))),
               microcosm = list(data = plntorch::microcosm,
                                formula = Abundance ~ 1 + offset(log(Offset))))
  for (name in names(sets)) {
    r <- ref[ref$data == name, ]
    skip_if(!nrow(r), paste("no PLNmodels reference for", name))
    pca <- PLNPCA(sets[[name]]$formula, data = sets[[name]]$data, ranks = r$rank)
    tol <- pmax(0.1, 1e-5 * abs(r$plnmodels_loglik))
    expect_true(all(pca$criteria$loglik[match(r$rank, pca$ranks)] >= r$plnmodels_loglik - tol),
                info = name)
  }
})
