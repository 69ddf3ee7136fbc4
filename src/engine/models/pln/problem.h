// Data tensors and the variational state, validated once, shared by every backend.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>  // c10::NoGradGuard (ATen/ATen.h no longer brings it in 2.x)

#include <limits>

#include "api/pln.h"
#include "core/tensor.h"
#include "models/pln/covariance.h"

namespace pln {

struct Problem {
  at::Tensor Y, O, X, w;  // n x p, n x p, n x d, n (row-major, on the fit's device)
  // Row sums (n) of y log y - y - log(y!) (log(y!) by Ramanujan's formula, PLNmodels' choice),
  // and their weighted total. The ELBO's Poisson term is written around this constant
  // (fused_math.h, poisson_term()), so no term of the size of y log y is ever formed.
  at::Tensor lconst_row;
  double lconst_sum = 0;
  at::Tensor w_col;       // n x 1 view of w, for row broadcasting
  // Least squares on X through the QR factor of W^1/2 X = Q R (any column scale): Xo = X R^-1,
  // orthonormal for the weights (Xo' W Xo = I), and R (d x d, upper triangular), on the device.
  // Undefined when B is held fixed (B_fixed below).
  at::Tensor Xo, R;
  double wsum = 0;
  bool unit_weights = true;
  int64_t n = 0, p = 0, d = 0;
  at::TensorOptions opt;  // dtype and device of every tensor of the fit
  CovarianceModel cov;    // the covariance structure and what it needs
  // B held fixed (FitInput::B_fixed; undefined: B in closed form), and X B_fixed (n x p): then the
  // residual of M is M - X B_fixed and least_squares() gives B_fixed.
  at::Tensor B_fixed, XB_fixed;
  bool fixed_B() const { return B_fixed.defined(); }
};

struct State {
  at::Tensor B, M, S;     // d x p, n x p, n x p
  at::Tensor Sigma, Omega;  // p x p, or p-vectors of their diagonals (covariance.h)
  at::Tensor logdet;      // 0-dim: log det Omega
  double sigma2 = std::numeric_limits<double>::quiet_NaN();  // genpop's parameters
  double rho = std::numeric_limits<double>::quiet_NaN();
};

Problem make_problem(const FitInput& in, const at::TensorOptions& opt,
                     const std::string& covariance = "full");
State initial_state(const Problem& pb, const FitInput& in, const std::string& init);

// Xo' W V (d x p) for V n x p: the coefficients of V's weighted projection on X in the Xo basis.
at::Tensor project(const Problem& pb, const at::Tensor& V);
// The coefficients B (d x p) of the weighted least squares of V (n x p) on X, and V - X B; with B
// fixed, B_fixed and V - X B_fixed.
at::Tensor least_squares(const Problem& pb, const at::Tensor& V);
at::Tensor residual(const Problem& pb, const at::Tensor& V);

}  // namespace pln
