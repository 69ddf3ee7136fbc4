// Engine tests: the objective against its analytic gradient and finite differences, the
// backends against each other, the closed-form covariance step, determinism, and CUDA.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "api/pln.h"
#include "models/pln/backend.h"
#include "models/pln/curvature.h"
#include "models/pln/elbo.h"
#include "test_util.h"

namespace {

// A small PLN sample: intercept and one covariate, an AR(1) covariance, offsets around 1.
Data simulate(int64_t n, int64_t p, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> N01(0, 1);
  std::uniform_real_distribution<double> U(0.5, 2);
  Data D{n, p, 2, {}, {}, {}, {}};
  D.Y.resize(n * p);
  D.O.resize(n * p);
  D.X.resize(n * 2);
  D.w.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    D.X[i] = 1;
    D.X[n + i] = N01(rng);
    D.w[i] = U(rng);
    double prev = N01(rng);
    const double lo = std::log(U(rng));
    for (int64_t j = 0; j < p; ++j) {
      const double W = 0.6 * prev + 0.8 * N01(rng);
      prev = W;
      const double z = lo + 1.0 + 0.3 * (j % 3) + 0.5 * D.X[n + i] + W;
      std::poisson_distribution<int> P(std::exp(z));
      D.Y[j * n + i] = P(rng);
      D.O[j * n + i] = lo;
    }
  }
  return D;
}

std::vector<double> random_matrix(int64_t r, int64_t c, double sd, double mean, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> N(mean, sd);
  std::vector<double> v(r * c);
  for (auto& x : v) x = N(rng);
  return v;
}

// An SPD matrix: I + A A' / p.
std::vector<double> random_spd(int64_t p, unsigned seed) {
  auto A = random_matrix(p, p, 1, 0, seed);
  std::vector<double> O(p * p, 0);
  for (int64_t i = 0; i < p; ++i)
    for (int64_t j = 0; j < p; ++j) {
      double s = i == j ? 1 : 0;
      for (int64_t k = 0; k < p; ++k) s += A[k * p + i] * A[k * p + j] / p;
      O[j * p + i] = s;
    }
  return O;
}

}  // namespace

TEST_CASE("analytic gradient equals autograd, TorchScript autograd and finite differences") {
  const auto D = simulate(8, 5, 7);
  const auto in = D.input(true);
  const auto B = random_matrix(2, 5, 0.3, 0.2, 11);
  const auto M = random_matrix(8, 5, 0.5, 0.0, 12);
  auto S = random_matrix(8, 5, 0.1, 0.6, 13);
  const auto Om = random_spd(5, 14);
  pln::MatrixView Bv{B.data(), 2, 5}, Mv{M.data(), 8, 5}, Sv{S.data(), 8, 5}, Ov{Om.data(), 5, 5};

  const auto an = pln::objective(in, Bv, Mv, Sv, Ov, "analytic", "float64");
  const auto ag = pln::objective(in, Bv, Mv, Sv, Ov, "autograd", "float64");
  const auto sc = pln::objective(in, Bv, Mv, Sv, Ov, "script", "float64");
  CHECK(std::isfinite(an.objective));
  CHECK(an.objective == Approx(ag.objective).epsilon(1e-12));
  CHECK(sc.objective == Approx(ag.objective).epsilon(1e-12));
  CHECK(max_rel_diff(an.B.values, ag.B.values) < 1e-10);
  CHECK(max_rel_diff(an.M.values, ag.M.values) < 1e-10);
  CHECK(max_rel_diff(an.S.values, ag.S.values) < 1e-10);
  CHECK(max_rel_diff(sc.M.values, ag.M.values) < 1e-10);
  CHECK(max_rel_diff(sc.S.values, ag.S.values) < 1e-10);

  // Central differences in a few coordinates of each block.
  const double h = 1e-6;
  auto fd = [&](std::vector<double> Bx, std::vector<double> Mx, std::vector<double> Sx) {
    pln::MatrixView b{Bx.data(), 2, 5}, m{Mx.data(), 8, 5}, s{Sx.data(), 8, 5};
    return pln::objective(in, b, m, s, Ov, "analytic", "float64").objective;
  };
  for (int k : {0, 3, 7, 9}) {
    auto Bp = B, Bm = B;
    Bp[k] += h;
    Bm[k] -= h;
    CHECK((fd(Bp, M, S) - fd(Bm, M, S)) / (2 * h) == Approx(ag.B.values[k]).epsilon(1e-6));
  }
  for (int k : {0, 5, 17, 39}) {
    auto Mp = M, Mm = M, Sp = S, Sm = S;
    Mp[k] += h;
    Mm[k] -= h;
    Sp[k] += h;
    Sm[k] -= h;
    CHECK((fd(B, Mp, S) - fd(B, Mm, S)) / (2 * h) ==
          Approx(ag.M.values[k]).epsilon(1e-6).margin(1e-7));
    CHECK((fd(B, M, Sp) - fd(B, M, Sm)) / (2 * h) ==
          Approx(ag.S.values[k]).epsilon(1e-6).margin(1e-7));
  }
}

