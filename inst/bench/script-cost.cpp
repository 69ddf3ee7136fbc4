// What a step of the script backend costs next to eager on the CPU, and where the difference comes
// from. Both backends evaluate the same per-row ELBO (elbo_rows_latent() of src/engine/models/pln/elbo.cpp,
// and its TorchScript copy in src/engine/models/pln/script.cpp) and differentiate it with autograd; script runs it
// through TorchScript's graph executor. On oaks x100 (n = 11600, p = 114), one CPU thread:
//
//   forward      the ELBO of an Adam step, no gradient recorded
//   fwd+bwd      the ELBO with B, M, S requiring gradients, then autograd::grad (what an Adam step
//                differentiates)
//   adam step    the backend's whole Adam step (forward, backward, update, closed-form Sigma)
//   lbfgs grad   the gradient of the profiled ELBO that the default optimiser asks for
//   call k       the k-th call (fwd+bwd) of a fresh process, one by one: the executor's first runs
//
// under four settings of the TorchScript executor, each in a process of its own (the executor is
// chosen when a compiled function first runs):
//
//   default      LibTorch's defaults: the profiling executor (records shapes and requires_grad
//                on its first runs, then specialises the graph, builds differentiable subgraphs
//                with TorchScript's own symbolic gradients, and fuses only where a fuser may run:
//                on the CPU, the tensor-expression fuser is off by default)
//   legacy       the legacy executor (getProfilingMode() = false)
//   no-opt       graph optimisation off (setGraphExecutorOptimize(false)): the interpreter runs
//                the ops as written and autograd records them one by one, as eager does
//   cpu-fusion   the tensor-expression fuser allowed on the CPU (overrideCanFuseOnCPU(true))
//   fixed-malloc LibTorch's defaults, with glibc's malloc told to keep freed memory
//                (mallopt: M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 1 GiB, which also turns off
//                their adjustment at run time); eager and script. The `faults` column counts
//                the minor page faults per call: memory that malloc had given back to the kernel
//                and that the call touches again, one zeroed 4 KiB page at a time.
//
// Built by tests/cpp/CMakeLists.txt as pln_script_cost:
//   pln_script_cost [--data data-raw] [--out inst/bench/results] [--reps 20] [--threads 1]
//                   [--dtype float32] [--date YYYY-MM-DD]
// prints a table and writes <out>/script-cost-<date>.csv (one row per setting, dtype and measure;
// milliseconds of wall clock and of CPU time, median of --reps calls after 10 untimed ones; minor
// page faults per call). The vignette
// "oaks-benchmark" reads that file.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "models/pln/backend.h"
#include "models/pln/elbo.h"
#include "models/pln/problem.h"

namespace torch {
namespace jit {
// In libtorch_cpu, not in the installed headers of LibTorch 1.13 (Python's
// torch._C._jit_override_can_fuse_on_cpu calls it).
TORCH_API void overrideCanFuseOnCPU(bool value);
}  // namespace jit
}  // namespace torch

#include "bench_util.h"

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return 1e3 * std::chrono::duration<double>(Clock::now() - t0).count();
}

using bench::Table;
using bench::read_tsv;

struct Data {
  int64_t n, p;
  std::vector<double> Y, O, X;
  pln::FitInput input() const {
    pln::FitInput in;
    in.Y = {Y.data(), n, p};
    in.O = {O.data(), n, p};
    in.X = {X.data(), n, 1};
    return in;
  }
};

Data oaks_x100(const std::string& dir) {
  const int times = 100;
  auto Y = read_tsv(dir + "/counts.tsv");
  auto Of = read_tsv(dir + "/offsets.tsv");
  Data D{Y.n * times, Y.p, {}, {}, {}};
  D.Y.resize(D.n * D.p);
  D.O.resize(D.n * D.p);
  for (int64_t j = 0; j < D.p; ++j)
    for (int r = 0; r < times; ++r)
      for (int64_t i = 0; i < Y.n; ++i) {
        D.Y[j * D.n + r * Y.n + i] = Y.v[j * Y.n + i];
        D.O[j * D.n + r * Y.n + i] = std::log(Of.v[j * Y.n + i]);
      }
  D.X.assign(D.n, 1.0);
  return D;
}

double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  const size_t k = x.size() / 2;
  return x.size() % 2 ? x[k] : 0.5 * (x[k - 1] + x[k]);
}

