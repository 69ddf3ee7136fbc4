// Benchmark driver of the engine, with no R: protocols B1 and B2 of the benchmarks for every
// backend on every device present, in one run (ratios from the same run); the converged default
// fits C1 (oaks x100) and C2 (oaks): lbfgs from the lm start to convergence, every backend on CUDA
// and fused on the CPU, in float64 and float32; and the scale run (synthetic PLN, n = 1e6,
// p = 1000, float32, fused on CUDA). Built by tests/cpp/CMakeLists.txt as pln_bench;
// inst/bench/run-gpu.sh runs it on the GPU machine.
//
//   pln_bench [--data data-raw] [--out inst/bench/results] [--steps 5000] [--cpu-steps 20]
//             [--reps 2] [--no-b1] [--no-b2] [--no-conv] [--scale N,P,STEPS] [--date YYYY-MM-DD]
//
// Writes <out>/<date>-<gpu>.csv (one row per run) and <out>/<date>-<gpu>-traces.csv (every 10th
// ELBO of each B1 run on the GPU), and prints a table.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "api/pln.h"
#include "models/pln/backend.h"
#include "models/pln/problem.h"
#ifdef PLN_CUDA_KERNELS
#include "core/cuda_util.h"
#endif
#include "bench_util.h"

namespace {

using bench::Clock;
using bench::since;

using bench::Table;
using bench::read_tsv;

struct Data {
  int64_t n, p, d;
  std::vector<double> Y, O, X, B0;
  pln::FitInput input(bool with_B0 = false) const {
    pln::FitInput in;
    in.Y = {Y.data(), n, p};
    in.O = {O.data(), n, p};
    in.X = {X.data(), n, d};
    if (with_B0) in.B0 = {B0.data(), d, p};
    return in;
  }
};

// oaks, rows repeated `times` times (B1: 100), O = log(offsets), X = 1.
Data oaks(const std::string& dir, int times) {
  auto Y = read_tsv(dir + "/counts.tsv");
  auto Of = read_tsv(dir + "/offsets.tsv");
  if (Y.n != Of.n || Y.p != Of.p) throw std::runtime_error("counts and offsets differ in shape");
  Data D{Y.n * times, Y.p, 1, {}, {}, {}, {}};
  D.Y.resize(D.n * D.p);
  D.O.resize(D.n * D.p);
  for (int64_t j = 0; j < D.p; ++j)
    for (int r = 0; r < times; ++r)
      for (int64_t i = 0; i < Y.n; ++i) {
        D.Y[j * D.n + r * Y.n + i] = Y.v[j * Y.n + i];
        D.O[j * D.n + r * Y.n + i] = std::log(Of.v[j * Y.n + i]);
      }
  D.X.assign(D.n, 1.0);
  D.B0.assign(D.p, -8.0);
  return D;
}

struct Row {
  std::string bench, backend, variant, device, dtype, optimizer, status;
  int64_t n = 0, p = 0, steps = 0;
  double warmup = NAN, setup = NAN, seconds = NAN, final_elbo = NAN, loglik = NAN;
  double final_rel = NAN, max_rel = NAN, speedup = NAN, peak_gb = NAN;
  int threads = 0;
  std::vector<double> trace;
};

using bench::slug;
using bench::today;

// Protocol B1 (benchmarks.md): Adam lr 0.01, float32, the tutorial's start, every step run.
pln::FitOptions b1_options(const std::string& backend, const std::string& device, int64_t steps) {
  pln::FitOptions o;
  o.backend = backend;
  o.device = device;
  o.dtype = "float32";
  o.optimizer = "adam";
  o.lr = 0.01;
  o.maxit = steps;
  o.tol = 0;
  o.init = "tutorial";
  return o;
}

// The converged default fit (C1, C2): lbfgs from the lm start until it stops, with PLN_param()'s
// default tol (1e-8 in float64, 1e-6 in float32).
pln::FitOptions converged_options(const std::string& backend, const std::string& device,
                                  const std::string& dtype) {
  pln::FitOptions o;
  o.backend = backend;
  o.device = device;
  o.dtype = dtype;
  o.optimizer = "lbfgs";
  o.maxit = 10000;
  o.tol = dtype == "float64" ? 1e-8 : 1e-6;
  o.init = "lm";
  return o;
}

// Runs with an environment variable set for the fused CUDA variants.
struct Variant {
  std::string name, env, value;
};

void set_variant(const Variant& v) {
  for (const char* k : {"PLN_CUDA_GRAPHS", "PLN_CUDA_COV"}) unsetenv(k);
  if (!v.env.empty()) setenv(v.env.c_str(), v.value.c_str(), 1);
}

// The converged default fits; their rows also show the stopping status.
bool converged_fit(const std::string& bench) { return bench == "C1" || bench == "C2"; }
// Rows whose "final ELBO" column is the log-likelihood (sum of loglik_vec).
bool reports_loglik(const std::string& bench) { return bench == "B2" || converged_fit(bench); }

double rel(double a, double b) { return std::fabs(a - b) / std::fabs(b); }

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir = "data-raw", out_dir = "inst/bench/results", date = today();
  int64_t steps = 5000, cpu_steps = 20, scale_n = 0, scale_p = 0, scale_steps = 0;
  int reps = 2;
  bool b1 = true, b2 = true, conv = true;
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k];
    auto next = [&]() -> std::string {
      if (k + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++k];
    };
    if (a == "--data") data_dir = next();
    else if (a == "--out") out_dir = next();
    else if (a == "--steps") steps = std::stoll(next());
    else if (a == "--cpu-steps") cpu_steps = std::stoll(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--date") date = next();
    else if (a == "--no-b1") b1 = false;
    else if (a == "--no-b2") b2 = false;
    else if (a == "--no-conv") conv = false;
    else if (a == "--scale") {
      std::string s = next();
      std::replace(s.begin(), s.end(), ',', ' ');
      std::istringstream ss(s);
      ss >> scale_n >> scale_p >> scale_steps;
    } else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }

  // Each Newton-Schulz fit prints (stderr) how often its gate recomputed Omega exactly.
  setenv("PLN_CUDA_NS_STATS", "1", 1);
  const auto info = pln::build_info();
  const bool gpu = info.cuda && info.cuda_devices > 0;
  std::string gpu_name = "none";
