// PLN-PCA engine tests: the objective of every backend against the others and finite differences,
// dense and CSR counts, per-sample and per-entry offsets, the optimiser's monotone trace, ranks.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "models/pca/model.h"
#include "api/pca.h"
#include "models/pca/balance.h"
#include "models/pln/problem.h"
#include "test_util.h"

namespace {

// Rank-2 PLN-PCA data with an intercept and a covariate, offsets per sample.
struct PcaData {
  int64_t n, p, d = 2, q;
  std::vector<double> Y, O, X, w, B, C, M, S;
  std::vector<int64_t> rowptr, col;
  std::vector<double> val;
  pln::PcaInput input(bool weights, bool sparse, bool row_offsets) const {
    pln::PcaInput in;
    if (sparse) {
      in.rowptr = rowptr.data();
      in.col = col.data();
      in.val = val.data();
      in.nnz = static_cast<int64_t>(val.size());
      in.n = n;
      in.p = p;
    } else {
      in.Y = {Y.data(), n, p};
    }
    if (row_offsets)
      in.O = {O.data(), n, 1};  // the first column: one value per sample
    else
      in.O = {O.data(), n, p};
    in.X = {X.data(), n, d};
    if (weights) in.w = w.data();
    in.B0 = {B.data(), d, p};
    in.C0 = {C.data(), p, q};
    in.M0 = {M.data(), n, q};
    in.S0 = {S.data(), n, q};
    return in;
  }
};

PcaData simulate_pca(int64_t n, int64_t p, int64_t q, unsigned seed = 3) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> N01(0, 1);
  std::uniform_real_distribution<double> U(0.5, 2);
  PcaData D;
  D.n = n;
  D.p = p;
  D.q = q;
  D.Y.assign(n * p, 0);
  D.O.assign(n * p, 0);
  D.X.assign(n * 2, 0);
  D.w.assign(n, 1);
  std::vector<double> Ct(p * 2);
  for (auto& c : Ct) c = 0.5 * N01(rng);
  for (int64_t i = 0; i < n; ++i) {
    D.X[i] = 1;
    D.X[n + i] = N01(rng);
    D.w[i] = U(rng);
    const double lo = std::log(U(rng)), w1 = N01(rng), w2 = N01(rng);
    for (int64_t j = 0; j < p; ++j) {
      const double z = lo + 0.5 + 0.3 * D.X[n + i] + Ct[j] * w1 + Ct[p + j] * w2;
      std::poisson_distribution<int> P(std::exp(z));
      D.Y[j * n + i] = P(rng);
      D.O[j * n + i] = lo;
    }
  }
  D.rowptr.push_back(0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < p; ++j)
      if (D.Y[j * n + i] != 0) {
        D.col.push_back(j);
        D.val.push_back(D.Y[j * n + i]);
      }
    D.rowptr.push_back(static_cast<int64_t>(D.col.size()));
  }
  auto fill = [&](std::vector<double>& v, int64_t size, double sd, double mean) {
    std::normal_distribution<double> N(mean, sd);
    v.resize(size);
    for (auto& x : v) x = N(rng);
  };
  fill(D.B, 2 * p, 0.2, 0.3);
  fill(D.C, p * q, 0.3, 0);
  fill(D.M, n * q, 0.5, 0);
  fill(D.S, n * q, 0.1, 0.5);
  return D;
}

std::vector<double> all_of(const pln::PcaObjective& r) {
  std::vector<double> v;
  for (const auto* m : {&r.B, &r.C, &r.M, &r.S}) v.insert(v.end(), m->values.begin(), m->values.end());
  return v;
}

}  // namespace

TEST_CASE("PCA: value and gradient of every backend agree, dense or CSR, offsets of both shapes") {
  const auto D = simulate_pca(30, 8, 2);
  for (bool weights : {false, true})
    for (bool row_offsets : {false, true}) {
      const auto ref = pln::pca_objective(D.input(weights, false, row_offsets), "autograd", "float64");
      for (const char* method : {"script", "analytic"})
        for (bool sparse : {false, true}) {
          const auto r = pln::pca_objective(D.input(weights, sparse, row_offsets), method, "float64");
          CAPTURE(method, sparse, weights, row_offsets);
          CHECK(std::fabs(r.objective - ref.objective) <= 1e-10 * std::fabs(ref.objective));
          CHECK(max_rel_diff(all_of(r), all_of(ref)) < 1e-10);
        }
    }
}

