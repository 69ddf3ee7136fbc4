// PLN-PCA's R^2 (PLNmodels' formula), with no n x p array: the Poisson log-likelihood of the
// counts at the latent means Z = O + X B + M C', placed between that of the null model (a Poisson
// GLM per species on X with the offsets, as stats::glm.fit(epsilon = 1e-3, maxit = 10) fits it)
// and that of the saturated one:
//
//   R^2 = (l(Z) - l_null) / (l_sat - l_null),  l(Z) = sum_i w_i sum_j [Y_ij Z_ij - exp(Z_ij) -
//   log(Y_ij!)] (log(y!) by Ramanujan's formula, 0! as 1!, PLNmodels' logLikPoisson).
//
// Every n x p sum goes through the low-rank passes (lowrank_pass.h): exp() terms by the dense pass
// with U = [X, M] and V = [B', C], count terms by the sparse pass (non-zeros only); the null model
// by glm.fit's IRLS, every species at once (its d x d Newton systems from one dense pass per
// iteration, with U = [1, X, X (x) X]), its first step from glm.fit's start mu = y + 0.1 through
// the non-zeros, and glm.fit's per-species stopping rule on the deviance.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "models/pca/model.h"

namespace pln {

struct PcaPoissonBounds {
  double lmin = 0;   // l at the null model's fit
  double lmax = 0;   // l of the saturated model (Z = log Y where Y > 0)
  at::Tensor Bnull;  // d x p: the null model's coefficients (0 for aliased columns of X)
  at::Tensor iterations;  // p: the IRLS iterations of each species (as glm.fit's iter)
};
PcaPoissonBounds pca_poisson_bounds(const PcaProblem& pb, double epsilon = 1e-3, int maxit = 10);

// l(Z) at Z = O + X B + M C' (B d x p, C p x q, M n x q).
double pca_poisson_loglik(const PcaProblem& pb, const at::Tensor& B, const at::Tensor& C,
                          const at::Tensor& M);

}  // namespace pln