TEST_CASE("eager, script and fused give the same ELBO trace (float64)") {
  const auto D = simulate(40, 6, 3);
  for (const std::string opt : {"adam", "rprop", "lbfgs"}) {
    for (bool weights : {false, true}) {
      const auto in = D.input(weights);
      // lbfgs: 15 iterations, short of its convergence (~30 here, to float64's precision), so
      // that every backend runs all of them.
      const int64_t steps = opt == "lbfgs" ? 15 : 200;
      auto eager = pln::fit(in, options("eager", opt, steps), {});
      auto script = pln::fit(in, options("script", opt, steps), {});
      auto fused = pln::fit(in, options("fused", opt, steps), {});
      INFO(opt << (weights ? " weighted" : ""));
      const size_t len = opt == "lbfgs" ? steps + 1 : steps;  // lbfgs also records the start
      REQUIRE(eager.objective.size() == len);
      REQUIRE(script.objective.size() == len);
      REQUIRE(fused.objective.size() == len);
      CHECK(max_rel_diff(script.objective, eager.objective) < 1e-6);
      CHECK(max_rel_diff(fused.objective, eager.objective) < 1e-6);
      CHECK(max_rel_diff(fused.M.values, eager.M.values) < 1e-5);
      // The ELBO rises from the tutorial start.
      CHECK(eager.objective.back() > eager.objective.front());
    }
  }
}

namespace {
// A problem and a random point of the profiled ELBO, with every backend; "fixed" takes Omega = I
// plus a small band, "genpop" an AR(1) correlation C.
struct Profiled {
  Data D;
  std::vector<double> Om, C;
  pln::Problem pb;
  pln::Point x;
  static pln::FitInput structured(const Data& D, bool weights, const std::vector<double>& Om,
                                  const std::vector<double>& C) {
    auto in = D.input(weights);
    in.Omega0 = {Om.data(), D.p, D.p};
    in.C = {C.data(), D.p, D.p};
    return in;
  }
  // p x p, column-major: Omega_jk = 1.5, 0.3, 0 at |j - k| = 0, 1, more; C_jk = 0.5^|j - k|.
  static std::vector<double> banded(int64_t p, bool correlation) {
    std::vector<double> m(p * p);
    for (int64_t j = 0; j < p; ++j)
      for (int64_t k = 0; k < p; ++k) {
        const int64_t gap = j > k ? j - k : k - j;
        m[j * p + k] = correlation ? std::pow(0.5, static_cast<double>(gap))
                                   : (gap == 0 ? 1.5 : gap == 1 ? 0.3 : 0);
      }
    return m;
  }
  Profiled(int64_t n, int64_t p, unsigned seed, bool weights, const std::string& cov = "full")
      : D(simulate(n, p, seed)), Om(banded(p, false)), C(banded(p, true)),
        pb(pln::make_problem(structured(D, weights, Om, C), at::TensorOptions().dtype(at::kDouble),
                             cov)) {
    auto M = random_matrix(n, p, 0.5, 0.5, seed + 1), P = random_matrix(n, p, 0.3, -1, seed + 2);
    x.M = pln::to_tensor({M.data(), n, p}, pb.opt);
    x.P = pln::to_tensor({P.data(), n, p}, pb.opt);
  }
  double value(const pln::PlnBackend& be, const pln::Point& at) const {
    auto& b = const_cast<pln::PlnBackend&>(be);
    return b.value(at, pln::profile(pb, at)).item<double>();
  }
};
}  // namespace

