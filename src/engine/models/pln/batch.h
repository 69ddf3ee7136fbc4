// Refits of one PLN problem solved together (the jackknife and the bootstrap, refit.cpp): K
// weightings of the same n x p data, each refit a weight vector w_k over all n rows, a weight of 0
// leaving the row out. The variables carry a leading batch dimension (M, P: K x n x p; B: K x d x p;
// Sigma, Omega: K x p x p), and each refit's closed-form blocks are those of elbo.h for its
// weights. Covariance "full" only, in ATen operations (any device).
//
// A weight of 0 is a removed row, exactly: B_k is the weighted least squares of M_k on X, so the
// row enters neither Xo_k' W_k M_k nor the residuals' statistics G_k = M_res' W_k M_res +
// diag(sum_i w_ki S2_ki) of Omega_k; J_k = sum_i w_ki J_ki has no term of it (masked, not
// multiplied, so that no value of it can reach J_k); its gradient is w_ki (...) = 0; and the
// curvature leaves its entries out of every direction, so its M and P are held at their start.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "models/pln/elbo.h"
#include "models/pln/problem.h"

namespace pln {

struct BatchProblem {
  Problem data;          // Y, O, X and the Poisson constant of every row, shared by the refits
  int64_t K = 0;
  at::Tensor w;          // K x n: the refits' row weights (0: left out)
  at::Tensor w_col;      // K x n x 1
  at::Tensor kept;       // K x n x 1, boolean: w > 0
  at::Tensor w_blocks;   // K x n: w where w > 0, else 1 (finite curvature blocks, then masked)
  at::Tensor wsum;       // K (on the device) and on the host
  std::vector<double> wsum_host;
  // W_k^1/2 X = Q_k R_k, Xo_k = X R_k^-1 (K x n x d, every row finite, orthonormal for w_k)
  at::Tensor Xo, R;
};

// The data of `in` (its weights, B0, M0, S0 unused) with the K weightings of W (n x K, row-major
// K x n after the transfer). Throws naming the refit (1-based) whose weights are not usable:
// negative, non-finite, summing to 0, or leaving X rank-deficient.
BatchProblem make_batch_problem(const FitInput& in, const at::Tensor& W,
                                const at::TensorOptions& opt);

// Per refit: B_k (K x d x p) of the weighted least squares of V_k on X, and V_k - X B_k.
at::Tensor batch_least_squares(const BatchProblem& bp, const at::Tensor& V);
at::Tensor batch_residual(const BatchProblem& bp, const at::Tensor& V);

// The closed-form blocks of a point (M, P: K x n x p): residuals, S2, and the full covariance of
// each refit (Sigma, Omega K x p x p, logdet K, NaN where Sigma_k is not positive definite).
Profile batch_profile(const BatchProblem& bp, const Point& x);
// J_k, the profiled ELBO of each refit (K, float64).
at::Tensor batch_value(const BatchProblem& bp, const Point& x, const Profile& prof);
// Its gradient in (M, P), and A = exp(O + M + S2 / 2) for the curvature.
void batch_gradient(const BatchProblem& bp, const Point& x, const Profile& prof, at::Tensor& gM,
                    at::Tensor& gP, at::Tensor& A);
// The inverse curvature of each refit applied to (qM, qP) (curvature.h's, per refit), with the
// left-out rows' entries set to 0.
void batch_precondition(const BatchProblem& bp, const Profile& prof, const at::Tensor& A,
                        const at::Tensor& qM, const at::Tensor& qP, at::Tensor& rM,
                        at::Tensor& rP);

}  // namespace pln
