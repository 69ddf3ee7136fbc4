test_that("PLN_param() holds checked values and leaves build-dependent ones to resolve", {
  ctrl <- PLN_param()
  expect_s3_class(ctrl, "PLN_param_torch")
  expect_null(ctrl$backend)
  expect_null(ctrl$dtype)
  expect_null(ctrl$lr)
  expect_null(ctrl$tol)
  expect_identical(ctrl$maxit, 10000L)
  expect_output(print(ctrl), "PLN control parameters")

  info <- list(backends = c("eager", "script"), cuda = FALSE, cuda_devices = 0L)
  r <- resolve_control(PLN_param(), info)
  expect_identical(r$backend, "script")
  expect_identical(r$dtype, "float64")
  expect_identical(r$optimizer, "lbfgs")
  expect_identical(r$lr, .pln_defaults$lr[["lbfgs"]])
  expect_identical(r$tol, 1e-8)
  expect_identical(resolve_control(PLN_param(dtype = "float32"), info)$tol, 1e-6)
  expect_identical(resolve_control(PLN_param(optimizer = "rprop"), info)$tol,
                   .pln_defaults$tol[["rprop"]])
  expect_identical(resolve_control(PLN_param(optimizer = "adam"), info)$lr,
                   .pln_defaults$lr[["adam"]])
  expect_identical(resolve_control(PLN_param(backend = "eager", lr = 0.3), info)$lr, 0.3)
  expect_identical(resolve_control(PLN_param(init = list(B = matrix(0, 1, 1))), info)$init, "lm")
  r <- resolve_control(PLN_param(), pln_backends_engine())
  expect_true(r$backend %in% pln_backends()$backends)
  expect_identical(names(r), c("backend", "device", "dtype", "optimizer", "lr", "maxit", "tol",
                               "init", "check_every", "num_threads", "trace", "max_bytes", "covariance"))
  ## max_bytes: 0 = the device's free memory, a ceiling from options(plntorch.max_memory), -1 = none
  expect_identical(r$max_bytes, 0)
  old <- options(plntorch.max_memory = 4e9)
  on.exit(options(old))
  expect_identical(resolve_control(PLN_param(), info)$max_bytes, 4e9)
  options(plntorch.max_memory = Inf)
  expect_identical(resolve_control(PLN_param(), info)$max_bytes, -1)
})

test_that("PLN_param() names the argument it rejects", {
  expect_error(PLN_param(backend = "gpu"), "`backend`")
  expect_error(PLN_param(device = "tpu"), "`device`")
  expect_error(PLN_param(device = "cuda:x"), "`device`")
  expect_error(PLN_param(dtype = "float16"), "`dtype`")
  expect_error(PLN_param(optimizer = "sgd"), "`optimizer`")
  expect_error(PLN_param(lr = 0), "`lr`")
  expect_error(PLN_param(lr = -1), "`lr`")
  expect_error(PLN_param(lr = Inf), "`lr`")
  expect_error(PLN_param(lr = c(0.1, 0.2)), "`lr`")
  expect_error(PLN_param(maxit = 0), "`maxit`")
  expect_error(PLN_param(maxit = 10.5), "`maxit`")
  expect_error(PLN_param(maxit = NA), "`maxit`")
  expect_error(PLN_param(tol = -1e-3), "`tol`")
  expect_error(PLN_param(tol = "small"), "`tol`")
  expect_error(PLN_param(init = "random"), "`init`")
  expect_error(PLN_param(init = list(Q = 1)), "`init`")
  expect_error(PLN_param(init = list(S = matrix(0, 2, 2))), "init\\$S")
  expect_error(PLN_param(check_every = 0), "`check_every`")
  expect_error(PLN_param(num_threads = -1), "`num_threads`")
  expect_error(PLN_param(trace = "yes"), "`trace`")
  expect_silent(PLN_param(backend = "eager", device = "cuda:1", dtype = "float32",
                          optimizer = "adam", lr = 0.1, maxit = 5, tol = 0,
                          init = "tutorial", check_every = 10, num_threads = 1, trace = TRUE))
})

