#' Backends and devices of this build
#'
#' Reports what the compiled engine offers: its backends, the devices it can
#' run on, the LibTorch version it links against and its CPU threads.
#'
#' @return A list of class `"pln_backends"` with
#' * `backends`: the backends built, among `"eager"`, `"script"`, `"fused"`
#'   (see [PLN_param()]);
#' * `devices`: `"cpu"` and, when LibTorch has CUDA, `"cuda:0"`, `"cuda:1"`, ...;
#' * `libtorch`: LibTorch version;
#' * `cuda`: whether LibTorch was built with CUDA and sees a GPU;
#' * `cuda_build`: whether LibTorch was built with CUDA;
#' * `cuda_kernels`: whether the fused backend's CUDA kernels were compiled in;
#' * `cuda_devices`: number of CUDA devices;
#' * `threads`: LibTorch's number of CPU threads;
#' * `default_backend`: the backend [PLN_param()] picks when `backend = NULL`.
#'
#' Printing it gives a short summary.
#' @export
#' @examples
#' pln_backends()
#' "script" %in% pln_backends()$backends
pln_backends <- function() {
  info <- pln_backends_engine()
  n_gpu <- as.integer(info$cuda_devices)
  structure(list(
    backends = as.character(info$backends),
    devices = c("cpu", if (isTRUE(info$cuda) && n_gpu > 0L) paste0("cuda:", seq_len(n_gpu) - 1L)),
    libtorch = as.character(info$libtorch),
    cuda = isTRUE(info$cuda),
    cuda_build = isTRUE(info$cuda_build),
    cuda_kernels = isTRUE(info$cuda_kernels),
    cuda_devices = n_gpu,
    threads = as.integer(info$threads),
    default_backend = intersect(.pln_defaults$backend_preference, info$backends)[1L]
  ), class = "pln_backends")
}

#' @export
print.pln_backends <- function(x, ...) {
  cat("plntorch engine\n")
  cat("  LibTorch:", x$libtorch,
      if (x$cuda) "(CUDA)" else if (x$cuda_build) "(CUDA build, no GPU visible)" else "(CPU only)",
      "\n")
  cat("  backends:", paste(x$backends, collapse = ", "),
      sprintf("(default: %s)", x$default_backend), "\n")
  cat("  devices: ", paste(x$devices, collapse = ", "), "\n")
  cat("  CPU threads:", x$threads, "\n")
  invisible(x)
}
