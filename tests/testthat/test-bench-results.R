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
