// PLN-PCA's public face: plain C++ types only (as api.h), for the R glue (src/rcpp_pca.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/types.h"

namespace pln {

// Counts as a dense matrix (Y) or as CSR (rowptr n + 1, col nnz 0-based, val nnz), n x p.
struct PcaInput {
  MatrixView Y;                       // dense counts, or absent
  const int64_t* rowptr = nullptr;    // CSR counts (when Y is absent)
  const int64_t* col = nullptr;
  const double* val = nullptr;
  int64_t n = 0, p = 0, nnz = 0;
  MatrixView O;                       // n x p or n x 1 (one offset per sample); absent: 0
  MatrixView X;                       // n x d
  const double* w = nullptr;          // n weights; nullptr: all ones
  // Starting values: B0 (d x p), and C0 (p x qmax), M0 (n x qmax) whose first q columns start
  // rank q (the SVD start of PLNmodels); S0 (n x qmax, optional, default 0.1).
  MatrixView B0, C0, M0, S0;
  // Variational step only (project()): B0 and C0 are held fixed, M and S fitted.
  bool fixed_model = false;
  // Where each rank starts: "svd", the SVD start above (PLNmodels'); "warm", the previous rank's
  // optimum padded by the SVD start's next columns of C and zero columns of M (the first rank from
  // the SVD start); "best", both, keeping the higher optimum (neither is above the other on every
  // rank of the validation sets: inst/bench/results/pca-validation-*.md).
  std::string start = "best";
};

struct PcaRankResult {
  int64_t rank = 0;
  Matrix B, C, M, S;               // d x p, p x q, n x q, n x q
  std::vector<double> objective;   // ELBO at the start and after each iteration (increasing)
  std::vector<double> loglik_vec;  // per-observation J_i (unweighted), PLNmodels' loglik_vec
  int64_t steps = 0;
  std::string status;              // converged | maxit | stalled
  double last_change = 0, predicted_change = 0;
  double seconds = 0;
};

struct PcaResult {
  std::vector<PcaRankResult> fits;
  double setup_seconds = 0;
  int threads = 0;
  std::string backend, device, dtype;
};

// Fits every rank of `ranks` (sorted, increasing) in one call; opt.backend: eager | script | fused,
// opt.optimizer must be lbfgs.
PcaResult pca_fit(const PcaInput& in, const std::vector<int64_t>& ranks, const FitOptions& opt,
                  const Callbacks& cb);

struct PcaObjective {
  double objective = 0;
  Matrix B, C, M, S;  // the gradient of J in B, C, M and S
};
// J and its gradient at (B0, C0, M0, S0) of `in`; method: autograd | script | analytic.
PcaObjective pca_objective(const PcaInput& in, const std::string& method, const std::string& dtype);

// PLNmodels' start (pca_start.h) from the counts, O, X and w of `in`, up to rank qmax: method
// "exact" (the dense SVD of the residuals; dense counts only) or "randomized" (sparse products,
// no n x p array). On opt.device in opt.dtype, opt.num_threads.
struct PcaStartResult {
  Matrix B, C, M;  // d x p, p x qmax, n x qmax
  double seconds = 0;
};
PcaStartResult pca_start(const PcaInput& in, int64_t qmax, const std::string& method,
                         const FitOptions& opt);

// The terms of PLNmodels' R^2 (pca_rsquared.h) from the counts, O, X and w of `in`: the Poisson
// log-likelihood of the null model (lmin), of the saturated one (lmax), and at the latent means
// O + X B + M C' of each fit. On opt.device in opt.dtype, opt.num_threads.
struct PcaFactors {
  MatrixView B, C, M;
};
struct PcaPoissonTerms {
  double lmin = 0, lmax = 0;
  std::vector<double> loglik;      // one per fit
  Matrix Bnull;                    // d x p: the null model's coefficients
  std::vector<double> iterations;  // p: its IRLS iterations per species
};
PcaPoissonTerms pca_poisson_terms(const PcaInput& in, const std::vector<PcaFactors>& fits,
                                  const FitOptions& opt);

}  // namespace pln
