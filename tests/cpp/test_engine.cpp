// Engine tests: the objective against its analytic gradient and finite differences, the
// backends against each other, the closed-form covariance step, determinism, and CUDA.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "api.h"
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
  for (const std::string opt : {"adam", "rprop", "newton"}) {
    for (bool weights : {false, true}) {
      const auto in = D.input(weights);
      auto eager = pln::fit(in, options("eager", opt, 200), {});
      auto script = pln::fit(in, options("script", opt, 200), {});
      auto fused = pln::fit(in, options("fused", opt, 200), {});
      INFO(opt << (weights ? " weighted" : ""));
      REQUIRE(eager.objective.size() == 200);
      REQUIRE(script.objective.size() == 200);
      REQUIRE(fused.objective.size() == 200);
      CHECK(max_rel_diff(script.objective, eager.objective) < 1e-6);
      CHECK(max_rel_diff(fused.objective, eager.objective) < 1e-6);
      CHECK(max_rel_diff(fused.M.values, eager.M.values) < 1e-5);
      // The ELBO rises from the tutorial start.
      CHECK(eager.objective.back() > eager.objective.front());
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

TEST_CASE("newton from the lm start rises monotonically and stops on the tolerance") {
  const auto D = simulate(200, 5, 9);
  auto o = options("fused", "newton", 5000, "lm");
  o.tol = 1e-10;
  auto r = pln::fit(D.input(), o, {});
  for (size_t s = 1; s < r.objective.size(); ++s)
    CHECK(r.objective[s] >= r.objective[s - 1] - 1e-9 * std::fabs(r.objective[s]));
  CHECK(r.status == "converged");
  CHECK(r.steps < 5000);
  CHECK(r.objective.size() == static_cast<size_t>(r.steps));
  double ll = 0;
  for (double x : r.loglik_vec) ll += x;
  CHECK(ll >= r.objective.front());
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
