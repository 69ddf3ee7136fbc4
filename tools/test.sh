#!/usr/bin/env bash
# All the tests: builds the tarball (vignettes included), runs R CMD check on it (tests and
# examples; fails on any ERROR or WARNING), then the engine's Catch2 suite built with CMake.
# Ends with one line "N passed, N failed, N skipped" over both suites.
set -euo pipefail
cd "$(dirname "$0")/.."
export MAKEFLAGS="${MAKEFLAGS:--j2}"
export _R_CHECK_FORCE_SUGGESTS_=false
# Run the tests that CRAN would skip too (the Ctrl-C test in a subprocess).
export NOT_CRAN=true
WORK="${PLNTORCH_TEST_DIR:-$(mktemp -d)}"
mkdir -p "$WORK"

echo "== R CMD build"
Rscript -e 'Rcpp::compileAttributes(); roxygen2::roxygenise(roclets = c("rd", "namespace"))'
git diff --exit-code -- NAMESPACE man R/RcppExports.R src/RcppExports.cpp >/dev/null 2>&1 ||
  echo "note: generated files (man/, NAMESPACE, RcppExports) were out of date and were regenerated"
R CMD build --no-manual . 
TARBALL=$(ls -t plntorch_*.tar.gz | head -n 1)
mv "$TARBALL" "$WORK/"

echo "== R CMD check"
( cd "$WORK" && R CMD check --no-manual "$TARBALL" ) || true
LOG="$WORK/plntorch.Rcheck/00check.log"
cat "$LOG" | sed -n '/^Status/,$p'
R_FAIL=0
grep -q "^Status: .*ERROR" "$LOG" && R_FAIL=1
grep -q "^Status: .*WARNING" "$LOG" && R_FAIL=1
grep -q "^Status:" "$LOG" || R_FAIL=1
if [ "$R_FAIL" -ne 0 ]; then
  echo "R CMD check failed:"; grep -B2 -A25 -E "\.\.\. (ERROR|WARNING)" "$LOG" || true
  for f in "$WORK"/plntorch.Rcheck/tests/*.Rout.fail; do [ -f "$f" ] && tail -n 60 "$f"; done
fi
# testthat's own tally, from the check's test log.
ROUT=$(ls "$WORK"/plntorch.Rcheck/tests/testthat.Rout* 2>/dev/null | head -n 1)
TT=$(grep -E "^\[ FAIL [0-9]+ \| WARN [0-9]+ \| SKIP [0-9]+ \| PASS [0-9]+ \]" "$ROUT" | tail -n 1 || true)
T_FAIL=$(echo "$TT" | sed -n 's/.*FAIL \([0-9]*\).*/\1/p'); T_FAIL=${T_FAIL:-1}
T_SKIP=$(echo "$TT" | sed -n 's/.*SKIP \([0-9]*\).*/\1/p'); T_SKIP=${T_SKIP:-0}
T_PASS=$(echo "$TT" | sed -n 's/.*PASS \([0-9]*\).*/\1/p'); T_PASS=${T_PASS:-0}
echo "testthat: $T_PASS passed, $T_FAIL failed, $T_SKIP skipped"

echo "== Catch2 engine tests"
cmake -S tests/cpp -B "$WORK/cpp" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$WORK/cpp" -j2 --target engine_tests
C_OUT=$("$WORK/cpp/engine_tests" 2>&1) && C_RC=0 || C_RC=$?
echo "$C_OUT" | tail -n 40
C_PASS=$(echo "$C_OUT" | sed -n 's/^All tests passed (\([0-9]*\) assertions.*/\1/p')
if [ -z "$C_PASS" ]; then
  C_PASS=$(echo "$C_OUT" | sed -n 's/^assertions: *[0-9]* | \([0-9]*\) passed.*/\1/p')
  C_FAIL=$(echo "$C_OUT" | sed -n 's/^assertions:.*| \([0-9]*\) failed.*/\1/p')
fi
C_PASS=${C_PASS:-0}; C_FAIL=${C_FAIL:-0}
[ "$C_RC" -ne 0 ] && [ "$C_FAIL" -eq 0 ] && C_FAIL=1
echo "catch2: $C_PASS passed, $C_FAIL failed"

echo "== Catch2 engine tests under AddressSanitizer and UndefinedBehaviorSanitizer"
# LibTorch itself is not instrumented; leak detection is off because its static registries live
# until exit. Any memory error or undefined behaviour in the engine aborts the run.
cmake -S tests/cpp -B "$WORK/asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPLN_SANITIZE=ON >/dev/null
cmake --build "$WORK/asan" -j2 --target engine_tests
A_OUT=$(ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$WORK/asan/engine_tests" 2>&1) && A_RC=0 || A_RC=$?
echo "$A_OUT" | grep -E "runtime error|ERROR: AddressSanitizer|All tests passed|test cases:" || true
A_FAIL=0
if [ "$A_RC" -ne 0 ] || echo "$A_OUT" | grep -q "runtime error"; then
  A_FAIL=1
  echo "$A_OUT" | tail -n 60
fi
echo "catch2 (sanitizers): $([ "$A_FAIL" -eq 0 ] && echo "$C_PASS passed, 0 failed" || echo "failed")"
C_FAIL=$((C_FAIL + A_FAIL))

FAILED=$((T_FAIL + C_FAIL + R_FAIL))
echo "$((T_PASS + C_PASS)) passed, $FAILED failed, $T_SKIP skipped"
[ "$FAILED" -eq 0 ]
