// PLN's public face (every covariance structure, the refits of the post-treatments): plain C++
// types only, as types.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/types.h"

namespace pln {

struct FitInput {
  MatrixView Y;         // n x p counts
  MatrixView O;         // n x p log-offsets
  MatrixView X;         // n x d covariates
  const double* w = nullptr;  // n weights; nullptr: all ones
  MatrixView B0, M0, S0;      // optional starting values
  MatrixView Omega0;          // p x p: Omega of covariance "fixed"
  MatrixView C;               // p x p: the correlation matrix of covariance "genpop"
  // d x p: B held at these values, not fitted (with covariance "fixed", the VE step of prediction:
  // M and S alone are optimised). lbfgs only; B0 must then be absent.
  MatrixView B_fixed;
};

struct FitResult {
  Matrix B, M, S, Sigma, Omega;
  double sigma2 = 0, rho = 0;      // genpop: Sigma = sigma2 (rho C + (1 - rho) I); NaN otherwise
  // ELBO trace: lbfgs, at the start and after each iteration (steps + 1 values, increasing);
  // adam, rprop: before each step (steps values).
  std::vector<double> objective;
  std::vector<double> loglik_vec;  // per-observation J_i at the final state, unweighted
  int64_t steps = 0;
  std::string status;              // converged | maxit | stalled (lbfgs: see optim/quasi_newton.h)
  double last_change = 0;          // relative change of the ELBO over the last step
  double predicted_change = 0;     // lbfgs: the next step's predicted relative gain; NaN otherwise
  double seconds = 0;              // optimisation loop only
  double setup_seconds = 0;        // data transfer, start, compilation
  int threads = 0;
  std::string backend, device, dtype, optimizer;
};

FitResult fit(const FitInput& in, const FitOptions& opt, const Callbacks& cb);

// ---- Refits of one fit on reweighted samples (the jackknife and the bootstrap of the R side's
// post-treatments), solved `batch` at a time in one problem with a leading batch dimension
// (batch.h, refit.cpp). lbfgs, covariance "full"; opt gives device, dtype, maxit, tol,
// num_threads and max_bytes (its backend is not used: the batched model is written in ATen).
struct RefitInput {
  MatrixView Y, O, X;     // the fit's data: n x p, n x p, n x d
  MatrixView W;           // n x K: refit k's weight of each sample, 0 where it is left out
  MatrixView B0, M0, S0;  // the fit's B (d x p), M (n x p, X B excluded) and S: every refit's start
  MatrixView Omega;       // p x p: the fit's Omega, from which the deviations below are taken
};

struct RefitResult {
  Matrix B;                            // (d p) x K: vec(B_k), one column per refit
  Matrix Omega_dev_sum, Omega_dev_sq;  // p x p: sum_k (Omega_k - Omega) and of its squares
  std::vector<double> steps;           // per refit: iterations until its own stopping rule held
  std::vector<std::string> status;     // per refit: converged | maxit | stalled (optim/quasi_newton.h)
  int64_t batch = 0;                   // refits solved together (the last batch may hold fewer)
  double bytes_per_refit = 0;          // the memory estimate the batch was sized by
  double seconds = 0;
  std::string device, dtype;
};

// batch: refits solved together; 0: as many as the memory budget (opt.max_bytes, else what the
// device has free) allows.
RefitResult refit(const RefitInput& in, const FitOptions& opt, int64_t batch, const Callbacks& cb);

struct ObjectiveResult {
  double objective = 0;
  Matrix B, M, S;  // gradients of J
};
// J and its gradient at (B, M, S) with Omega held fixed; method: autograd | script | analytic.
ObjectiveResult objective(const FitInput& in, const MatrixView& B, const MatrixView& M,
                          const MatrixView& S, const MatrixView& Omega,
                          const std::string& method, const std::string& dtype);

}  // namespace pln
