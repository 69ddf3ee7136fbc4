#' Benchmark and validation results shipped with the package
#'
#' Reads a results file written by the benchmark scripts of the package source
#' (`inst/bench/`), installed under
#' `system.file("bench", "results", package = "plntorch")`. The vignettes take
#' their speed figures and their PLNmodels figures from these files, each with
#' its date, machine and versions, rather than from fits run while they are
#' built.
#'
#' @param what the kind of results:
#' * `"validation"`: every data set that PLNmodels ships, fitted by plntorch
#'   (every backend) and PLNmodels (builtin and nlopt backends) side by side
#'   in one run, with the machine (`cores`, `cpu`), R, LibTorch and
#'   PLNmodels versions (`Rscript inst/bench/validation.R --save`);
#' * `"cpu"`: the default fit of oaks and of oaks x100 (its rows repeated 100
#'   times), every backend, and PLNmodels, on the machine of the validation
#'   run of the same date, one thread (`Rscript inst/bench/oaks-backends.R
#'   --x100 --save`);
#' * `"gpu"`: the GPU benchmark (`bash inst/bench/run-gpu.sh build tests
#'   bench`): B1 (5000 Adam steps on oaks x100 in float32, the PyTorch
#'   tutorial's workload), B2 (Rprop on oaks), C1 and C2 (the default fit to
#'   convergence on oaks x100 and oaks, float64 and float32), the scale run;
#'   rows on the CPU of the GPU machine too;
#' * `"gpu-traces"`: the ELBO every 10 steps of the B1 runs on the GPU;
#' * `"gpu-pieces"`: microseconds per step of the pieces of a fused CUDA step;
#' * `"script-cost"`: what a step of the script backend costs next to eager on
#'   the CPU, in milliseconds and fresh memory pages per call, by setting of
#'   TorchScript's executor and of glibc's malloc (`pln_script_cost`, built
#'   from `inst/bench/script-cost.cpp` by `tests/cpp/CMakeLists.txt`).
#' @param date `NULL` (the newest file of that kind) or a date `"YYYY-MM-DD"`.
#' @return A data frame, with the file's name in attribute `"file"`.
#' @export
#' @examples
#' val <- pln_bench_results("validation")
#' attr(val, "file")
#' val[val$data == "oaks", c("rhs", "implementation", "loglik", "seconds")]
pln_bench_results <- function(what = c("validation", "cpu", "gpu", "gpu-traces", "gpu-pieces",
                                       "script-cost"), date = NULL) {
  what <- check_choice(what[1L], "what", c("validation", "cpu", "gpu", "gpu-traces",
                                            "gpu-pieces", "script-cost"))
  if (!is.null(date) && (!is.character(date) || length(date) != 1L ||
                         !grepl("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", date)))
    stop_arg("`date` must be NULL or a single date \"YYYY-MM-DD\"; got ", describe_value(date), ".")
  dir <- system.file("bench", "results", package = "plntorch")
  day <- "[0-9]{4}-[0-9]{2}-[0-9]{2}"
  pattern <- switch(what,
    validation = sprintf("^validation-(%s)\\.csv$", day),
    cpu = sprintf("^cpu-(%s)\\.csv$", day),
    `script-cost` = sprintf("^script-cost-(%s)\\.csv$", day),
    gpu = sprintf("^(%s)-(?!.*-(traces|pieces|lowrank.*|pca.*)\\.csv$).*\\.csv$", day),
    `gpu-traces` = sprintf("^(%s)-.*-traces\\.csv$", day),
    `gpu-pieces` = sprintf("^(%s)-.*-pieces\\.csv$", day))
  files <- if (nzchar(dir)) list.files(dir) else character()
  files <- files[grepl(pattern, files, perl = TRUE)]
  dates <- regmatches(files, regexpr(day, files))
  if (!is.null(date)) files <- files[dates == date]
  if (!length(files))
    stop_arg(sprintf("no %s results file%s in %s.", what,
                     if (is.null(date)) "" else paste(" of", date),
                     if (nzchar(dir)) dir else "this installation"))
  file <- files[order(regmatches(files, regexpr(day, files)), decreasing = TRUE)][1L]
  res <- utils::read.csv(file.path(dir, file), stringsAsFactors = FALSE)
  attr(res, "file") <- file
  res
}
