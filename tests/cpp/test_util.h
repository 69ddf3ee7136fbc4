// Helpers shared by the engine's test files.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "api/pln.h"

// Simulated data as the R side passes it: column-major doubles.
struct Data {
  int64_t n, p, d;
  std::vector<double> Y, O, X, w;
  pln::FitInput input(bool weights = false) const {
    pln::FitInput in;
    in.Y = {Y.data(), n, p};
    in.O = {O.data(), n, p};
    in.X = {X.data(), n, d};
    if (weights) in.w = w.data();
    return in;
  }
};

// Largest |a - b| / max(1, |b|) over two vectors of the same length.
inline double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::fabs(a[i] - b[i]) / std::max(1.0, std::fabs(b[i])));
  return m;
}

// A fixed number of steps (tol 0) with the optimiser's usual learning rate.
inline pln::FitOptions options(const std::string& backend, const std::string& optimizer,
                               int64_t steps, const std::string& init = "tutorial",
                               const std::string& device = "cpu",
                               const std::string& dtype = "float64") {
  pln::FitOptions o;
  o.backend = backend;
  o.optimizer = optimizer;
  o.lr = optimizer == "adam" ? 0.01 : 0.05;
  o.maxit = steps;
  o.tol = 0;
  o.init = init;
  o.device = device;
  o.dtype = dtype;
  return o;
}
