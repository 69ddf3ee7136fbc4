#include "models/pln/elbo.h"

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

at::Tensor poisson_terms(const at::Tensor& Y, const at::Tensor& Z, const at::Tensor& S2) {
  auto U = Z + 0.5 * S2 - at::log(at::clamp_min(Y, 1));
  auto E = at::expm1(U);
  auto zero = (Y == 0).to(Z.scalar_type());
  return -Y * (E - U) - 0.5 * Y * S2 - zero * (E + 1);
}

at::Tensor elbo_rows_latent(const Problem& pb, const at::Tensor& Z, const at::Tensor& M,
                            const at::Tensor& S2, const at::Tensor& logS2,
                            const at::Tensor& Omega, const at::Tensor& logdet) {
  auto poisson = poisson_terms(pb.Y, Z, S2);
  auto MO = times_omega(Omega, M);
  auto terms = poisson + 0.5 * logS2 - 0.5 * MO * M - 0.5 * S2 * omega_diagonal(Omega).unsqueeze(0);
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

void set_covariance(State& st, const Covariance& c) {
  st.Sigma = c.Sigma;
  st.Omega = c.Omega;
  st.logdet = c.logdet;
  st.sigma2 = c.sigma2;
  st.rho = c.rho;
}

void update_covariance(const Problem& pb, State& st) {
  auto S = st.S.detach();
  set_covariance(st, covariance_of(pb, st.M.detach(), S * S));
}

Profile profile(const Problem& pb, const Point& x) {
  c10::NoGradGuard no_grad;
  Profile f;
  f.Mres = residual(pb, x.M.detach());
  f.S2 = at::exp(x.P.detach());
  f.cov = covariance_of(pb, f.Mres, f.S2);
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
  set_covariance(st, prof.cov);
}

Gradient analytic_gradient(const Problem& pb, const State& st) {
  auto S2 = st.S * st.S;
  auto Z = pb.O + at::mm(pb.X, st.B) + st.M;
  auto A = at::exp(Z + 0.5 * S2);
  auto R = pb.Y - A;
  Gradient g;
  g.B = at::mm(pb.X.t(), R * pb.w_col);
  g.M = (R - times_omega(st.Omega, st.M)) * pb.w_col;
  g.S = (-st.S * A + 1 / st.S - st.S * omega_diagonal(st.Omega).unsqueeze(0)) * pb.w_col;
  return g;
}

}  // namespace pln
