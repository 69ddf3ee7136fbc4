// The covariance structures of the latent layer (PLN_param(covariance = )), PLNmodels' five: how
// Sigma and Omega are fitted in closed form from the variational statistics, and what the
// objective needs of Omega. Omega is held as a p x p matrix, or for the diagonal and spherical
// structures as the p-vector of its diagonal: they need no p x p algebra at all.
#pragma once

#include <ATen/ATen.h>

#include <limits>
#include <string>

namespace pln {

struct Problem;

enum class Structure { full, diagonal, spherical, fixed, genpop };
Structure parse_structure(const std::string& name);

// What a structure needs besides the data: "fixed" its Omega, "genpop" the eigendecomposition of
// its correlation matrix C = V diag(lambda) V'.
struct CovarianceModel {
  Structure kind = Structure::full;
  at::Tensor Omega0, logdet0;  // fixed
  at::Tensor V, lambda;        // genpop
  bool diagonal() const { return kind == Structure::diagonal || kind == Structure::spherical; }
};

// A fitted covariance. With G = M'WM + diag(sum_i w_i S2_i), the statistics of the variational
// means M (residuals) and variances S2:
// - full: Sigma = G / wsum;  diagonal: its diagonal;  spherical: sigma2 I, sigma2 = tr(G) / (p wsum);
// - fixed: Omega given (Sigma reported as G / wsum, as PLNmodels does);
// - genpop: Sigma = sigma2 (rho C + (1 - rho) I), rho in (0, 1) maximising the ELBO with sigma2 in
//   closed form (a one-dimensional search on the profiled derivative).
// logdet = log det Omega (NaN where Sigma is not positive definite); trace = tr(Omega G), which is
// wsum p at the closed form of every structure but "fixed".
struct Covariance {
  at::Tensor Sigma, Omega, logdet, trace;
  double sigma2 = std::numeric_limits<double>::quiet_NaN();
  double rho = std::numeric_limits<double>::quiet_NaN();
};

// M'WM, or its diagonal for the diagonal structures; and the covariance from it and the column
// sums of w S2.
at::Tensor covariance_stats(const Problem& pb, const at::Tensor& M);
Covariance fit_covariance(const Problem& pb, const at::Tensor& stats, const at::Tensor& s2sum);
// The same from the residuals M and the variances S2.
Covariance covariance_of(const Problem& pb, const at::Tensor& M, const at::Tensor& S2);

// M Omega, diag(Omega), and a p x p matrix of an Omega or a Sigma held as a vector.
at::Tensor times_omega(const at::Tensor& Omega, const at::Tensor& M);
at::Tensor omega_diagonal(const at::Tensor& Omega);
at::Tensor dense(const at::Tensor& A);

}  // namespace pln