TEST_CASE("PCA: the analytic gradient matches finite differences in B, C, M and S") {
  auto D = simulate_pca(12, 6, 2);
  const auto g = pln::pca_objective(D.input(true, true, false), "analytic", "float64");
  const double h = 1e-6;
  auto check = [&](std::vector<double>& v, const pln::Matrix& grad, const char* name) {
    for (size_t k = 0; k < v.size(); k += 3) {
      const double v0 = v[k];
      v[k] = v0 + h;
      const double jp = pln::pca_objective(D.input(true, true, false), "analytic", "float64").objective;
      v[k] = v0 - h;
      const double jm = pln::pca_objective(D.input(true, true, false), "analytic", "float64").objective;
      v[k] = v0;
      const double fd = (jp - jm) / (2 * h);
      CAPTURE(name, k, fd, grad.values[k]);
      CHECK(std::fabs(fd - grad.values[k]) <= 1e-5 * std::max(1.0, std::fabs(fd)));
    }
  };
  check(D.B, g.B, "B");
  check(D.C, g.C, "C");
  check(D.M, g.M, "M");
  check(D.S, g.S, "S");
}

TEST_CASE("PCA: every backend fits the same ranks to rounding, each trace rising") {
  const auto D = simulate_pca(40, 10, 3);
  pln::FitOptions opt;
  opt.maxit = 30;
  opt.tol = 0;
  std::vector<pln::PcaResult> res;
  for (const char* b : {"eager", "script", "fused"}) {
    opt.backend = b;
    res.push_back(pln::pca_fit(D.input(true, false, true), {1, 2, 3}, opt, pln::Callbacks()));
  }
  for (const auto& r : res) {
    REQUIRE(r.fits.size() == 3);
    for (const auto& f : r.fits) {
      REQUIRE(f.objective.size() >= 2);
      for (size_t t = 1; t < f.objective.size(); ++t) CHECK(f.objective[t] > f.objective[t - 1]);
      CHECK(f.C.ncol == f.rank);
      CHECK(f.M.ncol == f.rank);
    }
  }
  for (size_t b = 1; b < res.size(); ++b)
    for (size_t k = 0; k < 3; ++k) {
      CAPTURE(b, k);
      CHECK(max_rel_diff(res[b].fits[k].objective, res[0].fits[k].objective) < 1e-8);
    }
}

TEST_CASE("PCA: converged fits are stationary and rank 2 beats rank 1 on rank-2 data") {
  const auto D = simulate_pca(60, 12, 2);
  pln::FitOptions opt;
  opt.backend = "fused";
  opt.maxit = 2000;
  opt.tol = 1e-9;
  auto r = pln::pca_fit(D.input(false, true, true), {1, 2}, opt, pln::Callbacks());
  REQUIRE(r.fits.size() == 2);
  CHECK(r.fits[0].status == "converged");
  CHECK(r.fits[1].status == "converged");
  double ll1 = 0, ll2 = 0;
  for (double v : r.fits[0].loglik_vec) ll1 += v;
  for (double v : r.fits[1].loglik_vec) ll2 += v;
  CHECK(ll2 > ll1);
  CHECK(std::fabs(ll2 - r.fits[1].objective.back()) < 1e-8 * std::fabs(ll2));
}

TEST_CASE("PCA: bad ranks and a fit too large for max_bytes are refused with a message") {
  const auto D = simulate_pca(20, 6, 2);
  pln::FitOptions opt;
  opt.backend = "fused";
  CHECK_THROWS_WITH(pln::pca_fit(D.input(false, false, true), {2, 1}, opt, pln::Callbacks()),
                    Catch::Contains("increasing"));
  opt.max_bytes = 1000;
  CHECK_THROWS_WITH(pln::pca_fit(D.input(false, false, true), {1, 2}, opt, pln::Callbacks()),
                    Catch::Contains("not enough memory") && Catch::Contains("needs about"));
}

TEST_CASE("PCA: the curvature in log S^2 stays finite and positive where S^2 underflows in float32") {
  // exp(P) is exactly 0 in float32 below P ~ -103.3: the secant curvature must not use log(S2).
  const auto D = simulate_pca(20, 8, 2);
  const auto opt = at::TensorOptions().dtype(at::kFloat);
  auto pb = pln::make_pca_problem(D.input(false, true, true), opt, false);
  auto f64 = at::TensorOptions().dtype(at::kDouble);
  pln::Vars x(4);
  x[pln::kB] = at::from_blob(const_cast<double*>(D.B.data()), {2, D.p}, f64).clone().to(at::kFloat);
  x[pln::kC] = at::from_blob(const_cast<double*>(D.C.data()), {2, D.p}, f64).t().contiguous().to(at::kFloat);
  x[pln::kM] = at::zeros({D.n, 2}, opt);
  x[pln::kP] = at::full({D.n, 2}, -104.0, opt);
  REQUIRE(at::exp(x[pln::kP]).max().item<float>() == 0.0f);
  auto h = pln::pca_curvature(pb, x);
  CHECK(at::isfinite(h.hP).all().item<bool>());
  CHECK(h.hP.min().item<float>() > 0.0f);
}

