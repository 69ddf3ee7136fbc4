// CUDA tests of the fused backend: its kernels against the CPU pass and the CPU Newton blocks, the
// captured graph against un-captured steps, Newton-Schulz against the exact sweep, lbfgs on the GPU
// against the CPU and the other backends, and fused against eager on the device. Each test skips,
// with a message, without a GPU or without the CUDA kernels in the build.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "api/pln.h"
#include "models/pca/lowrank_pass.h"
#include "lowrank_util.h"
#include "test_util.h"
#ifdef PLN_CUDA_KERNELS
#include "models/pln/backend.h"
#include "core/cuda_util.h"
#include "models/pln/curvature.h"
#include "models/pln/elbo.h"
#include "models/pln/fused.h"
#include "models/pln/problem.h"
#endif
#include "models/pca/model.h"  // PLN-PCA is plain ATen: its CUDA tests need a device, not the kernels
#include "models/pln/problem.h"

namespace {

// Column-major PLN-like counts: d covariates (the first an intercept), AR(1) latent noise.
Data simulate(int64_t n, int64_t p, int64_t d, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> N01(0, 1);
  std::uniform_real_distribution<double> U(0.5, 2);
  Data s{n, p, d, std::vector<double>(n * p), std::vector<double>(n * p),
        std::vector<double>(n * d), std::vector<double>(n)};
  for (int64_t i = 0; i < n; ++i) {
    s.X[i] = 1;
    for (int64_t q = 1; q < d; ++q) s.X[q * n + i] = 0.5 * N01(rng);
    s.w[i] = U(rng);
    const double lo = std::log(U(rng));
    double prev = N01(rng);
    for (int64_t j = 0; j < p; ++j) {
      prev = 0.6 * prev + 0.8 * N01(rng);
      double z = lo + 0.5 + 0.2 * (j % 4) + prev;
      for (int64_t q = 1; q < d; ++q) z += 0.3 * s.X[q * n + i];
      s.Y[j * n + i] = std::poisson_distribution<int>(std::exp(z))(rng);
      s.O[j * n + i] = lo;
    }
  }
  return s;
}

// Every test here runs on the GPU.
pln::FitOptions opts(const std::string& backend, const std::string& optimizer, int64_t steps,
                     const std::string& dtype = "float64") {
  return options(backend, optimizer, steps, "tutorial", "cuda", dtype);
}

// Sets an environment variable for one scope.
struct EnvVar {
  std::string name;
  EnvVar(const std::string& n, const std::string& v) : name(n) { setenv(n.c_str(), v.c_str(), 1); }
  ~EnvVar() { unsetenv(name.c_str()); }
};

bool no_cuda_kernels() {
#ifdef PLN_CUDA_KERNELS
  if (!at::hasCUDA()) {
    WARN("no CUDA device: CUDA tests skipped");
    return true;
  }
  return false;
#else
  WARN("built without the CUDA kernels: CUDA tests skipped");
  return true;
#endif
}

}  // namespace

TEST_CASE("CUDA: fused follows eager on the device (float64, Adam and Rprop, weights)", "[cuda]") {
  if (no_cuda_kernels()) return;
  const auto D = simulate(300, 9, 2, 21);
  for (const std::string opt : {"adam", "rprop"}) {
    for (bool weights : {false, true}) {
      INFO(opt << (weights ? " weighted" : ""));
      auto eager = pln::fit(D.input(weights), opts("eager", opt, 200), {});
      auto fused = pln::fit(D.input(weights), opts("fused", opt, 200), {});
      REQUIRE(fused.objective.size() == 200);
      CHECK(max_rel_diff(fused.objective, eager.objective) < 1e-6);
      CHECK(max_rel_diff(fused.M.values, eager.M.values) < 1e-5);
      CHECK(max_rel_diff(fused.B.values, eager.B.values) < 1e-5);
      CHECK(max_rel_diff(fused.Omega.values, eager.Omega.values) < 1e-5);
    }
  }
}

