#!/usr/bin/env bash
# Installs everything plntorch needs to build, test and benchmark on Debian 12 (run as root, or
# with sudo available): LibTorch, R's build dependencies as Debian packages, OpenBLAS (without it
# R and LibTorch use the reference BLAS, ~25x slower on matrix products), Catch2 and CMake for the
# engine's tests, pandoc and qpdf for the vignettes and R CMD check.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="libtorch-dev r-base-dev r-cran-rcpp r-cran-rcppeigen r-cran-r6 r-cran-knitr r-cran-rmarkdown r-cran-roxygen2
  r-cran-testthat r-cran-callr r-cran-matrix catch2 cmake make g++ pandoc qpdf libopenblas0-pthread"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends $missing
else
  echo "setup: all Debian packages present"
fi