TEST_CASE("profiled ELBO: every backend's value and gradient, and finite differences") {
  for (const std::string cov : {"full", "diagonal", "spherical", "fixed", "genpop"}) {
    for (bool weights : {false, true}) {
      Profiled P(12, 5, 21, weights, cov);
      const auto prof = pln::profile(P.pb, P.x);
      std::vector<at::Tensor> gM, gP, A;
      std::vector<double> J;
      for (const std::string be : {"eager", "script", "fused"}) {
        auto o = options(be, "lbfgs", 1);
        auto b = pln::make_backend(P.pb, o);
        J.push_back(b->value(P.x, prof).item<double>());
        auto g = b->gradient(P.x, prof);
        gM.push_back(g.M);
        gP.push_back(g.P);
        A.push_back(g.A);
      }
      INFO(cov << (weights ? " weighted" : " unweighted"));
      CHECK(std::isfinite(J[0]));
      for (int k : {1, 2}) {
        CHECK(J[k] == Approx(J[0]).epsilon(1e-12));
        CHECK(at::allclose(gM[k], gM[0], 1e-10, 1e-12));
        CHECK(at::allclose(gP[k], gP[0], 1e-10, 1e-12));
        CHECK(at::allclose(A[k], A[0], 1e-12, 0));
      }
      // The profiled ELBO of pln-model.md: J at the closed-form B and Omega, as PLNmodels reports
      // its loglik; and central differences, B and Omega profiled again at every shifted point.
      pln::State st;
      pln::to_state(P.pb, P.x, prof, st);
      CHECK(J[0] == Approx(pln::eager_objective(P.pb, st).item<double>()).epsilon(1e-12));
      auto eager = pln::make_backend(P.pb, options("eager", "lbfgs", 1));
      const double h = 1e-6;
      for (int64_t k : {0, 7, 23, 59}) {
        for (bool inP : {false, true}) {
          pln::Point up{P.x.M.clone(), P.x.P.clone()}, dn{P.x.M.clone(), P.x.P.clone()};
          (inP ? up.P : up.M).view(-1)[k] += h;
          (inP ? dn.P : dn.M).view(-1)[k] -= h;
          const double fd = (P.value(*eager, up) - P.value(*eager, dn)) / (2 * h);
          const double g = (inP ? gP[0] : gM[0]).view(-1)[k].item<double>();
          CHECK(fd == Approx(g).epsilon(1e-6).margin(1e-7));
        }
      }
    }
  }
}

TEST_CASE("the curvature is positive definite, also far from the optimum") {
  Profiled P(30, 6, 5, true);
  // Far points too: means far below and above the data, variances tiny (down to ~1e-35, where
  // 1 + (u - 1) rounds to 0) and huge.
  for (double shift : {0.0, -8.0, 6.0}) {
    for (double pshift : {0.0, -12.0, -80.0, 4.0}) {
      pln::Point x{P.x.M + shift, P.x.P + pshift};
      auto prof = pln::profile(P.pb, x);
      auto A = at::exp(P.pb.O + x.M + 0.5 * prof.S2);
      for (unsigned seed : {1u, 2u, 3u}) {
        auto qm = random_matrix(30, 6, 1, 0, seed), qp = random_matrix(30, 6, 1, 0, seed + 9);
        auto qM = pln::to_tensor({qm.data(), 30, 6}, P.pb.opt);
        auto qP = pln::to_tensor({qp.data(), 30, 6}, P.pb.opt);
        at::Tensor rM, rP;
        pln::precondition(P.pb, prof, A, qM, qP, rM, rP);
        const double quad = ((qM * rM).sum() + (qP * rP).sum()).item<double>();
        INFO("shift " << shift << " pshift " << pshift);
        CHECK(std::isfinite(quad));
        CHECK(quad > 0);
        CHECK(quad < 1e8);  // no curvature near 0: a step of sensible length
      }
    }
  }
}