TEST_CASE("CUDA: graph replay gives the un-captured steps", "[cuda]") {
  if (no_cuda_kernels()) return;
  const auto D = simulate(500, 20, 1, 22);
  for (const std::string opt : {"adam"}) {
    INFO(opt);
    auto o = opts("fused", opt, 250);  // 2 graphs of 100 steps, then 50 single-step replays
    auto graph = pln::fit(D.input(true), o, {});
    pln::FitResult plain;
    {
      EnvVar off("PLN_CUDA_GRAPHS", "0");
      plain = pln::fit(D.input(true), o, {});
    }
    CHECK(max_rel_diff(graph.objective, plain.objective) < 1e-13);
    CHECK(max_rel_diff(graph.M.values, plain.M.values) < 1e-13);
    CHECK(max_rel_diff(graph.S.values, plain.S.values) < 1e-13);
    CHECK(max_rel_diff(graph.Omega.values, plain.Omega.values) < 1e-13);
  }
}

TEST_CASE("CUDA: Newton-Schulz Omega follows the sweep's, with and without its gate", "[cuda]") {
  if (no_cuda_kernels()) return;
  const auto D = simulate(800, 114, 1, 27);  // 8 x 8 tiles of 16, the last one partial
  for (const std::string dtype : {"float64", "float32"}) {
    for (const std::string opt : {"adam", "rprop"}) {
      INFO(dtype << " " << opt);
      auto o = opts("fused", opt, 300, dtype);
      auto ns = pln::fit(D.input(true), o, {});
      pln::FitResult sweep, pure, exact;
      {
        EnvVar c("PLN_CUDA_COV", "sweep");
        sweep = pln::fit(D.input(true), o, {});
      }
      {
        EnvVar t("PLN_CUDA_NS_TAU", "1e300");  // the refined inverse at every step
        pure = pln::fit(D.input(true), o, {});
      }
      {
        EnvVar t("PLN_CUDA_NS_TAU", "0");  // the gate recomputes Omega at every step
        exact = pln::fit(D.input(true), o, {});
      }
      const double tol = dtype == "float64" ? 1e-9 : 1e-4;
      CHECK(max_rel_diff(ns.objective, sweep.objective) < tol);
      CHECK(max_rel_diff(exact.objective, sweep.objective) < tol);
      // Ungated, the refinement alone still follows the sweep under Adam's small steps (Rprop's
      // first steps are too large for it: that is what the gate is for).
      if (opt == "adam") CHECK(max_rel_diff(pure.objective, sweep.objective) < (dtype == "float64" ? 1e-6 : 1e-4));
      CHECK(max_rel_diff(ns.Omega.values, sweep.Omega.values) < (dtype == "float64" ? 1e-8 : 1e-2));
      CHECK(max_rel_diff(ns.M.values, sweep.M.values) < (dtype == "float64" ? 1e-8 : 1e-2));
      CHECK(std::abs(ns.objective.back() - sweep.objective.back()) <
            (dtype == "float64" ? 1e-9 : 1e-5) * std::abs(sweep.objective.back()));
    }
  }
}

TEST_CASE("CUDA: large p (cuSOLVER path) and many covariates (scratch path)", "[cuda]") {
  if (no_cuda_kernels()) return;
  SECTION("p = 150") {
    const auto D = simulate(400, 150, 1, 24);
    auto eager = pln::fit(D.input(false), opts("eager", "adam", 60), {});
    auto fused = pln::fit(D.input(false), opts("fused", "adam", 60), {});
    CHECK(max_rel_diff(fused.objective, eager.objective) < 1e-6);
  }
  SECTION("d = 6") {
    const auto D = simulate(400, 12, 6, 25);
    for (const std::string opt : {"adam"}) {
      INFO(opt);
      auto eager = pln::fit(D.input(true), opts("eager", opt, 100), {});
      auto fused = pln::fit(D.input(true), opts("fused", opt, 100), {});
      CHECK(max_rel_diff(fused.objective, eager.objective) < 1e-6);
      CHECK(max_rel_diff(fused.B.values, eager.B.values) < 1e-5);
    }
  }
}

