// PLN-PCA's exact invariances, profiled out. The likelihood part of J depends on M, C and B only
// through X B + M C' and S2 (C o C)', so for any d x q matrix G and positive q-vector d the map
//
//   T(B, C, M, P) = (B - G C', C / d, (M + X G) d, P + 2 log d)     (d per column)
//
// leaves it unchanged; only the prior term -1/2 sum_i w_i sum_k [M_ik^2 + S2_ik - log S2_ik - 1]
// moves, and it has a closed-form maximiser in (G, d): G = -(X'WX)^{-1} X'W M (the weighted
// least-squares shift of M onto the covariates) and d_k^2 = sum_i w_i / sum_i w_i (M~_ik^2 + S2_ik)
// (M~ = M + X G). The optimiser works on the profiled objective J~(x) = J(T(x)) = max over (G, d);
// its gradient is J's at T(x) pulled back through T at the maximiser (envelope theorem).
//
// Where: the warm-up of every PLN-PCA fit (pca_fit.cpp). These directions change J only through
// the prior, whose curvature (1 per entry) is tiny next to the likelihood's on large counts, so the
// iterates' scale drifts freely (microcosm rank 1 at step 2000: scores' mean 5.3, variance 27 times
// the prior's); with them profiled out, the warm-up's trust radius has a fixed scale to act on
// (inst/bench/NOTES-optimiser.md, "The warm-up").
#pragma once

#include <ATen/ATen.h>

#include "models/pca/model.h"

namespace pln {

struct PcaBalance {
  at::Tensor G;  // d x q: the shift of the scores onto the covariates
  at::Tensor d;  // q: the scale of each score column
};

// The maximiser (G, d) at x.
PcaBalance pca_balance(const PcaProblem& pb, const Vars& x);
// T(x) for that (G, d): the balanced point, with the same likelihood term and a higher J.
Vars pca_balanced(const PcaProblem& pb, const Vars& x, const PcaBalance& b);
// The gradient of J~ at x from the gradient g of J at T(x).
Vars pca_pull_gradient(const Vars& g, const PcaBalance& b);
// The curvature of J~ at x from J's at T(x) (per-entry scales of M and C; G's coupling ignored).
PcaCurvature pca_pull_curvature(PcaCurvature h, const PcaBalance& b);

}  // namespace pln
