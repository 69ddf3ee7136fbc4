## device = "cuda" for every backend, against the CPU. Skipped where this build sees no GPU
## (CI): pln_backends()$cuda is FALSE there. inst/bench/run-gpu.sh runs this file on the GPU
## machine.
skip_if_no_cuda <- function() {
  skip_if_not(isTRUE(pln_backends()$cuda), "no CUDA device in this build of plntorch")
}

oaks_on <- function(device, backend, ...) {
  PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
      control = PLN_param(backend = backend, device = device, ...))
}

test_that("every backend on CUDA follows its CPU trace (Adam, float64, 200 steps)", {
  skip_if_no_cuda()
  for (backend in pln_backends()$backends) {
    ctrl <- list(backend, optimizer = "adam", dtype = "float64", maxit = 200, tol = 0,
                 init = "tutorial")
    cpu <- do.call(oaks_on, c("cpu", ctrl))
    gpu <- do.call(oaks_on, c("cuda", ctrl))
    expect_identical(gpu$optim_par$device, "cuda:0")
    expect_identical(gpu$optim_par$steps, 200L)
    rel <- abs(gpu$optim_par$objective - cpu$optim_par$objective) / abs(cpu$optim_par$objective)
    expect_lt(max(rel), 1e-8)
    expect_lt(max(abs(gpu$model_par$Sigma - cpu$model_par$Sigma)), 1e-6)
  }
})

test_that("the default fit (lbfgs) converges on CUDA with every backend, as on the CPU", {
  skip_if_no_cuda()
  cpu <- oaks_on("cpu", "fused")
  for (backend in pln_backends()$backends) {
    fit <- oaks_on("cuda", backend)
    expect_identical(fit$optim_par$dtype, "float64")
    expect_identical(fit$optim_par$status, "converged")
    expect_true(all(diff(fit$optim_par$objective) > 0))
    expect_gte(fit$loglik, -32028.47 - 0.33)
    expect_equal(fit$loglik, cpu$loglik, tolerance = 1e-8)
  }
})

test_that("float32 on CUDA converges near the float64 fit", {
  skip_if_no_cuda()
  cpu <- oaks_on("cpu", "fused")
  for (backend in pln_backends()$backends) {
    gpu <- oaks_on("cuda", backend, dtype = "float32")
    expect_identical(gpu$optim_par$dtype, "float32")
    expect_true(gpu$optim_par$status %in% c("converged", "stalled"))
    expect_lt(abs(gpu$loglik - cpu$loglik) / abs(cpu$loglik), 1e-5)
  }
})

test_that("Rprop on CUDA matches the CPU (float64)", {
  skip_if_no_cuda()
  for (backend in pln_backends()$backends) {
    cpu <- oaks_on("cpu", backend, optimizer = "rprop", dtype = "float64", maxit = 300, tol = 0)
    gpu <- oaks_on("cuda", backend, optimizer = "rprop", dtype = "float64", maxit = 300, tol = 0)
    expect_lt(abs(gpu$loglik - cpu$loglik) / abs(cpu$loglik), 1e-8)
  }
})

test_that("CUDA runs are bit-identical run to run, for every backend", {
  skip_if_no_cuda()
  for (backend in pln_backends()$backends) {
    for (opt in c("adam", "lbfgs")) {
      runs <- lapply(1:2, function(i) oaks_on("cuda", backend, optimizer = opt, maxit = 300, tol = 0))
      expect_identical(runs[[1]]$optim_par$objective, runs[[2]]$optim_par$objective)
      expect_identical(runs[[1]]$var_par$M, runs[[2]]$var_par$M)
      expect_identical(runs[[1]]$model_par$Omega, runs[[2]]$model_par$Omega)
    }
  }
})

test_that("a fit over plntorch.max_memory on CUDA is refused, naming the size; later fits work", {
  skip_if_no_cuda()
  old <- options(plntorch.max_memory = 1e5)
  on.exit(options(old))
  msg <- tryCatch({ oaks_on("cuda", "fused"); "" }, error = conditionMessage)
  expect_match(msg, "^not enough memory on cuda: this fit needs about [0-9.]+ [kM]B")
  expect_match(msg, "float64, backend 'fused'", fixed = TRUE)
  expect_match(msg, "device = 'cpu'", fixed = TRUE)
  options(plntorch.max_memory = NULL)
  expect_true(is.finite(oaks_on("cuda", "fused", maxit = 50)$loglik))
})