TEST_CASE("CUDA: float32 fused follows float64 eager", "[cuda]") {
  if (no_cuda_kernels()) return;
  const auto D = simulate(1000, 40, 1, 26);
  auto ref = pln::fit(D.input(false), opts("eager", "adam", 300), {});
  auto f32 = pln::fit(D.input(false), opts("fused", "adam", 300, "float32"), {});
  CHECK(max_rel_diff(f32.objective, ref.objective) < 1e-4);
}

// lbfgs from the tutorial's start, 15 iterations (it converges in ~28): short of convergence, so every run takes all.
TEST_CASE("CUDA: lbfgs, fused on the GPU follows fused on the CPU (float64, weights)", "[cuda]") {
  if (no_cuda_kernels()) return;
  const auto D = simulate(300, 9, 2, 28);
  for (bool weights : {false, true}) {
    INFO((weights ? "weighted" : "unweighted"));
    auto cpu = pln::fit(D.input(weights), options("fused", "lbfgs", 15), {});
    auto gpu = pln::fit(D.input(weights), opts("fused", "lbfgs", 15), {});
    REQUIRE(cpu.objective.size() == 16);
    REQUIRE(gpu.objective.size() == cpu.objective.size());
    CHECK(gpu.steps == cpu.steps);
    CHECK(max_rel_diff(gpu.objective, cpu.objective) < 1e-9);
    CHECK(max_rel_diff(gpu.M.values, cpu.M.values) < 1e-6);
  }
}

TEST_CASE("CUDA: lbfgs, eager and script on the GPU follow fused (float64, weights)", "[cuda]") {
  if (no_cuda_kernels()) return;
  const auto D = simulate(300, 9, 2, 28);
  for (bool weights : {false, true}) {
    auto fused = pln::fit(D.input(weights), opts("fused", "lbfgs", 15), {});
    for (const std::string be : {"eager", "script"}) {
      INFO(be << (weights ? " weighted" : ""));
      auto r = pln::fit(D.input(weights), opts(be, "lbfgs", 15), {});
      REQUIRE(r.objective.size() == fused.objective.size());
      CHECK(max_rel_diff(r.objective, fused.objective) < 1e-8);
    }
  }
}

TEST_CASE("CUDA: float32 lbfgs converges to the float64 log-likelihood", "[cuda]") {
  if (no_cuda_kernels()) return;
  const auto D = simulate(1000, 40, 1, 26);
  auto o = options("fused", "lbfgs", 5000, "lm", "cuda", "float64");
  o.tol = 1e-9;
  auto d64 = pln::fit(D.input(true), o, {});
  o.dtype = "float32";
  o.tol = 1e-6;
  auto d32 = pln::fit(D.input(true), o, {});
  double l64 = 0, l32 = 0;
  for (int64_t i = 0; i < D.n; ++i) {
    l64 += D.w[i] * d64.loglik_vec[i];
    l32 += D.w[i] * d32.loglik_vec[i];
  }
  INFO("float64: " << d64.status << " after " << d64.steps << " steps, loglik " << l64
                   << "; float32: " << d32.status << " after " << d32.steps << ", " << l32);
  CHECK(d64.status == "converged");
  CHECK(l32 == Approx(l64).epsilon(1e-5));
}

TEST_CASE("CUDA: float32 with counts near 1e8 follows float64, every backend", "[cuda]") {
  if (no_cuda_kernels()) return;
  auto D = simulate(200, 6, 1, 27);
  for (auto& o : D.O) o += std::log(1e7);
  for (size_t k = 0; k < D.Y.size(); ++k) D.Y[k] = std::round(D.Y[k] * 1e7 + 12345 * (k % 7));
  auto o = options("fused", "lbfgs", 5000, "lm", "cuda", "float64");
  o.tol = 1e-9;
  auto d64 = pln::fit(D.input(), o, {});
  double l64 = 0;
  for (double v : d64.loglik_vec) l64 += v;
  for (const std::string be : {"eager", "script", "fused"}) {
    o.backend = be;
    o.dtype = "float32";
    o.tol = 1e-6;
    auto d32 = pln::fit(D.input(), o, {});
    double l32 = 0;
    for (double v : d32.loglik_vec) l32 += v;
    INFO(be << ": float32 " << l32 << " (" << d32.status << "), float64 " << l64);
    CHECK(l32 < 0);
    CHECK(l32 == Approx(l64).epsilon(1e-5));
  }
}