// A column-major engine matrix as a tensor.
static at::Tensor tensor_of(const pln::Matrix& m) {
  return at::from_blob(const_cast<double*>(m.values.data()), {m.ncol, m.nrow}, at::kDouble).t().clone();
}

TEST_CASE("PCA start: the randomized SVD of CSR counts equals the exact one when it spans p") {
  // p = 8 <= qmax + oversample: the subspace is the whole row space, the start exact to rounding.
  const auto D = simulate_pca(40, 8, 2);
  for (bool weights : {false, true}) {
    for (bool rows : {true, false}) {
      pln::FitOptions opt;
      const auto ex = pln::pca_start(D.input(weights, false, rows), 3, "exact", opt);
      const auto rd = pln::pca_start(D.input(weights, true, rows), 3, "randomized", opt);
      const auto B1 = tensor_of(ex.B), B2 = tensor_of(rd.B);
      CHECK(at::allclose(B1, B2, 1e-10, 1e-10));
      // M C' (signs of the singular vectors are arbitrary)
      const auto P1 = tensor_of(ex.M).mm(tensor_of(ex.C).t());
      const auto P2 = tensor_of(rd.M).mm(tensor_of(rd.C).t());
      CHECK(at::allclose(P1, P2, 1e-8, 1e-8));
    }
  }
  CHECK_THROWS_WITH(pln::pca_start(D.input(false, true, true), 3, "exact", pln::FitOptions()),
                    Catch::Contains("dense counts"));
}

TEST_CASE("PCA R^2 terms: dense and CSR counts agree, l_null <= l(Z) at the null model, <= l_sat") {
  const auto D = simulate_pca(50, 7, 2);
  pln::FitOptions opt;
  const pln::PcaFactors f{{D.B.data(), D.d, D.p}, {D.C.data(), D.p, D.q}, {D.M.data(), D.n, D.q}};
  const auto a = pln::pca_poisson_terms(D.input(true, false, false), {f}, opt);
  const auto b = pln::pca_poisson_terms(D.input(true, true, false), {f}, opt);
  CHECK(a.lmin == Approx(b.lmin).epsilon(1e-12));
  CHECK(a.lmax == Approx(b.lmax).epsilon(1e-12));
  CHECK(a.loglik[0] == Approx(b.loglik[0]).epsilon(1e-12));
  CHECK(a.lmin < a.lmax);
  // the null model's coefficients give back lmin as a fit's loglik with C = 0
  std::vector<double> zeroC(D.p * D.q, 0.0);
  const pln::PcaFactors g{{a.Bnull.values.data(), D.d, D.p}, {zeroC.data(), D.p, D.q},
                          {D.M.data(), D.n, D.q}};
  const auto c = pln::pca_poisson_terms(D.input(true, false, false), {g}, opt);
  CHECK(c.loglik[0] == Approx(a.lmin).epsilon(1e-12));
  for (double it : a.iterations) CHECK((it >= 1 && it <= 10));
}

namespace {

at::Tensor view_tensor(const std::vector<double>& v, int64_t nrow, int64_t ncol) {
  return pln::to_tensor(pln::MatrixView{v.data(), nrow, ncol}, at::TensorOptions().dtype(at::kDouble));
}
at::Tensor matrix_tensor(const pln::Matrix& m) { return view_tensor(m.values, m.nrow, m.ncol); }

// J and its likelihood term (J without the prior's -1/2 sum w_i [M^2 + S2 - log S2 - 1]).
double pca_J(const pln::PcaProblem& pb, const pln::Vars& x) {
  return at::sum(pb.w * pln::pca_rows_pass(pb, x)).item<double>();
}
double pca_likelihood(const pln::PcaProblem& pb, const pln::Vars& x) {
  auto kl = 0.5 * (x[pln::kM] * x[pln::kM] + at::exp(x[pln::kP]) - x[pln::kP] - 1).sum(1);
  return at::sum(pb.w * (pln::pca_rows_pass(pb, x) + kl)).item<double>();
}

}  // namespace