#ifdef PLN_CUDA_KERNELS
  if (gpu) gpu_name = pln::cuda::device_name(0);
#endif
  std::vector<std::string> devices = {"cpu"};
  if (gpu) devices.insert(devices.begin(), "cuda");
  std::cout << "plntorch bench: LibTorch " << info.libtorch << ", GPU: " << gpu_name
            << ", CPU threads: " << at::get_num_threads() << ", date " << date << "\n";

  std::vector<Row> rows;
  auto fit_row = [&](const std::string& bench, const Data& D, pln::FitOptions o, bool B0,
                     const std::string& variant, int nrep, int64_t warm_steps) {
    Row r;
    r.bench = bench;
    r.backend = o.backend;
    r.variant = variant;
    r.device = o.device;
    r.dtype = o.dtype;
    r.optimizer = o.optimizer;
    r.n = D.n;
    r.p = D.p;
    try {
      if (warm_steps > 0) {  // compilation, handles, caches: timed apart
        auto w = o;
        w.maxit = warm_steps;
        const auto t0 = Clock::now();
        pln::fit(D.input(B0), w, {});
        r.warmup = since(t0);
      }
      pln::FitResult best;
      for (int k = 0; k < nrep; ++k) {
#ifdef PLN_CUDA_KERNELS
        if (o.device != "cpu") pln::cuda::reset_peak(0);
#endif
        auto res = pln::fit(D.input(B0), o, {});
#ifdef PLN_CUDA_KERNELS
        if (o.device != "cpu") r.peak_gb = pln::cuda::memory(0).peak_allocated / 1e9;
#endif
        std::cout << "    " << bench << " " << o.backend << "/" << variant << " " << o.device
                  << " rep " << k + 1 << ": " << res.seconds << " s\n";
        if (k == 0 || res.seconds < best.seconds) best = std::move(res);
      }
      r.steps = best.steps;
      r.setup = best.setup_seconds;
      r.seconds = best.seconds;
      r.final_elbo = best.objective.back();
      r.loglik = 0;
      for (double x : best.loglik_vec) r.loglik += x;
      r.status = best.status;
      r.threads = best.threads;
      r.trace = best.objective;
    } catch (const std::exception& e) {
      r.status = std::string("error: ") + e.what();
      std::cout << "    " << bench << " " << o.backend << "/" << variant << " " << o.device
                << " failed: " << e.what() << "\n";
    }
    rows.push_back(r);
  };

  if (b1) {
    const Data D = oaks(data_dir, 100);
    std::cout << "B1: oaks x100, n = " << D.n << ", p = " << D.p << ", Adam lr 0.01, float32\n";
    for (const auto& dev : devices) {
      const bool cuda = dev != "cpu";
      for (const std::string be : {"eager", "script", "fused"}) {
        std::vector<Variant> vars = {{"default", "", ""}};
        if (cuda && be == "fused")
          vars = {{"default", "", ""},
                  {"sweep", "PLN_CUDA_COV", "sweep"},
                  {"no-graph", "PLN_CUDA_GRAPHS", "0"}};
        for (const auto& v : vars) {
          set_variant(v);
          fit_row("B1", D, b1_options(be, dev, cuda ? steps : cpu_steps), false, v.name,
                  cuda ? reps : 1, cuda ? 20 : 2);
        }
        set_variant({"default", "", ""});
      }
    }
  }

  // Where the time of a fused CUDA step goes: events between its pieces (no graph), per variant.
  struct Piece {
    std::string variant, piece;
    double us;
  };
  std::vector<Piece> pieces;
