// The objective of pln-model.md, its closed-form blocks (B and Omega) and the analytic gradient.
#pragma once

#include <ATen/ATen.h>

#include "models/pln/covariance.h"
#include "models/pln/problem.h"

namespace pln {

// Per-observation J_i (unweighted) from the latent mean Z = O + X B + M, the residual M, the
// variances S2 (and their log, logS2) and a fixed Omega (p x p, or its diagonal as a p-vector:
// covariance.h) with its log det; differentiable in its
// tensor arguments. The Poisson part is written around y log y - y - log(y!) (pb.lconst_row; see
// fused_math.h, poisson_term()): with u = Z + S2/2 - log y, y Z - A - log(y!) =
// y log y - y - log(y!) - y (e^u - 1 - u) - y S2/2 for y > 0, and -A - log(0!) for y = 0. The ELBO is sum_i w_i J_i and equals PLNmodels' loglik_vec
// when Omega is the closed form.
at::Tensor elbo_rows_latent(const Problem& pb, const at::Tensor& Z, const at::Tensor& M,
                            const at::Tensor& S2, const at::Tensor& logS2,
                            const at::Tensor& Omega, const at::Tensor& logdet);
// Its Poisson part entry by entry, y Z - A - log(y!) less y log y - y - log(y!), as written above
// (Z and S2 may carry leading batch dimensions over Y's n x p).
at::Tensor poisson_terms(const at::Tensor& Y, const at::Tensor& Z, const at::Tensor& S2);
// The same at (B, M, S): Z = O + X B + M, S2 = S^2.
at::Tensor elbo_rows(const Problem& pb, const at::Tensor& B, const at::Tensor& M,
                     const at::Tensor& S, const at::Tensor& Omega, const at::Tensor& logdet);
at::Tensor elbo(const Problem& pb, const at::Tensor& B, const at::Tensor& M,
                const at::Tensor& S, const at::Tensor& Omega, const at::Tensor& logdet);

// Sigma, Omega and log det Omega of the state, in closed form from its M and S (covariance.h).
void update_covariance(const Problem& pb, State& st);
void set_covariance(State& st, const Covariance& c);

// ---- The profiled ELBO, the objective of the default optimiser (lbfgs.h).
// Its variables: M = X B + M_res, the whole variational mean of Z - O (B is the weighted least
// squares of M on X, M_res the residual), and P = log S^2. B and Omega are in closed form at every
// point, so the ELBO is a function of (M, P) alone, and its gradient there is the partial gradient
// at the closed-form B and Omega (both are stationary points).
struct Point {
  at::Tensor M, P;
};
// The closed-form blocks at a point, and the quantities every evaluation shares.
struct Profile {
  at::Tensor Mres;  // M - X B (n x p)
  at::Tensor S2;    // exp(P)
  Covariance cov;   // Sigma, Omega, log det Omega (NaN: Sigma not positive definite), tr(Omega G)
};
Profile profile(const Problem& pb, const Point& x);

// The state (B, M, S) of a point, and the point of a state.
Point to_point(const Problem& pb, const State& st);
void to_state(const Problem& pb, const Point& x, const Profile& prof, State& st);

struct Gradient {
  at::Tensor B, M, S;
};
Gradient analytic_gradient(const Problem& pb, const State& st);

// y log y - y - log(y!) in float64, with log(y!) by Ramanujan's formula and y = 0 -> log(1!) as
// PLNmodels writes it: log(y!) ~ y log y - y + log(8y^3 + 4y^2 + y + 1/30) / 6 + log(pi) / 2.
at::Tensor log_likelihood_constant(const at::Tensor& Y);

}  // namespace pln