## Ctrl-C on the GPU: a child R session (base R only: Rscript and tools::pskill) runs long CUDA
## fits; this session sends it SIGINT during each and checks it stops within ~2 s and goes on.
test_that("SIGINT stops a long CUDA fit within ~2 s and later fits work", {
  skip_if_no_cuda()
  skip_if_not(.Platform$OS.type == "unix", "signals need a unix-alike")
  dir <- tempfile("pln-cuda-interrupt-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  backends <- pln_backends()$backends
  writeLines(c(
    "library(plntorch)",
    "dir <- commandArgs(TRUE)[1]",
    "fit <- function(...) PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,",
    "                         control = PLN_param(device = 'cuda', ...))",
    "invisible(fit(maxit = 5))  # the CUDA context exists before the timed fits",
    "writeLines(as.character(Sys.getpid()), file.path(dir, 'pid'))",
    "out <- list()",
    sprintf("for (b in c(%s)) {", paste0("'", backends, "'", collapse = ", ")),
    "  file.create(file.path(dir, paste0('ready-', b)))",
    "  got <- tryCatch({ fit(backend = b, optimizer = 'adam', maxit = 1e6, tol = 0); 'finished' },",
    "                  interrupt = function(e) 'interrupted')",
    "  out[[b]] <- list(got = got, at = as.numeric(Sys.time()))",
    "}",
    "out$later <- is.finite(fit(maxit = 50)$loglik)",
    "saveRDS(out, file.path(dir, 'result.rds'))"), file.path(dir, "child.R"))
  system2(file.path(R.home("bin"), "Rscript"), c(file.path(dir, "child.R"), dir),
          wait = FALSE, stdout = FALSE, stderr = FALSE)
  wait_for <- function(path, secs) {
    deadline <- Sys.time() + secs
    while (!file.exists(path) && Sys.time() < deadline) Sys.sleep(0.05)
    file.exists(path)
  }
  expect_true(wait_for(file.path(dir, "pid"), 120))
  pid <- as.integer(readLines(file.path(dir, "pid")))
  sent <- list()
  for (b in backends) {
    expect_true(wait_for(file.path(dir, paste0("ready-", b)), 60))
    Sys.sleep(1.5)  # inside the optimisation loop (setup, graph capture and compilation done)
    sent[[b]] <- as.numeric(Sys.time())
    tools::pskill(pid, tools::SIGINT)
  }
  expect_true(wait_for(file.path(dir, "result.rds"), 120))
  res <- readRDS(file.path(dir, "result.rds"))
  for (b in backends) {
    expect_identical(res[[b]]$got, "interrupted")
    expect_lt(res[[b]]$at - sent[[b]], 2)
  }
  expect_true(res$later)
})

test_that("predict() with responses and predict_cond() on CUDA follow the CPU, every backend", {
  skip_if_no_cuda()
  cpu <- oaks_on("cpu", "fused")
  nd <- oaks[1:20, ]
  Y <- oaks$Abundance[1:20, ]
  top <- names(sort(colSums(oaks$Abundance), decreasing = TRUE))[1:10]
  ref <- predict(cpu, nd, responses = Y)
  ref_cond <- predict_cond(cpu, nd, Y[, top], var_par = TRUE)
  for (backend in pln_backends()$backends) {
    ## the CPU fit's parameters on a CUDA fit object: the VE steps alone are compared (identical to
    ## 1e-14 across the CPU's backends; on the device rounding may move the stop within its
    ## precision, ~1e-3 in the flat directions of zero counts)
    gpu <- oaks_on("cuda", backend)
    gpu$model_par <- cpu$model_par
    link <- predict(gpu, nd, responses = Y)
    expect_identical(dimnames(link), dimnames(ref))
    expect_lt(max(abs(link - ref)), 1e-3)
    ## the fitted samples' own counts give back the fit's latent layer on the device too, to the
    ## precision of the fit (tol 1e-11) and of the VE step (1e-10): 1.4e-3 on the CPU
    own <- oaks_on("cuda", backend, tol = 1e-11)
    expect_lt(max(abs(predict(own, oaks, responses = oaks$Abundance) - own$latent)), 3e-3)
    cond <- predict_cond(gpu, nd, Y[, top], var_par = TRUE)
    expect_identical(dimnames(cond), dimnames(ref_cond))
    expect_lt(max(abs(unclass(cond)[, ] - unclass(ref_cond)[, ])), 1e-3)
    expect_lt(max(abs(attr(cond, "S") - attr(ref_cond, "S"))), 1e-3)
    ## float32 on the device: the VE step in single precision (0.015 on the CPU)
    g32 <- oaks_on("cuda", backend, dtype = "float32")
    g32$model_par <- cpu$model_par
    expect_lt(max(abs(predict(g32, nd, responses = Y) - ref)), 5e-2)
  }
})

test_that("PLN-PCA on CUDA follows the CPU with every backend, dense and sparse counts", {
  skip_if_no_cuda()
  cpu <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = mollusk, ranks = 1:3)
  for (backend in pln_backends()$backends) {
    gpu <- PLNPCA(Abundance ~ 1 + offset(log(Offset)), data = mollusk, ranks = 1:3,
                  control = PLNPCA_param(backend = backend, device = "cuda"))
    expect_identical(gpu$optim_par$device, "cuda:0")
    ## converged fits stop within the optimiser's tolerance of the optimum, in another summation
    ## order: 4.6e-6 relative at most on an H200 (2026-11-23), 1e-5 between the CPU's backends
    expect_equal(gpu$criteria$loglik, cpu$criteria$loglik, tolerance = 1e-5)
  }
  skip_if_not_installed("Matrix")
  Ysp <- Matrix::Matrix(unclass(mollusk$Abundance), sparse = TRUE)
  Offset <- mollusk$Offset
  sp <- PLNPCA(Ysp ~ 1 + offset(log(Offset)), ranks = 1:3,
               control = PLNPCA_param(backend = "fused", device = "cuda"))
  ## sparse counts start from the randomized SVD, not the dense path's exact one, and PLN-PCA's
  ## ELBO has several maxima: every rank at or above the dense CPU fit (H200, 2026-11-23: ranks
  ## 1 and 2 equal to 1e-6 relative, rank 3 at another maximum, 65 units above)
  expect_true(all(sp$criteria$loglik >= cpu$criteria$loglik - 1e-5 * abs(cpu$criteria$loglik)))
})