#ifdef PLN_CUDA_KERNELS
TEST_CASE("CUDA: pass_cuda equals pass_cpu on random inputs", "[cuda]") {
  if (no_cuda_kernels()) return;
  using namespace pln::fused;
  const int64_t n = 333, p = 45, d = 2;
  at::manual_seed(7);
  auto o64 = at::TensorOptions().dtype(at::kDouble);
  PassTensors t;
  t.Y = at::floor(at::rand({n, p}, o64) * 20);
  t.O = at::randn({n, p}, o64) * 0.3;
  t.XB = at::randn({n, p}, o64) * 0.2;
  t.MO = at::randn({n, p}, o64) * 0.5;
  t.dOm = at::rand({p}, o64) + 0.5;
  t.w = at::rand({n}, o64) + 0.5;
  t.X = at::randn({n, d}, o64);
  t.M = at::randn({n, p}, o64) * 0.5;
  t.S = at::rand({n, p}, o64) + 0.3;
  t.m1 = at::randn({n, p}, o64) * 0.1;
  t.m2 = at::rand({n, p}, o64) * 0.1;
  t.s1 = at::randn({n, p}, o64) * 0.1;
  t.s2 = at::rand({n, p}, o64) * 0.1;
  StepConst<double> c{0.01 / (1 - std::pow(0.9, 3)), std::sqrt(1 - std::pow(0.999, 3)), 0.9, 0.999,
                      1e-8, 0.5, 1.2, 1e-6, 50};
  for (Opt opt : {Opt::adam, Opt::rprop}) {
    INFO(static_cast<int>(opt));
    PassTensors cpu = t, gpu = t;
    for (at::Tensor* x : {&cpu.M, &cpu.S, &cpu.m1, &cpu.m2, &cpu.s1, &cpu.s2}) *x = x->clone();
    if (opt == Opt::rprop) {
      cpu.m2 = at::rand({n, p}, o64) * 0.1 + 1e-3;
      cpu.s2 = cpu.m2.clone();
    }
    for (at::Tensor* x : {&gpu.Y, &gpu.O, &gpu.XB, &gpu.MO, &gpu.dOm, &gpu.w, &gpu.X,
                          &gpu.M, &gpu.S, &gpu.m1, &gpu.m2, &gpu.s1, &gpu.s2})
      *x = x->to(at::kCUDA);
    gpu.M = cpu.M.to(at::kCUDA);
    gpu.S = cpu.S.to(at::kCUDA);
    gpu.m2 = cpu.m2.to(at::kCUDA);
    gpu.s2 = cpu.s2.to(at::kCUDA);
    auto rc = pass_cpu(cpu, opt, c);
    auto rg = pass_cuda(gpu, opt, c);
    auto close = [](const at::Tensor& a, const at::Tensor& b) {
      auto bb = b.to(at::kCPU);
      return ((a - bb).abs().max() / (bb.abs().max() + 1)).item<double>();
    };
    CHECK(close(rc.elbo, rg.elbo) < 1e-12);
    CHECK(close(rc.gB, rg.gB) < 1e-12);
    CHECK(close(rc.s2sum, rg.s2sum) < 1e-12);
    CHECK(close(cpu.M, gpu.M) < 1e-14);
    CHECK(close(cpu.S, gpu.S) < 1e-14);
    CHECK(close(cpu.m2, gpu.m2) < 1e-14);
  }
}

