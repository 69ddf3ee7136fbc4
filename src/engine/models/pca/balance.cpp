// PLN-PCA's invariances profiled out (pca_balance.h).
#include "models/pca/balance.h"

namespace pln {

PcaBalance pca_balance(const PcaProblem& pb, const Vars& x) {
  const auto& M = x[kM];
  auto wc = pb.w.unsqueeze(1);
  PcaBalance b;
  b.G = -at::cholesky_solve(at::mm(pb.X.t(), wc * M), pb.XtWX_L);
  auto Mt = M + at::mm(pb.X, b.G);
  b.d = at::sqrt(pb.w.sum() / (wc * (Mt * Mt + at::exp(x[kP]))).sum(0));
  return b;
}

Vars pca_balanced(const PcaProblem& pb, const Vars& x, const PcaBalance& b) {
  Vars t(4);
  t[kB] = x[kB] - at::mm(b.G, x[kC].t());
  t[kC] = x[kC] / b.d;
  t[kM] = (x[kM] + at::mm(pb.X, b.G)) * b.d;
  t[kP] = x[kP] + 2 * at::log(b.d);
  return t;
}

Vars pca_pull_gradient(const Vars& g, const PcaBalance& b) {
  Vars r(4);
  r[kB] = g[kB];
  // B' = B - G C' moves with C: dJ/dC += -(dJ/dB')' G
  r[kC] = g[kC] / b.d - at::mm(g[kB].t(), b.G);
  r[kM] = g[kM] * b.d;
  r[kP] = g[kP];
  return r;
}

PcaCurvature pca_pull_curvature(PcaCurvature h, const PcaBalance& b) {
  auto d2 = b.d * b.d;
  h.hM = h.hM * d2;
  h.hC = h.hC / d2;
  return h;
}

}  // namespace pln