TEST_CASE("Sigma is the closed form of the final M and S, Omega its inverse") {
  const auto D = simulate(30, 4, 5);
  auto r = pln::fit(D.input(true), options("fused", "rprop", 50, "lm"), {});
  const int64_t n = 30, p = 4;
  double wsum = 0;
  for (double x : D.w) wsum += x;
  for (int64_t a = 0; a < p; ++a)
    for (int64_t b = 0; b < p; ++b) {
      double s = 0;
      for (int64_t i = 0; i < n; ++i) {
        s += D.w[i] * r.M.values[a * n + i] * r.M.values[b * n + i];
        if (a == b) s += D.w[i] * r.S.values[a * n + i] * r.S.values[a * n + i];
      }
      CHECK(r.Sigma.values[b * p + a] == Approx(s / wsum).epsilon(1e-10));
      double id = 0;
      for (int64_t k = 0; k < p; ++k) id += r.Sigma.values[k * p + a] * r.Omega.values[b * p + k];
      CHECK(id == Approx(a == b ? 1.0 : 0.0).margin(1e-9));
    }
  // At the closed-form Sigma the trace term cancels n p / 2: sum w_i J_i is the last ELBO's
  // successor, and it is finite.
  double ll = 0;
  for (int64_t i = 0; i < n; ++i) ll += D.w[i] * r.loglik_vec[i];
  CHECK(std::isfinite(ll));
}

TEST_CASE("lbfgs rises at every step and stops at a stationary point") {
  const auto D = simulate(200, 5, 9);
  for (const std::string be : {"eager", "fused"}) {
    auto o = options(be, "lbfgs", 5000, "lm");
    o.tol = 1e-9;
    auto r = pln::fit(D.input(true), o, {});
    INFO(be);
    for (size_t s = 1; s < r.objective.size(); ++s) CHECK(r.objective[s] > r.objective[s - 1]);
    CHECK(r.status == "converged");
    CHECK(r.steps < 5000);
    CHECK(r.objective.size() == static_cast<size_t>(r.steps) + 1);
    CHECK(r.last_change < 1e-9);
    CHECK(r.predicted_change < 1e-9);
    // The reported log-likelihood is the last ELBO of the trace.
    double ll = 0;
    for (int64_t i = 0; i < D.n; ++i) ll += D.w[i] * r.loglik_vec[i];
    CHECK(ll == Approx(r.objective.back()).epsilon(1e-10));
    // From the tutorial's start too, far from the optimum: the same optimum.
    auto t = pln::fit(D.input(true), options(be, "lbfgs", 5000, "tutorial"), {});
    CHECK(t.objective.back() == Approx(r.objective.back()).epsilon(1e-7));
  }
}

TEST_CASE("lbfgs stops at maxit and says how far it was") {
  const auto D = simulate(100, 6, 4);
  auto o = options("fused", "lbfgs", 5, "lm");
  o.tol = 1e-9;
  auto r = pln::fit(D.input(), o, {});
  CHECK(r.status == "maxit");
  CHECK(r.steps == 5);
  CHECK(r.last_change > 1e-9);
  CHECK(r.predicted_change > 0);
}

namespace {
// The VE step: B and Omega given (B_fixed, covariance "fixed"), M and S alone optimised.
pln::FitInput ve_input(const Data& D, bool weights, const std::vector<double>& B,
                       const std::vector<double>& Omega) {
  auto in = D.input(weights);
  in.B_fixed = {B.data(), D.d, D.p};
  in.Omega0 = {Omega.data(), D.p, D.p};
  return in;
}
pln::FitOptions ve_options(const std::string& backend, double tol) {
  auto o = options(backend, "lbfgs", 5000, "lm");
  o.covariance = "fixed";
  o.tol = tol;
  return o;
}
}  // namespace