// Through precondition() (curvature.h), on the same inputs on both devices: the Newton blocks are
// its only per-entry part; the B block is small dense algebra on either.
TEST_CASE("CUDA: the curvature's Newton blocks on the GPU equal the CPU loop", "[cuda]") {
  if (no_cuda_kernels()) return;
  const auto D = simulate(257, 37, 2, 29);  // partial column and row blocks
  const auto o64 = at::TensorOptions().dtype(at::kDouble);
  auto cuda = [](const at::Tensor& t) { return t.to(at::kCUDA); };
  for (bool weights : {false, true}) {
    INFO((weights ? "weighted" : "unweighted"));
    const auto cpu = pln::make_problem(D.input(weights), o64);
    const auto gpu = pln::make_problem(D.input(weights), o64.device(at::kCUDA));
    at::manual_seed(11);
    pln::Point x{at::randn({D.n, D.p}, o64) * 0.5 + 0.5, at::randn({D.n, D.p}, o64) * 0.3 - 1};
    const auto prof = pln::profile(cpu, x);
    const auto A = at::exp(cpu.O + x.M + 0.5 * prof.S2);
    const auto qM = at::randn({D.n, D.p}, o64), qP = at::randn({D.n, D.p}, o64);
    pln::Profile pg{cuda(prof.Mres), cuda(prof.S2), prof.cov};
    pg.cov.Sigma = cuda(prof.cov.Sigma);
    pg.cov.Omega = cuda(prof.cov.Omega);
    pg.cov.logdet = cuda(prof.cov.logdet);
    if (prof.cov.trace.defined()) pg.cov.trace = cuda(prof.cov.trace);
    at::Tensor rMc, rPc, rMg, rPg;
    pln::precondition(cpu, prof, A, qM, qP, rMc, rPc);
    pln::precondition(gpu, pg, cuda(A), cuda(qM), cuda(qP), rMg, rPg);
    REQUIRE(rMg.is_cuda());
    auto rel = [](const at::Tensor& g, const at::Tensor& c) {
      return ((g.to(at::kCPU) - c).abs().max() / c.abs().max()).item<double>();
    };
    CHECK(rel(rMg, rMc) < 1e-12);
    CHECK(rel(rPg, rPc) < 1e-12);
  }
}

TEST_CASE("CUDA: memory does not grow with the number of steps", "[cuda]") {
  if (no_cuda_kernels()) return;
  const auto D = simulate(4000, 50, 1, 27);
  auto o = opts("fused", "adam", 1000, "float32");
  const auto topt = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
  pln::Problem pb = pln::make_problem(D.input(false), topt);
  pln::State st = pln::initial_state(pb, D.input(false), o.init);
  auto be = pln::make_backend(pb, o);
  be->prepare(st);
  auto trace = at::empty({o.maxit}, topt.dtype(at::kDouble));
  be->run(st, trace, 0, 100);
  pln::cuda::synchronize(0);
  const auto m100 = pln::cuda::memory(0);
  be->run(st, trace, 100, 900);
  pln::cuda::synchronize(0);
  const auto m1000 = pln::cuda::memory(0);
  INFO(m100.allocated << " bytes in use after 100 steps, " << m1000.allocated << " after 1000");
  CHECK(m1000.allocated == m100.allocated);
  CHECK(std::isfinite(trace[999].item<double>()));
}

