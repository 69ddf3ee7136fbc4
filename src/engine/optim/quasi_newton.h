// The default optimiser: L-BFGS on a model's objective J, with the model's curvature as the
// initial inverse Hessian and a backtracking line search on J itself, so that every accepted
// iteration increases J. It is written once against QuasiNewtonModel and knows no model: PLN is
// one (models/pln/model.cpp: the profiled ELBO J(M, P), B and Omega in closed form at every point),
// its batched refits another (models/pln/refit.cpp), PLN-PCA a third (models/pca/fit.cpp). Every
// backend runs it: they differ only in how J and its gradient are evaluated.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "api/types.h"

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

// The optimiser's vectors: a list of tensors (a model's variables), with the dot product and
// axpy summed over the list.
using Vars = std::vector<at::Tensor>;

// A model as the optimiser sees it. The optimiser evaluates trial points (value()), makes the
// accepted one current (accept()), and asks for the gradient and the curvature there.
class QuasiNewtonModel {
 public:
  virtual ~QuasiNewtonModel() = default;
  // J at x, NaN where it is not defined; x becomes the trial point.
  virtual double value(const Vars& x) = 0;
  // The trial point of the last value() call becomes the current point.
  virtual void accept() = 0;
  // The gradient of J at the current point.
  virtual Vars gradient() = 0;
  // The model's inverse curvature applied to q, at the current point (after gradient()).
  virtual Vars precondition(const Vars& q) = 0;
  // The longest step along the direction d that the model trusts: the line search starts at
  // min(1, max_step(d)). By default no limit.
  virtual double max_step(const Vars& d) {
    (void)d;
    return std::numeric_limits<double>::infinity();
  }
  // Whether the optimiser stops at the current point, d being its next direction: by default the
  // rule on J (the last relative gain and the predicted one below tol). A model made of
  // independent parts (batched refits, refit.cpp) asks it of each part, on the part's own J.
  virtual bool stationary(const Vars& d, double last_gain, double predicted_gain, double tol) {
    (void)d;
    return last_gain < tol && predicted_gain < tol;
  }
};

// Runs up to opt.maxit iterations of L-BFGS from x (the final point is left in x), with opt.tol's
// stopping rule (QuasiNewtonResult::status).
QuasiNewtonResult run_quasi_newton(QuasiNewtonModel& model, Vars& x, const FitOptions& opt,
                                   const std::function<void()>& poll,
                                   const std::function<void(int64_t, double)>& progress);

}  // namespace pln
