## Ctrl-C during a long fit: a child R session runs fits that would take minutes, the test
## sends it SIGINT during each and checks the fit stops quickly and a later fit works.

test_that("SIGINT stops a long fit within ~2 s and the session goes on working", {
  skip_on_cran()
  skip_if_not_installed("callr")
  skip_on_os("windows")
  dir <- tempfile("pln-interrupt-"); dir.create(dir)
  backends <- intersect(c("eager", "script", "fused"), pln_backends()$backends)
  child <- function(dir, backends) {
    library(plntorch)
    out <- list()
    for (b in backends) {
      ctrl <- PLN_param(backend = b, maxit = 1e6, tol = 0, optimizer = "rprop", lr = 0.05)
      file.create(file.path(dir, paste0("ready-", b)))
      got <- tryCatch({
        PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks, control = ctrl)
        "finished"
      }, interrupt = function(e) "interrupted")
      out[[b]] <- list(got = got, at = Sys.time())
    }
    later <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
                 control = PLN_param(maxit = 50))
    c(out, list(later = is.finite(later$loglik)))
  }
  p <- callr::r_bg(child, args = list(dir = dir, backends = backends), package = FALSE)
  on.exit({ if (p$is_alive()) p$kill(); unlink(dir, recursive = TRUE) }, add = TRUE)
  sent <- list()
  for (b in backends) {
    deadline <- Sys.time() + 60
    while (!file.exists(file.path(dir, paste0("ready-", b))) && p$is_alive() &&
           Sys.time() < deadline) Sys.sleep(0.05)
    expect_true(p$is_alive(), info = b)
    Sys.sleep(1) # well inside the optimisation loop (setup takes milliseconds on oaks)
    sent[[b]] <- Sys.time()
    p$interrupt()
  }
  p$wait(60 * 1000)
  expect_false(p$is_alive())
  res <- p$get_result()
  for (b in backends) {
    expect_identical(res[[b]]$got, "interrupted", info = b)
    expect_lt(as.numeric(difftime(res[[b]]$at, sent[[b]], units = "secs")), 2)
  }
  expect_true(res$later)
})