TEST_CASE("VE step: every backend's value and gradient, and finite differences") {
  const int64_t n = 12, p = 5;
  for (bool weights : {false, true}) {
    const auto D = simulate(n, p, 31);
    const auto B = random_matrix(D.d, p, 0.5, 0.8, 32), Om = random_spd(p, 33);
    auto pb = pln::make_problem(ve_input(D, weights, B, Om),
                                at::TensorOptions().dtype(at::kDouble), "fixed");
    REQUIRE(pb.fixed_B());
    auto Mv = random_matrix(n, p, 0.5, 0.5, 34), Pv = random_matrix(n, p, 0.3, -1, 35);
    pln::Point x{pln::to_tensor({Mv.data(), n, p}, pb.opt), pln::to_tensor({Pv.data(), n, p}, pb.opt)};
    const auto prof = pln::profile(pb, x);
    // The residual is M - X B_fixed, not the least-squares residual.
    const auto Bt = pln::to_tensor({B.data(), D.d, p}, pb.opt);
    CHECK(at::allclose(prof.Mres, x.M - at::mm(pb.X, Bt), 1e-14, 1e-14));
    std::vector<at::Tensor> gM, gP;
    std::vector<double> J;
    for (const std::string be : {"eager", "script", "fused"}) {
      auto b = pln::make_backend(pb, options(be, "lbfgs", 1));
      J.push_back(b->value(x, prof).item<double>());
      auto g = b->gradient(x, prof);
      gM.push_back(g.M);
      gP.push_back(g.P);
    }
    INFO((weights ? "weighted" : "unweighted"));
    REQUIRE(std::isfinite(J[0]));
    for (int k : {1, 2}) {
      CHECK(J[k] == Approx(J[0]).epsilon(1e-12));
      CHECK(at::allclose(gM[k], gM[0], 1e-10, 1e-12));
      CHECK(at::allclose(gP[k], gP[0], 1e-10, 1e-12));
    }
    // J is the ELBO at (B_fixed, M - X B_fixed, S) with the given Omega.
    pln::State st;
    pln::to_state(pb, x, prof, st);
    CHECK(at::equal(st.B, Bt));
    st.Omega = pln::to_tensor({Om.data(), p, p}, pb.opt);
    st.logdet = at::logdet(st.Omega);
    CHECK(J[0] == Approx(pln::eager_objective(pb, st).item<double>()).epsilon(1e-12));
    // Central differences of J (B and Omega stay fixed), against every backend's gradient.
    auto eager = pln::make_backend(pb, options("eager", "lbfgs", 1));
    auto value = [&](const pln::Point& y) { return eager->value(y, pln::profile(pb, y)).item<double>(); };
    const double h = 1e-6;
    for (int64_t k : {0, 7, 23, 59}) {
      for (bool inP : {false, true}) {
        pln::Point up{x.M.clone(), x.P.clone()}, dn{x.M.clone(), x.P.clone()};
        (inP ? up.P : up.M).view(-1)[k] += h;
        (inP ? dn.P : dn.M).view(-1)[k] -= h;
        const double fd = (value(up) - value(dn)) / (2 * h);
        for (int b = 0; b < 3; ++b)
          CHECK(fd == Approx((inP ? gP[b] : gM[b]).view(-1)[k].item<double>()).epsilon(1e-6).margin(1e-7));
      }
    }
  }
}