test_that("every covariance structure on CUDA reaches the CPU's fit, every backend", {
  skip_if_no_cuda()
  for (cov in c("diagonal", "spherical", "genpop", "fixed")) {
    extra <- switch(cov,
      genpop = list(C = stats::cov2cor(crossprod(matrix(stats::rnorm(114 * 200), 200)))),
      fixed = list(Omega = diag(114)), list())
    cpu <- do.call(oaks_on, c(list("cpu", "fused", covariance = cov), extra))
    for (backend in pln_backends()$backends) {
      gpu <- do.call(oaks_on, c(list("cuda", backend, covariance = cov), extra))
      expect_identical(gpu$optim_par$status, "converged")
      expect_equal(gpu$loglik, cpu$loglik, tolerance = 1e-7)
    }
  }
})

test_that("batched jackknife refits on CUDA equal one refit per engine call on the CPU", {
  skip_if_no_cuda()
  ## trichoptera's 6 species present in most samples and a tight tol, as test-batch-refits.R: a
  ## rare species' flat intercept is left undetermined to ~1e-3 by any tolerance on the ELBO.
  dat <- trichoptera
  keep <- order(colSums(dat$Abundance > 0), decreasing = TRUE)[1:6]
  dat$Abundance <- unclass(dat$Abundance)[, keep]
  jack <- function(device, batch) {
    PLN(Abundance ~ Wind + offset(log(Offset)), data = dat,
        control = PLN_param(device = device, tol = 1e-12,
                            config_post = list(jackknife = TRUE, batch = batch)))$uncertainty$jackknife
  }
  cpu <- jack("cpu", 0)
  for (batch in list("auto", 16)) {  # auto: every refit at once; 16 does not divide 49
    gpu <- jack("cuda", batch)
    expect_true(gpu$batch >= 1L)
    expect_identical(names(gpu$status), "converged")
    expect_identical(length(gpu$steps), 49L)
    expect_lt(max(abs(gpu$mean_B - cpu$mean_B)) / max(abs(cpu$mean_B)), 1e-6)
    expect_lt(max(abs(gpu$mean_Omega - cpu$mean_Omega)) / max(abs(cpu$mean_Omega)), 1e-5)
    expect_lt(max(abs(gpu$var_B - cpu$var_B)) / max(abs(cpu$var_B)), 1e-4)
    expect_lt(max(abs(gpu$var_Omega - cpu$var_Omega)) / max(abs(cpu$var_Omega)), 1e-4)
  }
})
