# Developer entry points (not part of the R package: .Rbuildignore'd).
#   make demo   set up everything, install, fit oaks with every backend, print fit and timings
#   make test   set up everything, R CMD build + check (tests, examples, vignettes), Catch2 suite
.PHONY: setup install demo test cpp-test bench clean

export MAKEFLAGS := -j2

setup:
	bash tools/setup.sh

install: setup
	Rscript -e 'Rcpp::compileAttributes(); roxygen2::roxygenise(roclets = c("rd", "namespace"))'
	R CMD INSTALL --no-test-load .

demo: install
	Rscript inst/bench/oaks-backends.R

test: setup
	bash tools/test.sh

cpp-test: setup
	cmake -S tests/cpp -B build/cpp -DCMAKE_BUILD_TYPE=Release && cmake --build build/cpp -j2 && build/cpp/engine_tests

bench: install
	Rscript inst/bench/oaks-backends.R --x100

clean:
	./cleanup; rm -rf build plntorch_*.tar.gz plntorch.Rcheck