// CPU time of the process (all its threads), in ms: on a shared machine, what a call costs
// without the time it waited for a core.
double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return 1e3 * static_cast<double>(ts.tv_sec) + 1e-6 * static_cast<double>(ts.tv_nsec);
}

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

struct Timing {
  // median milliseconds (wall clock, and CPU time), mean minor page faults per call
  double ms = NAN, faults = NAN, cpu = NAN;
};

// Median of `reps` timed calls of f after `warm` untimed ones.
template <typename F>
Timing time_ms(F&& f, int warm, int reps) {
  for (int k = 0; k < warm; ++k) f();
  std::vector<double> t, c;
  const long f0 = minor_faults();
  for (int k = 0; k < reps; ++k) {
    const auto t0 = Clock::now();
    const double c0 = cpu_ms();
    f();
    c.push_back(cpu_ms() - c0);
    t.push_back(ms_since(t0));
  }
  return {median(t), static_cast<double>(minor_faults() - f0) / reps, median(c)};
}

struct Out {
  std::string setting, dtype, backend, measure;
  Timing t;
};

// One setting of the executor, in this process.
std::vector<Out> run_setting(const Data& D, const std::string& setting, const std::string& dtype,
                             int reps) {
  if (setting == "legacy") torch::jit::getProfilingMode() = false;
  if (setting == "no-opt") torch::jit::setGraphExecutorOptimize(false);
  if (setting == "cpu-fusion") torch::jit::overrideCanFuseOnCPU(true);
  if (setting == "fixed-malloc") {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }

  const auto opt = at::TensorOptions().dtype(pln::parse_dtype(dtype)).device(at::kCPU);
  const auto in = D.input();
  pln::Problem pb = pln::make_problem(in, opt);
  std::vector<Out> out;

  for (const std::string be : {"script", "eager"}) {  // script first: its first calls are fresh
    // eager ignores the executor; malloc's settings apply to both
    if (be == "eager" && setting != "default" && setting != "fixed-malloc") break;
    pln::FitOptions fo;
    fo.backend = be;
    fo.dtype = dtype;
    fo.optimizer = "adam";
    fo.lr = 0.01;
    auto backend = pln::make_backend(pb, fo);
    const auto technique = pln::parse_technique(be);
    pln::State st = pln::initial_state(pb, in, "tutorial");
    pln::update_covariance(pb, st);
    backend->prepare(st);  // B, M, S require gradients, as in an Adam step

    auto fwd_bwd = [&] {
      auto J = pln::autograd_objective(pb, technique, st);
      auto g = torch::autograd::grad({J}, {st.B, st.M, st.S});
      return g[0].sum().item<double>();
    };
    // The first calls, one by one (the executor profiles, then optimises).
    if (be == "script") {
      for (int k = 1; k <= 6; ++k) {
        const long f0 = minor_faults();
        const auto t0 = Clock::now();
        const double c0 = cpu_ms();
        fwd_bwd();
        const double c = cpu_ms() - c0;
        const double ms = ms_since(t0);
        out.push_back({setting, dtype, be, "call " + std::to_string(k),
                       {ms, static_cast<double>(minor_faults() - f0), c}});
      }
    }
    out.push_back({setting, dtype, be, "forward", time_ms([&] {
                     c10::NoGradGuard ng;
                     return pln::autograd_objective(pb, technique, st).item<double>();
                   }, 10, reps)});
    out.push_back({setting, dtype, be, "forward recorded", time_ms([&] {
                     return pln::autograd_objective(pb, technique, st).item<double>();
                   }, 10, reps)});
    out.push_back({setting, dtype, be, "fwd+bwd", time_ms(fwd_bwd, 10, reps)});
    {
      pln::State s2 = st;
      out.push_back({setting, dtype, be, "adam step", time_ms([&] {
                       return backend->step(s2).item<double>();
                     }, 10, reps)});
    }
    {
      // The default optimiser's gradient, at the lm start of the profiled ELBO.
      pln::FitOptions lo = fo;
      lo.optimizer = "lbfgs";
      auto lb = pln::make_backend(pb, lo);
      pln::State s0 = pln::initial_state(pb, in, "lm");
      const pln::Point x = pln::to_point(pb, s0);
      const pln::Profile prof = pln::profile(pb, x);
      out.push_back({setting, dtype, be, "lbfgs value", time_ms([&] {
                       return lb->value(x, prof).item<double>();
                     }, 10, reps)});
      out.push_back({setting, dtype, be, "lbfgs grad", time_ms([&] {
                       return lb->gradient(x, prof).M.sum().item<double>();
                     }, 10, reps)});
    }
    if (be == "script" && std::getenv("PLN_SCRIPT_COST_GRAPH")) {
      std::cerr << "== last optimised graph (" << setting << ", " << dtype << ")\n"
                << *torch::jit::lastExecutedOptimizedGraph() << "\n";
    }
  }
  return out;
}

