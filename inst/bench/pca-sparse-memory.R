# PLNPCA() on sparse counts (a Matrix::dgCMatrix): time and peak memory of the whole call, to show
# that its R side builds no n x p array (the start, R^2, the axes and latent are the engine's or
# come from n x q and p x q factors; latent is not stored above options(plntorch.pca_store_latent)).
#
#   Rscript inst/bench/pca-sparse-memory.R --case scRNA [--maxit N] [--ranks 1:3] [--start best]
#   Rscript inst/bench/pca-sparse-memory.R --case synthetic [--n 30000] [--p 2000] [--density 0.05]
#                                          [--ranks 5] [--maxit 10] [--start svd]
#       one case in this process, with the plntorch of .libPaths() (R_LIBS=... to pick one):
#       prints one CSV row (--label NAME names it; --save also appends it to the day's CSV below)
#   Rscript inst/bench/pca-sparse-memory.R --all --lib before=DIR,after=DIR [--save] [case options]
#       every case (scRNA, synthetic) with every library, each in a fresh R process (so that its
#       peak resident memory is its own); --save appends the rows to
#       inst/bench/results/pca-sparse-memory-<date>.csv
#
# Columns: label (the library's name), case, n, p, nnz, ranks, maxit, start, seconds (the PLNPCA()
# call), r_peak_mb (R's heap: gc()'s max used of Ncells and Vcells after gc(reset = TRUE), minus
# what was in use before the call: every R array the call made), rss_peak_mb (the process's VmHWM:
# R and the engine together, the data included), dense_mb (one n x p double array, for scale),
# loglik and R2 per rank (';'-separated), status per rank.
# Timings on a shared machine are noisy: compare rows of one run.

args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default = NULL) {
  i <- match(paste0("--", name), args)
  if (is.na(i)) default else args[i + 1L]
}
flag <- function(name) paste0("--", name) %in% args

save_rows <- function(res) {
  f <- file.path("inst", "bench", "results", sprintf("pca-sparse-memory-%s.csv", Sys.Date()))
  utils::write.table(res, f, sep = ",", row.names = FALSE, append = file.exists(f),
                     col.names = !file.exists(f))
  message("appended to ", f)
}

if (flag("all")) {
  libs <- strsplit(strsplit(opt("lib"), ",", fixed = TRUE)[[1]], "=", fixed = TRUE)
  pass <- args[!args %in% c("--all", "--save", "--lib", opt("lib"))]
  script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  rows <- list()
  for (case in c("scRNA", "synthetic")) for (l in libs) {
    cmd <- c(script, "--case", case, "--label", l[1], pass)
    out <- system2("Rscript", cmd, stdout = TRUE, env = paste0("R_LIBS=", l[2]))
    cat(out, sep = "\n")
    rows[[length(rows) + 1L]] <- utils::read.csv(text = out[length(out) - c(1L, 0L)])
  }
  res <- do.call(rbind, rows)
  print(res)
  if (flag("save")) save_rows(res)
  quit(save = "no")
}

suppressPackageStartupMessages({
  library(plntorch)
  library(Matrix)
})
case <- opt("case", "scRNA")
label <- opt("label", "")
ranks <- eval(parse(text = opt("ranks", if (case == "scRNA") "1:3" else "5")))
maxit <- as.integer(opt("maxit", if (case == "scRNA") 10000 else 10))
start <- opt("start", if (case == "scRNA") "best" else "svd")

if (case == "scRNA") {
  Y <- methods::as(methods::as(plntorch::scRNA$counts, "generalMatrix"), "CsparseMatrix")
  Y <- methods::as(Y, "dMatrix")
  tc <- plntorch::scRNA$total_counts
  fml <- Y ~ 1 + offset(log(tc))
} else {
  n <- as.integer(opt("n", 30000)); p <- as.integer(opt("p", 2000))
  density <- as.numeric(opt("density", 0.05))
  set.seed(1)
  ## PLN-PCA data of rank 5 (as inst/bench/pca-scale.cpp): Z_ij = b_j + w_i' c_j, Y ~ Poisson(exp(Z)),
  ## c_j ~ N(0, 0.3^2 I_5), b_j ~ N(mu, 0.5^2) with mu giving the expected share of non-zeros;
  ## drawn by blocks of 100 genes (no n x p array), non-zeros kept.
  q <- 5
  W <- matrix(rnorm(n * q), n); C <- matrix(rnorm(p * q, 0, 0.3), p)
  s <- sqrt(q * 0.3^2 + 0.5^2); xi <- stats::qnorm(stats::ppoints(2000))
  mu <- stats::uniroot(function(m) mean(-expm1(-exp(m + s * xi))) - density, c(-30, 10))$root
  b <- rnorm(p, mu, 0.5)
  blocks <- lapply(split(seq_len(p), ceiling(seq_len(p) / 100)), function(js) {
    y <- matrix(stats::rpois(n * length(js), exp(tcrossprod(W, C[js, , drop = FALSE]) +
                                                   rep(b[js], each = n))), n)
    k <- which(y > 0)
    list(i = (k - 1L) %% n + 1L, j = js[(k - 1L) %/% n + 1L], x = y[k])
  })
  Y <- Matrix::sparseMatrix(i = unlist(lapply(blocks, `[[`, "i")), j = unlist(lapply(blocks, `[[`, "j")),
                            x = as.double(unlist(lapply(blocks, `[[`, "x"))), dims = c(n, p),
                            dimnames = list(NULL, paste0("g", seq_len(p))))
  rm(W, C, blocks)
  tc <- Matrix::rowSums(Y)
  fml <- Y ~ 1 + offset(log(tc))
}
invisible(gc(reset = TRUE))
g0 <- gc()
t0 <- proc.time()[["elapsed"]]
fam <- suppressWarnings(PLNPCA(fml, ranks = ranks,
                               control = PLNPCA_param(maxit = maxit, start = start)))
secs <- proc.time()[["elapsed"]] - t0
g1 <- gc()
mb <- function(g, col) sum(g[, col] * c(56, 8)) / 2^20  # Ncells 56 bytes, Vcells 8
r_peak <- mb(g1, "max used") - mb(g0, "used")
status <- readLines("/proc/self/status")
rss <- as.numeric(sub("[^0-9]*([0-9]+).*", "\\1", grep("^VmHWM", status, value = TRUE))) / 1024
res <- data.frame(
  label = label, case = case, n = nrow(Y), p = ncol(Y), nnz = length(Y@x),
  ranks = paste(ranks, collapse = ";"), maxit = maxit, start = start, seconds = round(secs, 2),
  r_peak_mb = round(r_peak, 1), rss_peak_mb = round(rss, 1),
  dense_mb = round(8 * as.double(nrow(Y)) * ncol(Y) / 2^20, 1),
  loglik = paste(sprintf("%.4f", fam$criteria$loglik), collapse = ";"),
  R2 = paste(sprintf("%.6f", vapply(fam$fits, function(f) f$R_squared, 0)), collapse = ";"),
  status = paste(vapply(fam$fits, function(f) f$optim_par$status, ""), collapse = ";"))
utils::write.csv(res, stdout(), row.names = FALSE)
if (flag("save")) save_rows(res)