#ifdef PLN_CUDA_KERNELS
  if (b1 && gpu) {
    const Data D = oaks(data_dir, 100);
    for (const Variant& v : std::vector<Variant>{{"default", "", ""},
                                                 {"sweep", "PLN_CUDA_COV", "sweep"}}) {
      set_variant(v);
      setenv("PLN_CUDA_PROFILE", "1", 1);
      try {
        pln::cuda::take_profile();
        pln::fit(D.input(), b1_options("fused", "cuda", 300), {});
        for (const auto& pc : pln::cuda::take_profile()) pieces.push_back({v.name, pc.first, pc.second});
      } catch (const std::exception& e) {
        std::cout << "    profile " << v.name << " failed: " << e.what() << "\n";
      }
      unsetenv("PLN_CUDA_PROFILE");
    }
    set_variant({"default", "", ""});
  }
#endif

  if (b2) {
    const Data D = oaks(data_dir, 1);
    std::cout << "B2: oaks, n = " << D.n << ", Rprop lr 0.05, <= 1000 steps, tol 1e-9, B = -8\n";
    for (const auto& dev : devices)
      for (const std::string be : {"eager", "script", "fused"}) {
        pln::FitOptions o;
        o.backend = be;
        o.device = dev;
        o.dtype = "float64";
        o.optimizer = "rprop";
        o.lr = 0.05;
        o.maxit = 1000;
        o.tol = 1e-9;
        o.init = "tutorial";
        fit_row("B2", D, o, true, "default", 3, 5);
      }
  }

  // C1, C2: for every backend on CUDA and fused on the CPU, float64 then float32 (the variant
  // column); each fit once untimed (setup, compilation), then timed.
  if (conv) {
    const std::vector<std::pair<std::string, int>> sets = {{"C1", 100}, {"C2", 1}};
    for (const auto& set : sets) {
      const Data D = oaks(data_dir, set.second);
      std::cout << set.first << ": oaks x" << set.second << ", n = " << D.n
                << ", lbfgs from the lm start to convergence (tol 1e-8 float64, 1e-6 float32)\n";
      for (const std::string dtype : {"float64", "float32"}) {
        if (gpu)
          for (const std::string be : {"eager", "script", "fused"})
            fit_row(set.first, D, converged_options(be, "cuda", dtype), false, dtype, reps, 5);
        fit_row(set.first, D, converged_options("fused", "cpu", dtype), false, dtype, 1, 5);
      }
    }
  }

  // Ratios and trace agreement against eager on the same bench, device and step count; for the
  // converged fits, seconds and log-likelihood against eager's fit of the same dtype.
  for (auto& r : rows) {
    for (const auto& e : rows) {
      if (e.bench != r.bench || e.device != r.device || e.backend != "eager") continue;
      if (converged_fit(r.bench)) {
        if (e.variant == r.variant && !e.trace.empty()) {
          r.speedup = e.seconds / r.seconds;
          r.final_rel = rel(r.loglik, e.loglik);
        }
        continue;
      }
      if (e.variant == "default" && !e.trace.empty() && e.trace.size() == r.trace.size()) {
        r.speedup = e.seconds / r.seconds;
        r.final_rel = rel(r.trace.back(), e.trace.back());
        r.max_rel = 0;
        for (size_t s = 0; s < r.trace.size(); ++s)
          r.max_rel = std::max(r.max_rel, rel(r.trace[s], e.trace[s]));
      }
    }
  }

  // The scale run: synthetic PLN on the GPU, fused, through the backend interface so that the
  // memory in use can be read between chunks of steps.
  struct Scale {
    bool done = false;
    std::string status;
    int64_t n = 0, p = 0, steps = 0;
    double gen_s = 0, setup_s = 0, ms_first = 0, ms_step = 0, elbo0 = 0, elbo = 0;
    double peak_gb = 0, after_prepare_gb = 0, after_half_gb = 0, after_all_gb = 0, total_gb = 0;
  } sc;