std::string today() {
  std::time_t t = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir = "data-raw", out_dir = "inst/bench/results", date = today(), child;
  std::vector<std::string> dtypes = {"float32", "float64"};
  int reps = 20, threads = 1;
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k];
    auto next = [&]() -> std::string {
      if (k + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++k];
    };
    if (a == "--data") data_dir = next();
    else if (a == "--out") out_dir = next();
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--dtype") dtypes = {next()};
    else if (a == "--date") date = next();
    else if (a == "--child") child = next();  // internal: one setting, rows on stdout
    else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  at::set_num_threads(threads);
  const Data D = oaks_x100(data_dir);

  if (!child.empty()) {
    for (const auto& dt : dtypes) {
      try {
        for (const auto& o : run_setting(D, child, dt, reps))
          std::printf("ROW,%s,%s,%s,%s,%.4f,%.4f,%.1f,\n", o.setting.c_str(), o.dtype.c_str(),
                      o.backend.c_str(), o.measure.c_str(), o.t.ms, o.t.cpu, o.t.faults);
      } catch (const std::exception& e) {
        // e.g. the CPU fuser of a LibTorch built without LLVM: "LLVM Backend not found"
        std::string msg = e.what();
        msg = msg.substr(msg.rfind("RuntimeError: ") != std::string::npos
                             ? msg.rfind("RuntimeError: ") + 14 : 0);
        msg = msg.substr(0, msg.find('\n'));
        std::replace(msg.begin(), msg.end(), ',', ';');
        std::printf("ROW,%s,%s,script,fails,,,,%s\n", child.c_str(), dt.c_str(), msg.c_str());
      }
    }
    std::fflush(stdout);
    return 0;
  }

  std::printf("script vs eager on the CPU: oaks x100 (n = %lld, p = %lld), %d thread(s), "
              "LibTorch %s, median of %d calls\n",
              static_cast<long long>(D.n), static_cast<long long>(D.p), threads, TORCH_VERSION,
              reps);
  const std::string csv = out_dir + "/script-cost-" + date + ".csv";
  std::ofstream f(csv);
  f << "date,cpu,cores,load,libtorch,threads,n,p,setting,dtype,backend,measure,ms,cpu_ms,faults,note\n";
  std::string cpu = "unknown", load = "NA";
  {
    std::ifstream ci("/proc/cpuinfo");
    std::string line;
    while (std::getline(ci, line))
      if (line.rfind("model name", 0) == 0) {
        cpu = line.substr(line.find(':') + 2);
        break;
      }
    std::replace(cpu.begin(), cpu.end(), ',', ' ');
    std::ifstream la("/proc/loadavg");
    la >> load;  // the load average of the last minute when the run started
  }
  const unsigned cores = std::thread::hardware_concurrency();
  std::printf("CPU: %s, %u cores, load average %s\n", cpu.c_str(), cores, load.c_str());
  for (const std::string setting : {"default", "fixed-malloc", "legacy", "no-opt", "cpu-fusion"}) {
    std::ostringstream cmd;
    cmd << "'" << argv[0] << "' --child " << setting << " --data '" << data_dir << "' --reps "
        << reps << " --threads " << threads;
    if (dtypes.size() == 1) cmd << " --dtype " << dtypes[0];
    FILE* pipe = popen(cmd.str().c_str(), "r");
    if (!pipe) throw std::runtime_error("cannot run " + cmd.str());
    char buf[512];
    while (std::fgets(buf, sizeof buf, pipe)) {
      std::string line(buf);
      if (line.rfind("ROW,", 0) != 0) {
        std::fputs(buf, stdout);
        continue;
      }
      line = line.substr(4);
      if (!line.empty() && line.back() == '\n') line.pop_back();
      f << date << "," << cpu << "," << cores << "," << load << "," << TORCH_VERSION << ","
        << threads << "," << D.n << "," << D.p << "," << line << "\n";
      std::printf("  %s\n", line.c_str());
    }
    if (pclose(pipe) != 0) std::printf("  (setting %s failed)\n", setting.c_str());
  }
  std::printf("written %s\n", csv.c_str());
  return 0;
}
