#include "elbo.h"

#include "fused_math.h"

#include <cmath>

namespace pln {

at::Tensor log_factorial(const at::Tensor& Y) {
  auto y = at::clamp_min(Y, 1);
  return y * at::log(y) - y + at::log(8 * y * y * y + 4 * y * y + y + 1.0 / 30) / 6 +
         0.5 * std::log(M_PI);
}

at::Tensor elbo_rows(const Problem& pb, const at::Tensor& B, const at::Tensor& M,
                     const at::Tensor& S, const at::Tensor& Omega, const at::Tensor& logdet) {
  auto S2 = S * S;
  auto Z = pb.O + at::mm(pb.X, B) + M;
  auto A = at::exp(Z + 0.5 * S2);
  auto MO = at::mm(M, Omega);
  auto terms = pb.Y * Z - A - pb.logfact + 0.5 * at::log(S2) - 0.5 * MO * M -
               0.5 * S2 * at::diagonal(Omega).unsqueeze(0);
  return terms.sum(1) + 0.5 * logdet + 0.5 * static_cast<double>(pb.p);
}

at::Tensor elbo(const Problem& pb, const at::Tensor& B, const at::Tensor& M, const at::Tensor& S,
                const at::Tensor& Omega, const at::Tensor& logdet) {
  return (pb.w * elbo_rows(pb, B, M, S, Omega, logdet)).sum();
}

void covariance_from_stats(const Problem& pb, const at::Tensor& MtWM, const at::Tensor& s2sum,
                           State& st) {
  st.Sigma = (MtWM + at::diag(s2sum)) / pb.wsum;
  // Cholesky without the host-side info check; a failed factor shows up as a non-finite ELBO.
  auto L = std::get<0>(at::linalg_cholesky_ex(st.Sigma));
  // cholesky_solve against I: half the time of cholesky_inverse on a CPU at p ~ 100.
  st.Omega = at::cholesky_solve(at::eye(pb.p, L.options()), L);
  st.logdet = -2 * at::log(at::diagonal(L)).sum();
}

void update_covariance(const Problem& pb, State& st) {
  auto M = st.M.detach();
  auto S = st.S.detach();
  auto MtWM = pb.unit_weights ? at::mm(M.t(), M) : at::mm(M.t(), M * pb.w_col);
  auto s2sum = pb.unit_weights ? (S * S).sum(0) : (S * S * pb.w_col).sum(0);
  covariance_from_stats(pb, MtWM, s2sum, st);
}

void newton_update(const Problem& pb, State& st, const at::Tensor& gM) {
  c10::NoGradGuard no_grad;
  auto M = st.M.detach(), S = st.S.detach();
  auto curv = at::exp(pb.O + at::mm(pb.X, st.B.detach()) + M + 0.5 * S * S) +
              at::diagonal(st.Omega).unsqueeze(0);
  M.add_((gM / (curv * pb.w_col)).clamp_(-fused::kNewtonMaxStep, fused::kNewtonMaxStep));
  S.copy_(at::rsqrt(curv));
  shift_to_B(pb, st, at::mm((pb.X * pb.w_col).t(), M));
}

void shift_to_B(const Problem& pb, State& st, const at::Tensor& XtWM) {
  c10::NoGradGuard no_grad;
  auto delta = at::mm(pb.XtWX_pinv, XtWM);
  st.B.detach().add_(delta);
  st.M.detach().sub_(at::mm(pb.X, delta));
}

Gradient analytic_gradient(const Problem& pb, const State& st) {
  auto S2 = st.S * st.S;
  auto Z = pb.O + at::mm(pb.X, st.B) + st.M;
  auto A = at::exp(Z + 0.5 * S2);
  auto R = pb.Y - A;
  Gradient g;
  g.B = at::mm(pb.X.t(), R * pb.w_col);
  g.M = (R - at::mm(st.M, st.Omega)) * pb.w_col;
  g.S = (-st.S * A + 1 / st.S - st.S * at::diagonal(st.Omega).unsqueeze(0)) * pb.w_col;
  return g;
}

}  // namespace pln
