// The model's curvature, which the quasi-Newton optimiser (lbfgs.h) takes as its initial inverse
// Hessian: per entry a 2 x 2 Newton block in (m, log s2), per species the Newton step of B.
#pragma once

#include <ATen/ATen.h>

#include "models/pln/elbo.h"

namespace pln {

// Smallest curvature of B's block, relative to X'WX = I in the Xo basis: a species absent from a
// level of a factor has its coefficient drift to -Inf, at a gain that vanishes as exp() of it.
constexpr double kRidgeB = 1e-6;

// Applies the inverse curvature to the pair (qM, qP) at a point with closed-form blocks prof and
// A = exp(O + M + S2 / 2): per entry the inverse of a 2 x 2 block of -d2J/d(m, p)^2 at fixed Omega
// (fused_math.h, newton_block()), plus per species the Newton step of its B column with M_res
// fixed (a weighted Poisson regression on X, which the per-entry blocks see only through the prior);
// with B held fixed (Problem::fixed_B()) the per-entry blocks alone.
void precondition(const Problem& pb, const Profile& prof, const at::Tensor& A,
                  const at::Tensor& qM, const at::Tensor& qP, at::Tensor& rM, at::Tensor& rP);

// The pieces, for models that assemble their own curvature (the batched refits, batch.cpp):
// the per-entry blocks for counts Y (n x p), row weights w (n, positive), A, S2 (n x p) and
// diag(Omega) dO (p), written into rM and rP (n x p, contiguous; views are written in place);
// and X solving H X = G for a batch of small SPD matrices H (m x d x d) and right sides G (m x d).
void newton_blocks(const at::Tensor& Y, const at::Tensor& w, const at::Tensor& A,
                   const at::Tensor& S2, const at::Tensor& dO, const at::Tensor& qM,
                   const at::Tensor& qP, at::Tensor& rM, at::Tensor& rP);
at::Tensor solve_small_spd(const at::Tensor& H, const at::Tensor& G);

}  // namespace pln
