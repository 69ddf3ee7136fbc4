#!/usr/bin/env bash
# Everything on the GPU machine, from a clean checkout, in one call:
#   1. configure against the Python torch package's LibTorch (writes src/Makevars);
#   2. the engine, its Catch2 tests and the benchmark driver, built by CMake (tests/cpp), or with
#      configure's own flags when CMake cannot use that LibTorch;
#   3. the CUDA Catch2 tests, while R CMD INSTALL builds the package (R carried in .rdeb);
#   4. B1 and B2 for every backend and device, the converged default fits C1 and C2 (lbfgs), and
#      the scale run (pln_bench);
#   5. tests/testthat/test-cuda.R against the installed package (device = "cuda"), then
#      inst/bench/leak-check.R on the GPU (100 fits per backend);
#   6. (stage lowrank, not in the default list) the low-rank pass at n = 1e6, p = 2e4, q = 20, 5%
#      non-zeros (lowrank_bench): results/<date>-<gpu>-lowrank.csv and lowrank.log.
#   7. (stage pcascale, not in the default list) PLN-PCA fits through pca_fit at n = 1e6, p = 2e4,
#      q = 20 (pca_scale; builds its target alone if the build stage did not run): each run of
#      PCASCALE_RUNS (';'-separated argument lists) appends to results/<date>-<gpu>-pca-scale.csv,
#      log pca-scale.log.
# Logs and results go to $OUT (default /tmp/pln-gpu): summary.txt, build.log, tests.log,
# bench.log, r.log, leak.log, results/<date>-<gpu>.csv, results/<date>-<gpu>-traces.csv.
#
# Needs .carry/catch2/catch.hpp (Debian's catch2 header) and, for step 5, .rdeb
# (sh ../shared/tools/device-r.sh fetch). Usage:
#   8. (stage rscript, not in the default list) the R scripts in RSCRIPTS (';'-separated Rscript
#      argument lists) against the installed package, log rscript.log, e.g.
#      RSCRIPTS='inst/bench/pca-validation.R --only scRNA --ranks 1:10 --device cuda --save --out $OUT/results'
#   bash inst/bench/run-gpu.sh [stages...]     stages: build tests bench r lowrank pcascale rscript
#                                              (default: build tests bench r)
#   LOWRANK_ARGS="--n 100000 --dtype float32" bash inst/bench/run-gpu.sh build lowrank
#   SCALE=1000000,1000,200 STEPS=5000 REPS=2 bash inst/bench/run-gpu.sh
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/pln-gpu}
mkdir -p "$OUT/results"
JOBS=$(nproc)
BUILD=${BUILD:-/tmp/pln-build}
STAGES=${*:-build tests bench r}
SUMMARY=$OUT/summary.txt
want() { case " $STAGES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
note() { echo "== $*" | tee -a "$SUMMARY"; }
stage() {  # stage NAME LOG command...: runs it, logs it, notes ok / FAILED and the time
  local name=$1 log=$2 t0=$SECONDS
  shift 2
  echo "---- $name: $*" >>"$log"
  if "$@" >>"$log" 2>&1; then note "$name: ok ($((SECONDS - t0)) s)"; return 0; fi
  note "$name: FAILED ($((SECONDS - t0)) s), see $(basename "$log")"
  return 1
}

TP=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  nvcc --version | tail -n 2
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  cmake --version | head -n 1
  g++ --version | head -n 1
  echo "torch package: $TP; cores: $JOBS"
} >"$OUT/build.log" 2>&1
note "$(head -n 3 "$OUT/build.log" | tail -n 1)"
note "$(grep '^torch ' "$OUT/build.log")"

export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
CC_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')

