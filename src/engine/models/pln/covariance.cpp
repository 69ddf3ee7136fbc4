#include "models/pln/covariance.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "models/pln/problem.h"

namespace pln {

Structure parse_structure(const std::string& name) {
  if (name == "full") return Structure::full;
  if (name == "diagonal") return Structure::diagonal;
  if (name == "spherical") return Structure::spherical;
  if (name == "fixed") return Structure::fixed;
  if (name == "genpop") return Structure::genpop;
  throw std::invalid_argument("unknown covariance '" + name +
                              "' (use 'full', 'diagonal', 'spherical', 'fixed' or 'genpop')");
}

at::Tensor times_omega(const at::Tensor& Omega, const at::Tensor& M) {
  return Omega.dim() == 1 ? M * Omega.unsqueeze(0) : at::mm(M, Omega);
}

at::Tensor omega_diagonal(const at::Tensor& Omega) {
  return Omega.dim() == 1 ? Omega : at::diagonal(Omega);
}

at::Tensor dense(const at::Tensor& A) { return A.dim() == 1 ? at::diag(A) : A; }

at::Tensor covariance_stats(const Problem& pb, const at::Tensor& M) {
  if (pb.cov.diagonal()) return pb.unit_weights ? (M * M).sum(0) : (M * M * pb.w_col).sum(0);
  return pb.unit_weights ? at::mm(M.t(), M) : at::mm(M.t(), M * pb.w_col);
}

namespace {

at::Tensor nan_like(const at::Tensor& t) {
  return at::full({}, std::numeric_limits<double>::quiet_NaN(), t.options());
}

// Sigma = G / wsum in full: Omega and log det through a Cholesky factor with no host-side info
// check (no device sync); a Sigma that is not positive definite (a line search's trial point far
// off) gets a NaN log det, hence a non-finite ELBO.
void full_from(const Problem& pb, const at::Tensor& G, Covariance& c) {
  c.Sigma = G / pb.wsum;
  auto chol = at::linalg_cholesky_ex(c.Sigma);
  const auto& L = std::get<0>(chol);
  // cholesky_solve against I: half the time of cholesky_inverse on a CPU at p ~ 100.
  c.Omega = at::cholesky_solve(at::eye(pb.p, L.options()), L);
  c.logdet = at::where(std::get<1>(chol).ne(0), nan_like(L), -2 * at::log(at::diagonal(L)).sum());
}

// genpop: with R = diag(V' G V) and u = rho lambda + 1 - rho, sigma2 = sum(R / u) / (p wsum) and
// the ELBO's derivative in rho, at that sigma2, is
//   -wsum/2 sum((lambda - 1) / u) + 1 / (2 sigma2) sum(R (lambda - 1) / u^2);
// it decreases from a root in (0, 1), found by bisection (on the host: p numbers), else rho sits
// at the bound the derivative points to.
void genpop_from(const Problem& pb, const at::Tensor& G, Covariance& c) {
  const auto& V = pb.cov.V;
  auto R = (V * at::mm(G, V)).sum(0).to(at::kCPU, at::kDouble).contiguous();
  auto lam = pb.cov.lambda.to(at::kCPU, at::kDouble).contiguous();
  const double* r = R.data_ptr<double>();
  const double* l = lam.data_ptr<double>();
  const int64_t p = pb.p;
  const double wsum = pb.wsum;
  auto u_of = [&](double rho, int64_t k) { return std::max(rho * l[k] + 1 - rho, 1e-12); };
  auto sigma2_of = [&](double rho) {
    double s = 0;
    for (int64_t k = 0; k < p; ++k) s += r[k] / u_of(rho, k);
    return s / (static_cast<double>(p) * wsum);
  };
  auto slope = [&](double rho) {
    const double s2 = sigma2_of(rho);
    double a = 0, b = 0;
    for (int64_t k = 0; k < p; ++k) {
      const double u = u_of(rho, k);
      a += (l[k] - 1) / u;
      b += r[k] * (l[k] - 1) / (u * u);
    }
    return -0.5 * wsum * a + 0.5 * b / s2;
  };
  constexpr double eps = 1e-8;
  double lo = eps, hi = 1 - eps, rho;
  if (!(std::isfinite(slope(lo)) && std::isfinite(slope(hi)))) {
    rho = std::numeric_limits<double>::quiet_NaN();
  } else if (slope(lo) <= 0) {
    rho = lo;
  } else if (slope(hi) >= 0) {
    rho = hi;
  } else {
    for (int it = 0; it < 60; ++it) {
      const double mid = 0.5 * (lo + hi);
      (slope(mid) > 0 ? lo : hi) = mid;
    }
    rho = 0.5 * (lo + hi);
  }
  c.rho = rho;
  c.sigma2 = sigma2_of(rho);
  auto u = at::clamp_min(rho * pb.cov.lambda + (1 - rho), 1e-12);
  c.Sigma = at::mm(V * (c.sigma2 * u).unsqueeze(0), V.t());
  c.Omega = at::mm(V * (1 / (c.sigma2 * u)).unsqueeze(0), V.t());
  c.logdet = -(static_cast<double>(p) * std::log(c.sigma2) + at::log(u).sum());
  if (!std::isfinite(c.sigma2) || !(c.sigma2 > 0)) c.logdet = nan_like(c.logdet);
}

}  // namespace

Covariance fit_covariance(const Problem& pb, const at::Tensor& stats, const at::Tensor& s2sum) {
  Covariance c;
  const bool vec = stats.dim() == 1;
  const auto G = vec ? stats + s2sum : stats + at::diag(s2sum);
  switch (pb.cov.kind) {
    case Structure::full:
      full_from(pb, G, c);
      break;
    case Structure::diagonal: {
      c.Sigma = G / pb.wsum;
      c.Omega = 1 / c.Sigma;
      auto ok = c.Sigma.gt(0).all();
      c.logdet = at::where(ok, -at::log(c.Sigma).sum(), nan_like(c.Sigma));
      break;
    }
    case Structure::spherical: {
      auto s2 = G.sum() / (static_cast<double>(pb.p) * pb.wsum);
      c.Sigma = s2.expand({pb.p}).contiguous();
      c.Omega = 1 / c.Sigma;
      c.logdet = -static_cast<double>(pb.p) * at::log(s2);
      break;
    }
    case Structure::fixed:
      c.Sigma = G / pb.wsum;
      c.Omega = pb.cov.Omega0;
      c.logdet = pb.cov.logdet0;
      break;
    case Structure::genpop:
      genpop_from(pb, G, c);
      break;
  }
  c.trace = (c.Omega * G).sum();
  return c;
}

Covariance covariance_of(const Problem& pb, const at::Tensor& M, const at::Tensor& S2) {
  auto s2sum = pb.unit_weights ? S2.sum(0) : (S2 * pb.w_col).sum(0);
  return fit_covariance(pb, covariance_stats(pb, M), s2sum);
}

}  // namespace pln
