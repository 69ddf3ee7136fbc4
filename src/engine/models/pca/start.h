// PLN-PCA's starting values: PLNmodels' LM start, without an n x p array on the sparse path.
//
// L = log(1 + Y) - O, B = the weighted least squares of L on X (QR of sqrt(w) X, aliased columns
// as R's qr(): coefficient 0), R = L - X B (unweighted residuals, as PLNmodels), and from R's
// rank-k SVD U D V': C = V D / sqrt(n), M = sqrt(n) U (so that M C' is R's best rank-k part).
//
// Two ways to the SVD:
//   exact       R formed densely (n x p) and its thin SVD: the reference of the randomized one
//               (tests). The R package's dense path keeps base R's qr() and svd() so that its fits
//               stay as they were: a start that differs by rounding can take the optimiser to
//               another local optimum.
//   randomized  R never formed: R G = log1p(Y) G - O G - X (B G) and R' H = log1p(Y)' H - O' H -
//               B' (X' H) are sparse products (the low-rank pass of lowrank_pass.h, any device)
//               plus low-rank corrections (O one value per sample; an n x p O is used densely);
//               subspace iteration on k + oversample columns with power_iters power steps, then
//               the SVD of the small Q' R. Exact to rounding when k + oversample >= min(n, p);
//               the R package's sparse path (PLNPCA() on a dgCMatrix), and inst/bench/pca-scale.cpp.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "models/pca/lowrank_pass.h"

namespace pln {

struct PcaStartOptions {
  bool exact = false;        // dense SVD of R (needs Ydense)
  int64_t oversample = 10;   // randomized: extra columns of the subspace
  int64_t power_iters = 4;   // randomized: power iterations (each: one R' H and one R G)
  uint64_t seed = 1;         // randomized: the Gaussian test matrix (drawn on the CPU)
};

struct PcaStartValues {
  at::Tensor B, C, M;  // d x p, p x k, n x k (options of X)
};

// Y: the counts as CSR (their val in X's dtype, on X's device); Ydense: n x p counts (exact only;
// undefined otherwise); O: n (one value per sample) or n x p; X: n x d; w: n weights or undefined
// (all ones). k <= min(n, p).
PcaStartValues pca_svd_start(const SparseCounts& Y, const at::Tensor& Ydense, const at::Tensor& O,
                             const at::Tensor& X, const at::Tensor& w, int64_t k,
                             const PcaStartOptions& opt);

// The columns of X that R's qr(sqrt(w) X) keeps (tol 1e-7 relative to each column's norm, in
// order: a column is aliased when its residual on the kept ones is below that), and the thin QR of
// sqrt(w) X on them: Q n x r, R r x r. Shared by the start and the null model of R^2.
struct WeightedQR {
  std::vector<int64_t> keep;
  at::Tensor Q, R;
};
WeightedQR weighted_qr(const at::Tensor& X, const at::Tensor& w);

}  // namespace pln