# Builds with the flags configure wrote into src/Makevars (the R package's own flags).
direct_build() {
  local d=$BUILD/direct CPPF LIBS NVCC NVF
  mkdir -p "$d"
  CPPF=$(sed -n 's/^PKG_CPPFLAGS = //p' src/Makevars)
  LIBS=$(sed -n 's/^PKG_LIBS = //p' src/Makevars)
  NVCC=$(sed -n 's/^NVCC = //p' src/Makevars)
  NVF=$(sed -n 's/^NVCC_FLAGS = //p' src/Makevars)
  [ -n "$NVCC" ] || { echo "configure found no nvcc"; return 1; }
  local pids=() objs=() f o
  # Objects named by their path below src/engine (models share file names: fit.cpp).
  for f in $(find src/engine -name '*.cpp'); do
    o=$d/$(echo "${f#src/engine/}" | tr '/' '_' | sed 's/\.cpp$/.o/'); objs+=("$o")
    g++ -std=c++17 -O2 -fPIC $CPPF -Isrc/engine -c "$f" -o "$o" & pids+=($!)
  done
  for f in $(find src/engine -name '*.cu'); do
    o=$d/$(echo "${f#src/engine/}" | tr '/' '_' | sed 's/\.cu$/.cu.o/'); objs+=("$o")
    $NVCC $NVF -Xptxas -v $CPPF -Isrc/engine -c "$f" -o "$o" & pids+=($!)
  done
  for f in tests/cpp/test_main.cpp tests/cpp/test_engine.cpp tests/cpp/test_cuda.cpp tests/cpp/test_lowrank.cpp \
    inst/bench/bench.cpp inst/bench/lowrank-bench.cpp; do
    g++ -std=c++17 -O2 $CPPF -DPLN_CUDA_KERNELS -Isrc/engine -I.carry -c "$f" -o "$d/$(basename "$f" .cpp).o" & pids+=($!)
  done
  local rc=0 p
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ $rc = 0 ] || return 1
  g++ -o "$BUILD/engine_tests" "$d/test_main.o" "$d/test_engine.o" "$d/test_cuda.o" \
    "$d/test_lowrank.o" "${objs[@]}" $LIBS -lpthread &&
    g++ -o "$BUILD/pln_bench" "$d/bench.o" "${objs[@]}" $LIBS -lpthread &&
    g++ -o "$BUILD/lowrank_bench" "$d/lowrank-bench.o" "${objs[@]}" $LIBS -lpthread
}

cmake_build() {
  cmake -S tests/cpp -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP/share/cmake" \
    -DPLN_CUDA_KERNELS=ON -DCMAKE_CUDA_ARCHITECTURES="$CC_CAP" -DCMAKE_CUDA_FLAGS="-Xptxas -v" \
    -DCATCH2_INCLUDE_DIR="$ROOT/.carry" && cmake --build "$BUILD" -j "$JOBS" ${1:+--target "$@"}
}

if want build; then
  stage configure "$OUT/build.log" ./configure
  grep 'plntorch configure' "$OUT/build.log" | tee -a "$SUMMARY"
  if ! stage cmake-build "$OUT/build.log" cmake_build; then
    rm -f "$BUILD/engine_tests" "$BUILD/pln_bench" "$BUILD/lowrank_bench"
    stage direct-build "$OUT/build.log" direct_build
  fi
  grep -E 'ptxas info *: Used|spill' "$OUT/build.log" | sort | uniq -c | sort -rn | head -n 8 >>"$SUMMARY"
fi

R_PID=""
if { want r || want rscript; } && [ -f .rdeb/env.sh ]; then
  # The R package builds while the tests run (both are untimed).
  (
    . .rdeb/env.sh
    mkdir -p /tmp/rlib
    export MAKEFLAGS="-j$JOBS"
    t0=$SECONDS
    if R CMD INSTALL --no-test-load -l /tmp/rlib . >"$OUT/r.log" 2>&1; then
      echo "== R CMD INSTALL: ok ($((SECONDS - t0)) s)" >>"$OUT/r.log"
    else
      echo "== R CMD INSTALL: FAILED ($((SECONDS - t0)) s)" >>"$OUT/r.log"
    fi
  ) &
  R_PID=$!
fi

if want tests && [ -x "$BUILD/engine_tests" ]; then
  stage catch2-cuda "$OUT/tests.log" timeout 300 "$BUILD/engine_tests" "[cuda]" --durations yes
  tail -n 4 "$OUT/tests.log" | tee -a "$SUMMARY"
fi
[ -n "$R_PID" ] && wait "$R_PID" && grep '^== R CMD INSTALL' "$OUT/r.log" | tee -a "$SUMMARY"

if want bench && [ -x "$BUILD/pln_bench" ]; then
  # The clocks while the benchmark runs (the card's settings are left as they are).
  nvidia-smi dmon -s pc -d 2 >"$OUT/clocks.log" 2>&1 &
  DMON=$!
  stage bench "$OUT/bench.log" timeout 420 "$BUILD/pln_bench" --data data-raw --out "$OUT/results" \
    --steps "${STEPS:-5000}" --cpu-steps "${CPU_STEPS:-20}" --reps "${REPS:-2}" \
    --scale "${SCALE:-1000000,1000,200}"
  kill "$DMON" 2>/dev/null
  sed -n '/^bench backend/,$p' "$OUT/bench.log" | tee -a "$SUMMARY"
  { echo "clocks during the bench (nvidia-smi dmon):"; cat "$OUT/clocks.log"; } >>"$OUT/bench.log"
  rm -f "$OUT/clocks.log"