TEST_CASE("CUDA: out of memory is one clear error naming the size; the device stays usable",
          "[cuda]") {
  if (no_cuda_kernels()) return;
  const auto D = simulate(20000, 100, 1, 31);  // 2e6 counts, 16 MB an array in float64
  auto o = opts("fused", "adam", 20);
  const auto first = pln::fit(D.input(false), o, {});  // the context and cuBLAS handles exist now
  pln::cuda::synchronize(0);
  const auto before = pln::cuda::memory(0);
  std::string checked, failed;
  {
    // Hold all but ~100 MB of the device, then fit: refused by the check, and (check off) by the
    // allocator itself.
    const auto m = pln::cuda::memory(0);
    const int64_t hold = m.free + (m.reserved - m.allocated) - (int64_t{100} << 20);
    auto filler = at::empty({hold}, at::TensorOptions().dtype(at::kByte).device(at::kCUDA));
    try {
      pln::fit(D.input(false), o, {});
    } catch (const std::exception& e) {
      checked = e.what();
    }
    auto unchecked = o;
    unchecked.max_bytes = -1;
    try {
      pln::fit(D.input(false), unchecked, {});
    } catch (const std::exception& e) {
      failed = e.what();
    }
  }
  INFO(checked);
  INFO(failed);
  CHECK(checked.rfind("not enough memory on cuda: this fit needs about ", 0) == 0);
  CHECK(checked.find("20000 x 100 counts, float64, backend 'fused', optimizer 'adam'") !=
        std::string::npos);
  CHECK(checked.find(" is free") != std::string::npos);
  CHECK(failed.rfind("not enough memory on cuda: this fit needs about ", 0) == 0);
  CHECK(failed.find("LibTorch: Tried to allocate") != std::string::npos);
  CHECK(failed.find("\n") == std::string::npos);  // one line, no backtrace
  // The device is usable: the same fit again gives the same bits, and leaves no memory behind.
  const auto again = pln::fit(D.input(false), o, {});
  CHECK(again.objective == first.objective);
  pln::cuda::synchronize(0);
  CHECK(pln::cuda::memory(0).allocated == before.allocated);
}
#endif

