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

test_that("float32 is the default on CUDA and lands near the float64 CPU fit", {
  skip_if_no_cuda()
  for (backend in pln_backends()$backends) {
    cpu <- oaks_on("cpu", backend, maxit = 300, tol = 0)
    gpu <- oaks_on("cuda", backend, maxit = 300, tol = 0)
    expect_identical(gpu$optim_par$dtype, "float32")
    expect_lt(abs(gpu$loglik - cpu$loglik) / abs(cpu$loglik), 1e-4)
  }
})

test_that("the default fit (newton) converges on CUDA with every backend", {
  skip_if_no_cuda()
  for (backend in pln_backends()$backends) {
    fit <- oaks_on("cuda", backend, dtype = "float64")
    expect_identical(fit$optim_par$status, "converged")
    expect_gte(fit$loglik, -32029.0)
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
