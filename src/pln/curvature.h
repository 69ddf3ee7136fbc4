// The model's curvature, which the quasi-Newton optimiser (lbfgs.h) takes as its initial inverse
// Hessian: per entry a 2 x 2 Newton block in (m, log s2), per species the Newton step of B.
#pragma once

#include <ATen/ATen.h>

#include "elbo.h"

namespace pln {

// Applies the inverse curvature to the pair (qM, qP) at a point with closed-form blocks prof and
// A = exp(O + M + S2 / 2): per entry the inverse of a 2 x 2 block of -d2J/d(m, p)^2 at fixed Omega
// (fused_math.h, newton_block()), plus per species the Newton step of its B column with M_res
// fixed (a weighted Poisson regression on X, which the per-entry blocks see only through the prior);
// with B held fixed (Problem::fixed_B()) the per-entry blocks alone.
void precondition(const Problem& pb, const Profile& prof, const at::Tensor& A,
                  const at::Tensor& qM, const at::Tensor& qP, at::Tensor& rM, at::Tensor& rP);

}  // namespace pln