TEST_CASE("CUDA: PLN-PCA's passes and gradient follow the CPU's (float64, weights)", "[cuda]") {
  if (!at::hasCUDA()) {  // plain ATen: no kernels needed, a device is
    WARN("no CUDA device: CUDA tests skipped");
    return;
  }
  std::mt19937 rng(5);
  std::normal_distribution<double> N(0, 1);
  const int64_t n = 50, p = 9, q = 2, d = 2;
  auto cpu = at::TensorOptions().dtype(at::kDouble);
  auto Y = at::poisson(at::full({n, p}, 2.0, cpu));
  pln::PcaInput in;
  std::vector<double> Yc(n * p), X(n * d), O(n), w(n), B(d * p), C(p * q), M(n * q), S(n * q);
  auto Yt = Y.t().contiguous();
  std::copy(Yt.data_ptr<double>(), Yt.data_ptr<double>() + n * p, Yc.begin());
  for (int64_t i = 0; i < n; ++i) {
    X[i] = 1;
    X[n + i] = N(rng);
    O[i] = 0.3 * N(rng);
    w[i] = 1 + 0.5 * std::fabs(N(rng));
  }
  for (auto* v : {&B, &C, &M}) for (auto& x : *v) x = 0.3 * N(rng);
  for (auto& x : S) x = 0.5 + 0.1 * std::fabs(N(rng));
  in.Y = {Yc.data(), n, p};
  in.O = {O.data(), n, 1};
  in.X = {X.data(), n, d};
  in.w = w.data();
  in.B0 = {B.data(), d, p};
  in.C0 = {C.data(), p, q};
  in.M0 = {M.data(), n, q};
  in.S0 = {S.data(), n, q};
  for (const char* dev : {"cpu", "cuda"}) {
    auto opt = at::TensorOptions().dtype(at::kDouble).device(pln::parse_device(dev));
    auto pb = pln::make_pca_problem(in, opt, false);
    pln::Vars x{pln::to_tensor(in.B0, opt), pln::to_tensor(in.C0, opt),
                pln::to_tensor(in.M0, opt), at::log(at::square(pln::to_tensor(in.S0, opt)))};
    auto rows = pln::pca_rows_pass(pb, x).to(at::kCPU);
    auto g = pln::pca_gradient_pass(pb, x);
    static at::Tensor rows0;
    static std::vector<at::Tensor> g0;
    if (std::string(dev) == "cpu") {
      rows0 = rows;
      g0.clear();
      for (auto& t : g) g0.push_back(t.to(at::kCPU));
    } else {
      CHECK(at::allclose(rows, rows0, 1e-10, 1e-10));
      for (size_t k = 0; k < g.size(); ++k) CHECK(at::allclose(g[k].to(at::kCPU), g0[k], 1e-9, 1e-9));
    }
  }
  pln::FitOptions o;
  o.backend = "fused";
  o.maxit = 20;
  o.tol = 0;
  auto rc = pln::pca_fit(in, {1, 2}, o, pln::Callbacks());
  o.device = "cuda";
  auto rg = pln::pca_fit(in, {1, 2}, o, pln::Callbacks());
  for (size_t k = 0; k < 2; ++k)
    CHECK(max_rel_diff(rg.fits[k].objective, rc.fits[k].objective) < 1e-8);
}
// ---- The low-rank pass's kernels (lowrank_pass_cuda.cu) against the chunked ATen path on the
// same device, and against the dense references: float32 and float64, both offset forms, weights,
// sizes that are no multiple of the tiles (128 x 64) or of r's padding (16), one column group and
// several, empty rows, a row of stored zeros, unsorted CSR columns.
#ifdef PLN_CUDA_KERNELS
namespace {

struct LowrankCase {
  int64_t n, p, r;
};

void check_lowrank_case(const LowrankCase& c, at::ScalarType dtype, unsigned seed) {
  using lowrank_test::rel_err;
  const auto cpu = lowrank_test::make_problem(c.n, c.p, c.r, 0.2, seed, dtype);
  const auto pb = lowrank_test::to_device(cpu, at::Device(at::kCUDA, 0));
  const double tol = dtype == at::kDouble ? 1e-12 : 2e-5;
  for (const bool matrix_offset : {false, true}) {
    for (const bool weighted : {false, true}) {
      INFO("n " << c.n << ", p " << c.p << ", r " << c.r << ", " << (dtype == at::kDouble ? "float64" : "float32")
                << ", matrix offset " << matrix_offset << ", weighted " << weighted);
      const at::Tensor off = matrix_offset ? pb.off_mat : pb.off_row;
      const at::Tensor w = weighted ? pb.w : at::Tensor();
      const auto ref = pln::lowrank::dense_exp_pass_generic(pb.U, pb.V, off, w);
      if (c.r <= pln::lowrank::kernel_max_rank(dtype)) {
        const auto got = pln::lowrank::dense_exp_pass_cuda(pb.U, pb.V, off, w);
        REQUIRE(got.AtU.sizes() == ref.AtU.sizes());
        CHECK(got.AtU.is_cuda());
        CHECK(rel_err(got.rowA, ref.rowA) < tol);
        CHECK(rel_err(got.AV, ref.AV) < tol);
        CHECK(rel_err(got.AtU, ref.AtU) < tol);
      }
      const auto sref = pln::lowrank::sparse_count_pass_generic(pb.Y, pb.U, pb.V, off, w);
      const auto sgot = pln::lowrank::sparse_count_pass_cuda(pb.Y, pb.U, pb.V, off, w);
      CHECK(rel_err(sgot.rowYE, sref.rowYE) < tol);
      CHECK(rel_err(sgot.YV, sref.YV) < tol);
      CHECK(rel_err(sgot.YtU, sref.YtU) < tol);
      // Against Y in full (the generic path is itself tested so on the CPU).
      if (c.n * c.p <= 4000000) {
        const auto dref = lowrank_test::sparse_reference(pb.Ydense, pb.U, pb.V, off, w);
        CHECK(rel_err(sgot.YtU, dref.YtU) < tol);
        CHECK(rel_err(sgot.rowYE, dref.rowYE) < tol);
      }
    }
  }
}

}  // namespace