#ifdef PLN_CUDA_KERNELS
  if (gpu && scale_n > 0) {
    sc.n = scale_n;
    sc.p = scale_p;
    sc.steps = scale_steps;
    std::cout << "Scale: synthetic PLN n = " << scale_n << ", p = " << scale_p << ", float32, fused, "
              << scale_steps << " Adam steps\n";
    try {
      auto t0 = Clock::now();
      Data D{scale_n, scale_p, 1, {}, {}, {}, {}};
      {
        // Latent W = Z F' + E (rank 10 + diagonal), counts Poisson(exp(0.5 + b_j + W)), on the GPU.
        at::manual_seed(2026);
        auto g = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
        const int64_t k = 10;
        auto F = at::randn({scale_p, k}, g) * (0.6 / std::sqrt(static_cast<double>(k)));
        auto b = at::randn({1, scale_p}, g) * 0.5 + 0.5;
        auto L = at::addmm(b + 0.4 * at::randn({scale_n, scale_p}, g), at::randn({scale_n, k}, g),
                           F.t());
        auto Y = at::poisson(at::exp(L.clamp_max(6)));
        L = at::Tensor();
        // Column-major doubles for the engine's input, as R would hand them over.
        auto Yt = Y.t().contiguous().to(at::kCPU).to(at::kDouble);
        D.Y.assign(Yt.data_ptr<double>(), Yt.data_ptr<double>() + Yt.numel());
      }
      D.O.assign(D.Y.size(), 0.0);
      D.X.assign(scale_n, 1.0);
      pln::cuda::synchronize(0);
      sc.gen_s = since(t0);
      pln::cuda::reset_peak(0);

      pln::FitOptions o = b1_options("fused", "cuda", scale_steps);  // B1's recipe ...
      o.init = "lm";                                                  // ... from the lm start
      t0 = Clock::now();
      const auto topt = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
      pln::Problem pb = pln::make_problem(D.input(), topt);
      pln::State st = pln::initial_state(pb, D.input(), o.init);
      auto be = pln::make_backend(pb, o);
      be->prepare(st);
      pln::cuda::synchronize(0);
      sc.setup_s = since(t0);
      sc.after_prepare_gb = pln::cuda::memory(0).allocated / 1e9;
      auto trace = at::empty({scale_steps}, topt.dtype(at::kDouble));
      const int64_t half = scale_steps / 2;
      t0 = Clock::now();
      be->run(st, trace, 0, half);
      pln::cuda::synchronize(0);
      sc.ms_first = since(t0) / half * 1e3;
      sc.after_half_gb = pln::cuda::memory(0).allocated / 1e9;
      t0 = Clock::now();
      be->run(st, trace, half, scale_steps - half);
      pln::cuda::synchronize(0);
      sc.ms_step = since(t0) / (scale_steps - half) * 1e3;
      const auto m = pln::cuda::memory(0);
      sc.after_all_gb = m.allocated / 1e9;
      sc.peak_gb = m.peak_allocated / 1e9;
      sc.total_gb = m.total / 1e9;
      auto tr = trace.to(at::kCPU);
      sc.elbo0 = tr[0].item<double>();
      sc.elbo = tr[scale_steps - 1].item<double>();
      sc.status = std::isfinite(sc.elbo) && sc.elbo > sc.elbo0 ? "ok" : "ELBO not rising";
      sc.done = true;
      Row r;
      r.bench = "scale";
      r.backend = "fused";
      r.variant = "default";
      r.device = "cuda";
      r.dtype = "float32";
      r.optimizer = "adam";
      r.n = scale_n;
      r.p = scale_p;
      r.steps = scale_steps;
      r.setup = sc.setup_s;
      r.seconds = sc.ms_step * scale_steps / 1e3;
      r.final_elbo = sc.elbo;
      r.peak_gb = sc.peak_gb;
      r.status = sc.status;
      rows.push_back(r);
    } catch (const std::exception& e) {
      sc.status = std::string("error: ") + e.what();
      std::cout << "    scale run failed: " << e.what() << "\n";
      Row r;
      r.bench = "scale";
      r.backend = "fused";
      r.device = "cuda";
      r.dtype = "float32";
      r.n = scale_n;
      r.p = scale_p;
      r.status = sc.status;
      rows.push_back(r);
    }
  }
