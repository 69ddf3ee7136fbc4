## Memory across repeated fits: resident set size (RSS, from /proc/self/status, Linux) and,
## where a GPU is used, CUDA memory as reported by nvidia-smi, after each of `n_fits` fits
## of oaks. A leak shows as steady growth after the first few fits (allocator warm-up).
##
##   Rscript inst/bench/leak-check.R [n_fits] [backend|all] [device]
## e.g. Rscript inst/bench/leak-check.R 100 all cpu
library(plntorch)
args <- commandArgs(trailingOnly = TRUE)
n_fits <- if (length(args) >= 1) as.integer(args[1]) else 100L
backends <- if (length(args) >= 2 && args[2] != "all") args[2] else pln_backends()$backends
device <- if (length(args) >= 3) args[3] else "cpu"

rss_mb <- function() {
  s <- readLines("/proc/self/status")
  as.numeric(sub("VmRSS:\\s+([0-9]+) kB", "\\1", grep("^VmRSS", s, value = TRUE))) / 1024
}
gpu_mb <- function() {
  if (!startsWith(device, "cuda")) return(NA_real_)
  out <- tryCatch(system2("nvidia-smi", c("--query-compute-apps=pid,used_memory",
                                          "--format=csv,noheader,nounits"), stdout = TRUE),
                  error = function(e) character(0))
  mine <- grep(paste0("^", Sys.getpid(), ","), out, value = TRUE)
  if (length(mine)) as.numeric(sub(".*,\\s*", "", mine[1])) else NA_real_
}

for (b in backends) {
  ctrl <- PLN_param(backend = b, device = device, maxit = 200, tol = 0)
  rss <- gpu <- numeric(n_fits)
  errs <- 0L
  for (i in seq_len(n_fits)) {
    ## every 10th fit is a diverging one, so error paths are measured too
    if (i %% 10 == 0) {
      errs <- errs + inherits(try(PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks,
                                      control = PLN_param(backend = b, device = device,
                                                          optimizer = "rprop", lr = 10)),
                                  silent = TRUE), "try-error")
    } else {
      fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks, control = ctrl)
    }
    if (i %% 5 == 0) gc(verbose = FALSE)
    rss[i] <- rss_mb(); gpu[i] <- gpu_mb()
  }
  q <- function(v, k) v[min(k, length(v))]
  cat(sprintf("%-6s %s: RSS after fit 1 %.1f MB, 10 %.1f, 50 %.1f, %d %.1f MB; growth 10->%d %.2f MB (%.3f MB/fit); %d diverging fits errored%s\n",
              b, device, rss[1], q(rss, 10), q(rss, 50), n_fits, rss[n_fits], n_fits,
              rss[n_fits] - q(rss, 10), (rss[n_fits] - q(rss, 10)) / max(n_fits - 10, 1), errs,
              if (all(is.na(gpu))) "" else sprintf("; GPU after fit 10 %.0f MB, %d %.0f MB",
                                                    q(gpu, 10), n_fits, gpu[n_fits])))
}