TEST_CASE("CUDA: low-rank pass kernels follow the ATen path on the device", "[cuda][lowrank]") {
  if (no_cuda_kernels()) return;
  // (1, 1, 1): a single entry; 129 x 65: one past a tile each way; r 16/32/48/64: full padding;
  // n = 140001: enough row tiles for one column group (AV and rowA summed in one block).
  const std::vector<LowrankCase> cases{{1, 1, 1},    {129, 65, 5},   {300, 77, 41},
                                       {64, 64, 16}, {517, 130, 48}, {200, 70, 33},
                                       {250, 3, 64}, {140001, 37, 41}};
  unsigned seed = 1;
  for (const auto& c : cases) {
    check_lowrank_case(c, at::kFloat, seed);
    check_lowrank_case(c, at::kDouble, seed++);
  }
}

TEST_CASE("CUDA: low-rank pass dispatch (kernels by default, float64 dense on ATen, PLN_LOWRANK)",
          "[cuda][lowrank]") {
  if (no_cuda_kernels()) return;
  using lowrank_test::rel_err;
  const auto pb = lowrank_test::to_device(lowrank_test::make_problem(333, 99, 20, 0.1, 4),
                                          at::Device(at::kCUDA, 0));
  const auto ref = pln::lowrank::dense_exp_pass_generic(pb.U, pb.V, pb.off_row, pb.w);
  const auto k = pln::lowrank::dense_exp_pass_cuda(pb.U, pb.V, pb.off_row, pb.w);
  REQUIRE(rel_err(k.AtU, ref.AtU) > 0);  // the two paths round differently: they can be told apart
  // float64 dense: the ATen path (cuBLAS's DGEMM is the faster there), bit for bit.
  const auto d = pln::dense_exp_pass(pb.U, pb.V, pb.off_row, pb.w);
  CHECK(rel_err(d.AtU, ref.AtU) == 0);
  CHECK(rel_err(d.AV, ref.AV) == 0);
  {
    EnvVar env("PLN_LOWRANK", "kernel");
    const auto g = pln::dense_exp_pass(pb.U, pb.V, pb.off_row, pb.w);
    CHECK(rel_err(g.AtU, k.AtU) < 1e-14);  // the kernel (its atomics add in any order)
    CHECK(rel_err(g.AtU, ref.AtU) > 0);
  }
  // float32: the kernels by default; PLN_LOWRANK=generic takes the ATen path.
  const at::Tensor U32 = pb.U.to(at::kFloat), V32 = pb.V.to(at::kFloat);
  const at::Tensor o32 = pb.off_row.to(at::kFloat), w32 = pb.w.to(at::kFloat);
  const auto ref32 = pln::lowrank::dense_exp_pass_generic(U32, V32, o32, w32);
  const auto d32 = pln::dense_exp_pass(U32, V32, o32, w32);
  CHECK(rel_err(d32.AtU, ref32.AtU) > 0);
  CHECK(rel_err(d32.AtU, ref32.AtU) < 2e-5);
  {
    EnvVar env("PLN_LOWRANK", "generic");
    const auto g = pln::dense_exp_pass(U32, V32, o32, w32);
    CHECK(rel_err(g.AtU, ref32.AtU) == 0);
    CHECK(rel_err(g.AV, ref32.AV) == 0);
  }
  // r = 70: above every kernel's tiles, the public entry points take the ATen path.
  const auto big = lowrank_test::to_device(lowrank_test::make_problem(50, 30, 70, 0.2, 6),
                                           at::Device(at::kCUDA, 0));
  const auto bd = pln::dense_exp_pass(big.U, big.V, big.off_mat, big.w);
  const auto bref = lowrank_test::dense_reference(big.U, big.V, big.off_mat, big.w);
  CHECK(rel_err(bd.AtU, bref.AtU) < 1e-12);
  const auto bs = pln::sparse_count_pass(big.Y, big.U, big.V, big.off_mat, big.w);
  const auto bsref = lowrank_test::sparse_reference(big.Ydense, big.U, big.V, big.off_mat, big.w);
  CHECK(rel_err(bs.YV, bsref.YV) < 1e-12);
  CHECK_THROWS_AS(pln::lowrank::dense_exp_pass_cuda(big.U, big.V, big.off_mat, big.w),
                  std::invalid_argument);
}
#endif