TEST_CASE("PCA balance: T keeps the likelihood term, raises J, is idempotent; J(T(x))'s gradient") {
  const auto D = simulate_pca(50, 9, 2);
  const auto pb = pln::make_pca_problem(D.input(true, true, true),
                                        at::TensorOptions().dtype(at::kDouble), false);
  pln::Vars x{view_tensor(D.B, 2, D.p), view_tensor(D.C, D.p, 2),
              view_tensor(D.M, D.n, 2) + 0.7,  // scores off centre, as a fit can leave them
              2 * at::log(view_tensor(D.S, D.n, 2))};
  const auto b = pln::pca_balance(pb, x);
  const auto t = pln::pca_balanced(pb, x, b);
  CHECK(std::fabs(pca_likelihood(pb, t) - pca_likelihood(pb, x)) < 1e-10 * std::fabs(pca_likelihood(pb, x)));
  CHECK(pca_J(pb, t) > pca_J(pb, x) + 1);
  // The balanced point is its own balance: G = 0, d = 1.
  const auto b2 = pln::pca_balance(pb, t);
  CHECK(b2.G.abs().max().item<double>() < 1e-10);
  CHECK((b2.d - 1).abs().max().item<double>() < 1e-10);
  // J(T(x)) is the maximum over (G, d): no other shift or scale does better.
  for (double s : {0.9, 1.1}) {
    pln::PcaBalance other{b.G + 0.05, b.d * s};
    CHECK(pca_J(pb, pln::pca_balanced(pb, x, other)) < pca_J(pb, t));
  }
  // The pulled-back gradient is the derivative of x -> J(T(x)) (central differences).
  const auto g = pln::pca_pull_gradient(pln::pca_gradient_pass(pb, t), b);
  auto profiled = [&](const pln::Vars& y) { return pca_J(pb, pln::pca_balanced(pb, y, pln::pca_balance(pb, y))); };
  at::manual_seed(5);
  for (int v = 0; v < 4; ++v) {
    CAPTURE(v);
    pln::Vars h;
    for (const auto& xi : x) h.push_back(at::zeros_like(xi));
    h[v] = at::randn_like(x[v]);
    const double e = 1e-6;
    pln::Vars xp, xm;
    for (size_t k = 0; k < x.size(); ++k) {
      xp.push_back(x[k] + e * h[k]);
      xm.push_back(x[k] - e * h[k]);
    }
    const double fd = (profiled(xp) - profiled(xm)) / (2 * e);
    const double an = at::sum(g[v] * h[v]).item<double>();
    CHECK(std::fabs(fd - an) < 1e-5 * (std::fabs(an) + 1));
  }
}

TEST_CASE("PCA trust radius: one iteration moves no entry of B, C or M by more than 0.3") {
  // A start far from the optimum (C and M shrunk tenfold): the first direction is long.
  auto D = simulate_pca(80, 10, 2, 11);
  for (auto& c : D.C) c *= 0.1;
  for (auto& m : D.M) m *= 0.1;
  pln::FitOptions opt;
  opt.backend = "fused";
  opt.maxit = 1;
  opt.tol = 0;
  auto in = D.input(false, true, true);
  in.start = "svd";
  const auto r = pln::pca_fit(in, {2}, opt, pln::Callbacks());
  REQUIRE(r.fits.size() == 1);
  // X B + M C' is the same at the optimiser's point and at its balanced one (what the fit
  // returns), so its change bounds the step: |dE_ij| <= 0.3 (|x_i|_1 + |C_j|_1 + |M_i|_1) + 0.09 q.
  const auto X = view_tensor(D.X, D.n, 2), B0 = view_tensor(D.B, 2, D.p);
  const auto C0 = view_tensor(D.C, D.p, 2), M0 = view_tensor(D.M, D.n, 2);
  const auto E0 = at::mm(X, B0) + at::mm(M0, C0.t());
  const auto E1 = at::mm(X, matrix_tensor(r.fits[0].B)) +
                  at::mm(matrix_tensor(r.fits[0].M), matrix_tensor(r.fits[0].C).t());
  const auto bound = 0.3 * (X.abs().sum(1, true) + C0.abs().sum(1).unsqueeze(0) +
                            M0.abs().sum(1, true)) + 0.09 * 2;
  CHECK(((E1 - E0).abs() - bound).max().item<double>() <= 1e-9);
  CHECK((E1 - E0).abs().max().item<double>() > 0);
  CHECK(r.fits[0].objective.back() > r.fits[0].objective.front());
}
