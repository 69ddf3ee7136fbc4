#include "elbo.h"

#include <cmath>
#include <limits>

namespace pln {

at::Tensor log_likelihood_constant(const at::Tensor& Y) {
  // In float64: the two parts cancel to a few units.
  auto y = Y.to(at::kDouble);
  auto y1 = at::clamp_min(y, 1);
  auto ylogy_y = at::where(y > 0, y * at::log(y1) - y, at::zeros_like(y));
  auto logfact = y1 * at::log(y1) - y1 + at::log(8 * y1 * y1 * y1 + 4 * y1 * y1 + y1 + 1.0 / 30) / 6 +
                 0.5 * std::log(M_PI);
  return ylogy_y - logfact;
}

at::Tensor elbo_rows_latent(const Problem& pb, const at::Tensor& Z, const at::Tensor& M,
                            const at::Tensor& S2, const at::Tensor& logS2,
                            const at::Tensor& Omega, const at::Tensor& logdet) {
  auto U = Z + 0.5 * S2 - at::log(at::clamp_min(pb.Y, 1));
  auto E = at::expm1(U);
  auto zero = (pb.Y == 0).to(Z.scalar_type());
  auto poisson = -pb.Y * (E - U) - 0.5 * pb.Y * S2 - zero * (E + 1);
  auto MO = at::mm(M, Omega);
  auto terms = poisson + 0.5 * logS2 - 0.5 * MO * M - 0.5 * S2 * at::diagonal(Omega).unsqueeze(0);
  return terms.sum(1) + pb.lconst_row + 0.5 * logdet + 0.5 * static_cast<double>(pb.p);
}

at::Tensor elbo_rows(const Problem& pb, const at::Tensor& B, const at::Tensor& M,
                     const at::Tensor& S, const at::Tensor& Omega, const at::Tensor& logdet) {
  auto S2 = S * S;
  return elbo_rows_latent(pb, pb.O + at::mm(pb.X, B) + M, M, S2, at::log(S2), Omega, logdet);
}

at::Tensor elbo(const Problem& pb, const at::Tensor& B, const at::Tensor& M, const at::Tensor& S,
                const at::Tensor& Omega, const at::Tensor& logdet) {
  return (pb.w * elbo_rows(pb, B, M, S, Omega, logdet)).sum();
}

void covariance_from_stats(const Problem& pb, const at::Tensor& MtWM, const at::Tensor& s2sum,
                           State& st) {
  st.Sigma = (MtWM + at::diag(s2sum)) / pb.wsum;
  // Cholesky without the host-side info check (no device sync); a Sigma that is not positive
  // definite (a line search's trial point far off) gets a NaN log det, hence a non-finite ELBO.
  auto chol = at::linalg_cholesky_ex(st.Sigma);
  const auto& L = std::get<0>(chol);
  // cholesky_solve against I: half the time of cholesky_inverse on a CPU at p ~ 100.
  st.Omega = at::cholesky_solve(at::eye(pb.p, L.options()), L);
  st.logdet = at::where(std::get<1>(chol).ne(0),
                        at::full({}, std::numeric_limits<double>::quiet_NaN(), L.options()),
                        -2 * at::log(at::diagonal(L)).sum());
}

namespace {
// M' W M and the column sums of w S2.
at::Tensor gram(const Problem& pb, const at::Tensor& M) {
  return pb.unit_weights ? at::mm(M.t(), M) : at::mm(M.t(), M * pb.w_col);
}
at::Tensor colsum(const Problem& pb, const at::Tensor& S2) {
  return pb.unit_weights ? S2.sum(0) : (S2 * pb.w_col).sum(0);
}
}  // namespace

void update_covariance(const Problem& pb, State& st) {
  auto M = st.M.detach();
  auto S = st.S.detach();
  covariance_from_stats(pb, gram(pb, M), colsum(pb, S * S), st);
}

Profile profile(const Problem& pb, const Point& x) {
  c10::NoGradGuard no_grad;
  Profile f;
  f.Mres = residual(pb, x.M.detach());
  f.S2 = at::exp(x.P.detach());
  State cov;
  covariance_from_stats(pb, gram(pb, f.Mres), colsum(pb, f.S2), cov);
  f.Sigma = cov.Sigma;
  f.Omega = cov.Omega;
  f.logdet = cov.logdet;
  return f;
}

Point to_point(const Problem& pb, const State& st) {
  c10::NoGradGuard no_grad;
  auto S = st.S.detach();
  return {at::mm(pb.X, st.B.detach()) + st.M.detach(), at::log(S * S)};
}

void to_state(const Problem& pb, const Point& x, const Profile& prof, State& st) {
  c10::NoGradGuard no_grad;
  st.B = least_squares(pb, x.M.detach());
  st.M = prof.Mres;
  st.S = at::exp(0.5 * x.P.detach());
  st.Sigma = prof.Sigma;
  st.Omega = prof.Omega;
  st.logdet = prof.logdet;
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