#else
  (void)scale_steps;
#endif

  // Files.
  std::filesystem::create_directories(out_dir);
  const std::string stem = out_dir + "/" + date + "-" + (gpu ? slug(gpu_name) : "cpu");
  {
    std::ofstream f(stem + ".csv");
    f << "date,gpu,libtorch,bench,backend,variant,device,dtype,optimizer,n,p,steps,threads,"
         "warmup_seconds,setup_seconds,seconds,ms_per_step,final_elbo,loglik,final_rel_diff_vs_eager,"
         "max_rel_diff_vs_eager,speedup_vs_eager,peak_gpu_gb,status\n";
    f.precision(10);
    for (const auto& r : rows) {
      f << date << ",\"" << gpu_name << "\"," << info.libtorch << "," << r.bench << ","
        << r.backend << "," << r.variant << "," << r.device << "," << r.dtype << ","
        << r.optimizer << "," << r.n << "," << r.p << "," << r.steps << "," << r.threads << ","
        << r.warmup << "," << r.setup << "," << r.seconds << ","
        << (r.steps > 0 ? r.seconds / r.steps * 1e3 : NAN) << "," << r.final_elbo << ","
        << (reports_loglik(r.bench) ? r.loglik : NAN) << "," << r.final_rel << "," << r.max_rel << ","
        << r.speedup << "," << r.peak_gb << ",\"" << r.status << "\"\n";
    }
    if (!pieces.empty()) {
      std::ofstream pc(stem + "-pieces.csv");
      pc << "date,gpu,bench,variant,piece,us_per_step\n";
      for (const auto& x : pieces)
        pc << date << ",\"" << gpu_name << "\",B1," << x.variant << "," << x.piece << "," << x.us
           << "\n";
    }
    std::ofstream t(stem + "-traces.csv");
    t << "bench,backend,variant,device,step,elbo\n";
    t.precision(10);
    for (const auto& r : rows) {
      if (r.bench != "B1" || r.device == "cpu") continue;
      for (size_t s = 0; s < r.trace.size(); ++s)
        if ((s + 1) % 10 == 0 || s == 0)
          t << r.bench << "," << r.backend << "," << r.variant << "," << r.device << "," << s + 1
            << "," << r.trace[s] << "\n";
    }
  }

  // The table.
  std::printf("\n%-5s %-7s %-12s %-6s %6s %8s %10s %10s %16s %10s %9s %8s\n", "bench", "backend",
              "variant", "device", "steps", "warmup", "seconds", "ms/step", "final ELBO",
              "rel.diff", "vs eager", "peak GB");
  for (const auto& r : rows)
    std::printf("%-5s %-7s %-12s %-6s %6lld %8.3f %10.4f %10.4f %16.6f %10.2e %9.2f %8.2f %s\n",
                r.bench.c_str(), r.backend.c_str(), r.variant.c_str(), r.device.c_str(),
                static_cast<long long>(r.steps), r.warmup, r.seconds,
                r.steps > 0 ? r.seconds / r.steps * 1e3 : NAN,
                reports_loglik(r.bench) ? r.loglik : r.final_elbo, r.final_rel, r.speedup,
                r.peak_gb,
                !converged_fit(r.bench) &&
                        (r.status == "maxit" || r.status == "converged" || r.status == "ok")
                    ? ""
                    : r.status.c_str());
  if (!pieces.empty()) {
    std::printf("\nB1 fused on CUDA, us per step of each piece (events, no graph):\n");
    for (const auto& x : pieces)
      std::printf("  %-13s %-8s %8.1f\n", x.variant.c_str(), x.piece.c_str(), x.us);
  }
  if (sc.done)
    std::printf(
        "\nscale: n = %lld, p = %lld: %.2f ms/step (first half %.2f), data %.1f s, setup %.1f s, "
        "GPU memory in use %.2f GB after prepare, %.2f GB after %lld steps, %.2f GB after %lld; "
        "peak %.2f GB of %.1f GB; ELBO %.6g -> %.6g\n",
        static_cast<long long>(sc.n), static_cast<long long>(sc.p), sc.ms_step, sc.ms_first,
        sc.gen_s, sc.setup_s, sc.after_prepare_gb, sc.after_half_gb,
        static_cast<long long>(sc.steps / 2), sc.after_all_gb, static_cast<long long>(sc.steps),
        sc.peak_gb, sc.total_gb, sc.elbo0, sc.elbo);
  std::cout << "wrote " << stem << ".csv and " << stem << "-traces.csv\n";
  return 0;
}