fi

if want lowrank && [ -x "$BUILD/lowrank_bench" ]; then
  # The low-rank (PLN-PCA) pass at single-cell scale: kernels against the chunked ATen path.
  stage lowrank "$OUT/lowrank.log" timeout 420 "$BUILD/lowrank_bench" --out "$OUT/results" \
    --reps "${LOWRANK_REPS:-3}" ${LOWRANK_ARGS:-}
  grep -E '^(lowrank_bench|counts|float)' "$OUT/lowrank.log" | tee -a "$SUMMARY"
fi

if want pcascale; then
  [ -x "$BUILD/pca_scale" ] || stage pcascale-build "$OUT/build.log" cmake_build pca_scale
  IFS=';' read -ra PCA_RUNS <<<"${PCASCALE_RUNS:---n 100000 --time-limit 100;--time-limit 300}"
  for a in "${PCA_RUNS[@]}"; do  # each run's time limit, plus a minute for what follows the fit
    lim=$(echo "$a" | sed -n 's/.*--time-limit \([0-9]*\).*/\1/p')
    stage pcascale "$OUT/pca-scale.log" timeout $((${lim:-400} + 60)) "$BUILD/pca_scale" --out "$OUT/results" $a
  done
  grep -E '^(pca_scale|data|start|pilot|time limit|fit|rank)' "$OUT/pca-scale.log" | tee -a "$SUMMARY"
fi

if want r && [ -f .rdeb/env.sh ] && grep -q '^== R CMD INSTALL: ok' "$OUT/r.log" 2>/dev/null; then
  (
    . .rdeb/env.sh
    cd "$ROOT"
    R_LIBS=/tmp/rlib timeout 400 Rscript -e '
      library(plntorch); print(pln_backends())
      source("inst/bench/mini-testthat.R"); source("tests/testthat/helper-pln.R")
      ok <- run_test_file("tests/testthat/test-cuda.R")
      fit <- PLN(Abundance ~ 1 + offset(log(Offset)), data = oaks, control = PLN_param(device = "cuda"))
      print(fit)
      cat("R smoke fit on", fit$optim_par$device, fit$optim_par$dtype, fit$optim_par$backend, ":",
          fit$optim_par$steps, "steps,", round(fit$optim_par$seconds, 3), "s, loglik", fit$loglik, "\n")
      quit(status = if (ok) 0 else 1)'
  ) >>"$OUT/r.log" 2>&1 && note "R test-cuda.R: ok" || note "R test-cuda.R: FAILED, see r.log"
  grep -E 'passed|R smoke|\[ *[0-9.]+ s\]' "$OUT/r.log" | tee -a "$SUMMARY"
  # Memory across 100 fits per backend on the GPU (RSS and the process's CUDA memory).
  if [ "${LEAK_FITS:-100}" != 0 ]; then
    (
      . .rdeb/env.sh
      R_LIBS=/tmp/rlib timeout 300 Rscript inst/bench/leak-check.R "${LEAK_FITS:-100}" all cuda
    ) >"$OUT/leak.log" 2>&1 && note "leak-check cuda: ok" || note "leak-check cuda: FAILED, see leak.log"
    grep -E 'RSS after' "$OUT/leak.log" | tee -a "$SUMMARY"
  fi
fi

if want rscript && [ -f .rdeb/env.sh ] && grep -q '^== R CMD INSTALL: ok' "$OUT/r.log" 2>/dev/null; then
  # R scripts of inst/bench against the installed package, each of RSCRIPTS (';'-separated
  # argument lists of Rscript, run from the package root; results under $OUT/results by --out).
  IFS=';' read -ra R_RUNS <<<"${RSCRIPTS:-}"
  for a in "${R_RUNS[@]}"; do
    [ -n "${a// /}" ] || continue
    ( . .rdeb/env.sh; cd "$ROOT"; eval "R_LIBS=/tmp/rlib timeout ${RSCRIPT_LIMIT:-400} Rscript $a" ) \
      >>"$OUT/rscript.log" 2>&1 && note "Rscript $a: ok" || note "Rscript $a: FAILED, see rscript.log"
  done
fi
note "done in $SECONDS s"
# The device tool brings back a limited number of files: the build and test logs go in one archive.
tar -czf "$OUT/logs.tar.gz" -C "$OUT" $(cd "$OUT" && ls build.log tests.log 2>/dev/null) 2>/dev/null &&
  rm -f "$OUT/build.log" "$OUT/tests.log"
