// The default optimiser: L-BFGS on the profiled ELBO J(M, P) of elbo.h (B and Omega in closed form
// at every point), with the model's curvature (precondition() in elbo.h) as the initial inverse
// Hessian and a backtracking line search on J itself, so that every accepted iteration increases J.
// Every backend runs it: they differ only in how J and its gradient are evaluated (backend.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend.h"

namespace pln {

// Pairs (s, y) kept: on the validation sets of the package, 5 and 10 pairs take the same number of
// iterations to the optimum and 2 pairs up to twice as many.
constexpr int kQuasiNewtonMemory = 5;

struct QuasiNewtonResult {
  std::vector<double> objective;  // J at the start and after each iteration (monotone)
  int64_t iterations = 0;
  // converged: the last relative gain and the predicted one (the slope along the next direction)
  // are both below tol; maxit: the iteration budget ran out; stalled: no step along the
  // preconditioned gradient increases J in the fit's precision, the predicted gain is not small.
  std::string status;
  double last_gain = 0;       // relative gain of the last iteration
  double predicted_gain = 0;  // slope along the last direction, relative to |J|
};

// Runs up to opt.maxit iterations from st (its B, M, S), leaving the final state in st.
// poll() is called every iteration; it throws to stop (Ctrl-C); progress(t, J) when tracing.
QuasiNewtonResult run_quasi_newton(const Problem& pb, Backend& backend, const FitOptions& opt,
                                   State& st, const std::function<void()>& poll,
                                   const std::function<void(int64_t, double)>& progress);

}  // namespace pln