test_that("unavailable backends and devices are reported when fitting", {
  info <- list(backends = c("eager", "script"), cuda = FALSE, cuda_devices = 0L)
  expect_error(resolve_control(PLN_param(backend = "fused"), info), "`backend` \"fused\" is not available")
  expect_error(resolve_control(PLN_param(device = "cuda"), info), "`device`")
  info_gpu <- list(backends = "eager", cuda = TRUE, cuda_devices = 1L)
  expect_identical(resolve_control(PLN_param(device = "cuda:0"), info_gpu)$dtype, "float64")
  expect_error(resolve_control(PLN_param(device = "cuda:1"), info_gpu), "does not exist")
  if (!pln_backends()$cuda) {
    expect_error(PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
                     control = PLN_param(device = "cuda")), "`device`")
  }
})

test_that("`control` may be a plain list of PLN_param() arguments", {
  expect_s3_class(as_pln_param(list(maxit = 5)), "PLN_param_torch")
  expect_error(as_pln_param(list(maxiter = 5)), "unknown parameter.*maxiter")
  expect_error(as_pln_param(5), "`control`")
})

test_that("pln_backends() describes the build", {
  b <- pln_backends()
  expect_s3_class(b, "pln_backends")
  expect_true(all(c("eager", "script") %in% b$backends))
  expect_true(all(b$backends %in% c("eager", "script", "fused")))
  expect_identical(b$devices[1], "cpu")
  expect_type(b$libtorch, "character")
  expect_type(b$cuda, "logical")
  expect_true(b$threads >= 1L)
  expect_true(b$default_backend %in% b$backends)
  expect_output(print(b), "LibTorch")
})

test_that("`control` elements without a name, or named twice, are named in the error", {
  expect_error(as_pln_param(list(maxit = 10, 3)),
               "`control` has an element with no name \\(element 2, holding 3\\)")
  expect_error(PLN(Abundance ~ 1, data = oaks, control = list(maxit = 10, 3)),
               "`control` has an element with no name")
  expect_error(as_pln_param(list(1e-3)), "element 1")
  expect_error(as_pln_param(list(maxit = 10, maxit = 20)), "`control` gives `maxit` more than once")
  expect_error(as_pln_param(data.frame(maxit = 10)), "`control` must be the result of PLN_param\\(\\)")
})

test_that("`num_threads` above the cores this process may use is lowered to them, with a warning", {
  cores <- available_cores()
  info <- list(backends = "eager", cuda = FALSE, cuda_devices = 0L)
  for (k in c(cores + 1, 256, 1e6, 1e9)) {
    expect_warning(r <- resolve_control(PLN_param(num_threads = k), info),
                   sprintf("`num_threads` = %d exceeds the %d core\\(s\\) this process may use; using %d",
                           as.integer(k), cores, cores))
    expect_identical(r$num_threads, cores)
  }
  expect_silent(r <- resolve_control(PLN_param(num_threads = cores), info))
  expect_identical(r$num_threads, cores)
})

test_that("R survives num_threads = 1e9, 1e6 and 256 (run in a child R process)", {
  skip_if_not_installed("callr")
  ## 1e9 threads made OpenMP allocate ~224 GB and end the R process; 1e6 hung past 120 s
  out <- callr::r(function() {
    suppressPackageStartupMessages(library(plntorch))
    Y <- matrix(stats::rpois(60, 5), 20, 3)
    vapply(c(1e9, 1e6, 256), function(k) {
      t0 <- proc.time()[["elapsed"]]
      fit <- suppressWarnings(PLN(Y ~ 1, control = PLN_param(num_threads = k, maxit = 20, tol = 0)))
      c(threads = fit$optim_par$threads, seconds = proc.time()[["elapsed"]] - t0)
    }, numeric(2))
  }, timeout = 120)
  expect_true(all(out["threads", ] <= available_cores()))
  expect_true(all(out["seconds", ] < 10))
})