TEST_CASE("VE step from a full fit's B and Omega reproduces its M and S, every backend") {
  const auto D = simulate(80, 5, 41);
  auto o = options("fused", "lbfgs", 5000, "lm");
  o.tol = 1e-12;
  const auto full = pln::fit(D.input(true), o, {});
  REQUIRE(full.status == "converged");
  const double J = full.objective.back();
  for (const std::string be : {"eager", "script", "fused"}) {
    INFO(be);
    // From the lm start: the same optimum (J is strictly concave in (M, S^2) at fixed B, Omega).
    const auto ve = pln::fit(ve_input(D, true, full.B.values, full.Omega.values),
                             ve_options(be, 1e-12), {});
    CHECK(ve.status == "converged");
    for (size_t s = 1; s < ve.objective.size(); ++s) CHECK(ve.objective[s] > ve.objective[s - 1]);
    CHECK(ve.B.values == full.B.values);
    CHECK(ve.Omega.values == full.Omega.values);
    CHECK(ve.objective.back() >= J - 1e-9 * std::fabs(J));
    CHECK(max_rel_diff(ve.M.values, full.M.values) < 1e-4);
    CHECK(max_rel_diff(ve.S.values, full.S.values) < 1e-4);
    // From the fit's own M and S: the start is the fit's ELBO, and the trace does not fall.
    auto in = ve_input(D, true, full.B.values, full.Omega.values);
    in.M0 = {full.M.values.data(), D.n, D.p};
    in.S0 = {full.S.values.data(), D.n, D.p};
    const auto warm = pln::fit(in, ve_options(be, 1e-12), {});
    CHECK(warm.objective.front() == Approx(J).epsilon(1e-12));
    CHECK(warm.objective.back() >= J);
    CHECK(max_rel_diff(warm.M.values, full.M.values) < 1e-5);
  }
}

TEST_CASE("VE step: bad combinations are refused with a message") {
  const auto D = simulate(20, 4, 51);
  const auto B = random_matrix(D.d, D.p, 0.5, 0, 52), Om = random_spd(D.p, 53);
  auto o = ve_options("eager", 1e-8);
  o.optimizer = "adam";
  CHECK_THROWS_WITH(pln::fit(ve_input(D, false, B, Om), o, {}), Catch::Contains("needs optimizer 'lbfgs'"));
  auto in = ve_input(D, false, B, Om);
  in.B0 = {B.data(), D.d, D.p};
  CHECK_THROWS_WITH(pln::fit(in, ve_options("fused", 1e-8), {}), Catch::Contains("cannot both"));
  in = ve_input(D, false, B, Om);
  in.B_fixed.ncol = D.p - 1;
  CHECK_THROWS_WITH(pln::fit(in, ve_options("fused", 1e-8), {}), Catch::Contains("B_fixed is"));
}

TEST_CASE("covariates on any scale give the fit of their rescaled version") {
  const auto D = simulate(150, 5, 12);
  auto big = D;
  for (int64_t i = 0; i < D.n; ++i) big.X[D.n + i] = 1e7 * D.X[D.n + i] + 3e9;  // a date in seconds
  auto o = options("fused", "lbfgs", 5000, "lm");
  o.tol = 1e-10;
  auto r = pln::fit(D.input(), o, {});
  auto b = pln::fit(big.input(), o, {});
  double l1 = 0, l2 = 0;
  for (double v : r.loglik_vec) l1 += v;
  for (double v : b.loglik_vec) l2 += v;
  CHECK(l2 == Approx(l1).epsilon(1e-8));
  // The slope is rescaled and the intercept absorbs the shift.
  for (int64_t j = 0; j < D.p; ++j)
    CHECK(b.B.values[j * 2 + 1] * 1e7 == Approx(r.B.values[j * 2 + 1]).epsilon(1e-5));
}

TEST_CASE("float32 with counts near 1e8 follows float64") {
  auto D = simulate(60, 4, 13);
  for (auto& o : D.O) o += std::log(1e7);
  for (size_t k = 0; k < D.Y.size(); ++k) D.Y[k] = std::round(D.Y[k] * 1e7 + 12345 * (k % 7));
  auto o = options("fused", "lbfgs", 5000, "lm");
  o.tol = 1e-9;
  auto d64 = pln::fit(D.input(), o, {});
  for (const std::string be : {"eager", "fused"}) {
    o.backend = be;
    o.dtype = "float32";
    o.tol = 1e-6;
    auto d32 = pln::fit(D.input(), o, {});
    double l32 = 0, l64 = 0;
    for (double v : d32.loglik_vec) l32 += v;
    for (double v : d64.loglik_vec) l64 += v;
    INFO(be << ": float32 " << l32 << ", float64 " << l64);
    CHECK(l32 < 0);
    CHECK(l32 == Approx(l64).epsilon(1e-5));
  }
}

