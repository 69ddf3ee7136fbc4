// The objective of pln-model.md, the closed-form covariance step and the analytic gradient.
#pragma once

#include <ATen/ATen.h>

#include "problem.h"

namespace pln {

// Per-observation J_i (unweighted) at (B, M, S) and a fixed Omega; differentiable in B, M, S.
// The ELBO is sum_i w_i J_i and equals PLNmodels' loglik_vec when Omega is the closed form.
at::Tensor elbo_rows(const Problem& pb, const at::Tensor& B, const at::Tensor& M,
                     const at::Tensor& S, const at::Tensor& Omega, const at::Tensor& logdet);
at::Tensor elbo(const Problem& pb, const at::Tensor& B, const at::Tensor& M,
                const at::Tensor& S, const at::Tensor& Omega, const at::Tensor& logdet);

// Sigma = (M' W M + diag(sum_i w_i S_i^2)) / sum(w); Omega = Sigma^-1 and log det Omega, all
// through a Cholesky factor with no host-side info check (no device sync).
void update_covariance(const Problem& pb, State& st);
// The same from the p x p statistic M' W M and the column sums of w S^2.
void covariance_from_stats(const Problem& pb, const at::Tensor& MtWM, const at::Tensor& s2sum,
                           State& st);

// The newton optimiser's update, shared by the autograd backends (the fused one runs the same
// arithmetic in its pass): a diagonal Newton step in M from the gradient gM, S^2 = 1/(A + Omega_jj),
// both from A at the current state; then the shift below.
void newton_update(const Problem& pb, State& st, const at::Tensor& gM);
// Moves X delta from M into B (Z unchanged), with delta = (X'WX)^+ X'WM the exact maximiser of J
// over such shifts; XtWM = X' W M.
void shift_to_B(const Problem& pb, State& st, const at::Tensor& XtWM);

struct Gradient {
  at::Tensor B, M, S;
};
Gradient analytic_gradient(const Problem& pb, const State& st);

// log(y!) ~ y log y - y + log(8y^3 + 4y^2 + y + 1/30) / 6 + log(pi) / 2, with y = 0 -> 1.
at::Tensor log_factorial(const at::Tensor& Y);

}  // namespace pln