TEST_CASE("fused on the CPU is bit-identical whatever the number of threads") {
  const auto D = simulate(700, 7, 2);
  const int before = at::get_num_threads();
  auto o = options("fused", "adam", 100);
  o.num_threads = 1;
  auto one = pln::fit(D.input(), o, {});
  o.num_threads = 2;
  auto two = pln::fit(D.input(), o, {});
  at::set_num_threads(before);
  CHECK(one.objective == two.objective);
  CHECK(one.M.values == two.M.values);
}

TEST_CASE("float32 follows float64") {
  const auto D = simulate(50, 5, 4);
  auto o = options("fused", "adam", 100);
  auto d64 = pln::fit(D.input(), o, {});
  o.dtype = "float32";
  auto d32 = pln::fit(D.input(), o, {});
  CHECK(max_rel_diff(d32.objective, d64.objective) < 1e-4);
}

TEST_CASE("bad options are refused with a message") {
  const auto D = simulate(10, 3, 1);
  auto o = options("nope", "adam", 10);
  CHECK_THROWS_WITH(pln::fit(D.input(), o, {}), Catch::Contains("unknown backend"));
  o = options("eager", "sgd", 10);
  CHECK_THROWS_WITH(pln::fit(D.input(), o, {}), Catch::Contains("unknown optimizer"));
  o = options("eager", "adam", 10);
  o.dtype = "float16";
  CHECK_THROWS_WITH(pln::fit(D.input(), o, {}), Catch::Contains("unknown dtype"));
  o.dtype = "float64";
  o.device = "tpu";
  CHECK_THROWS_WITH(pln::fit(D.input(), o, {}), Catch::Contains("unknown device"));
  o = options("eager", "adam", 10);
  o.lr = 1e6;  // diverges
  CHECK_THROWS_WITH(pln::fit(D.input(), o, {}), Catch::Contains("non-finite"));
}

TEST_CASE("an interrupt stops the loop") {
  const auto D = simulate(40, 5, 8);
  pln::Callbacks cb;
  int calls = 0;
  cb.interrupted = [&] { return ++calls >= 1; };
  auto o = options("eager", "adam", 1000000);
  CHECK_THROWS_AS(pln::fit(D.input(), o, cb), pln::Interrupted);
  CHECK(calls == 1);
}

TEST_CASE("CUDA: every backend matches the CPU", "[cuda]") {
  if (!at::hasCUDA()) {
    WARN("no CUDA device: CUDA tests skipped");
    return;
  }
  const auto D = simulate(300, 9, 6);
  for (const std::string be : {"eager", "script", "fused"}) {
    auto o = options(be, "adam", 200);
    auto cpu = pln::fit(D.input(true), o, {});
    o.device = "cuda";
    auto gpu = pln::fit(D.input(true), o, {});
    INFO(be);
    CHECK(max_rel_diff(gpu.objective, cpu.objective) < 1e-8);
    o.dtype = "float32";
    auto g32 = pln::fit(D.input(true), o, {});
    CHECK(max_rel_diff(g32.objective, cpu.objective) < 1e-4);
  }
}

TEST_CASE("CUDA: the VE step matches the CPU, every backend", "[cuda]") {
  if (!at::hasCUDA()) {
    WARN("no CUDA device: CUDA tests skipped");
    return;
  }
  const auto D = simulate(300, 9, 7);
  const auto B = random_matrix(D.d, D.p, 0.3, 1, 8), Om = random_spd(D.p, 9);
  for (const std::string be : {"eager", "script", "fused"}) {
    auto o = ve_options(be, 1e-10);
    auto cpu = pln::fit(ve_input(D, true, B, Om), o, {});
    o.device = "cuda";
    auto gpu = pln::fit(ve_input(D, true, B, Om), o, {});
    INFO(be);
    CHECK(gpu.status == "converged");
    CHECK(gpu.objective.back() == Approx(cpu.objective.back()).epsilon(1e-9));
    // Both stop within tol of the optimum; rounding may move the stop within that precision.
    CHECK(max_rel_diff(gpu.M.values, cpu.M.values) < 1e-3);
  }
}
