// The loop shared by every backend: steps, convergence and divergence checks on a trace kept
// on the device, interrupts, timing; and the engine's other entry points.
#include <ATen/Parallel.h>
#include <ATen/Context.h>
#include <torch/csrc/autograd/autograd.h>
#include <c10/util/Exception.h>
#include <torch/csrc/api/include/torch/version.h>

#include <chrono>
#include <algorithm>
#include <cmath>
#include <sstream>

#include "api.h"
#include "backend.h"
#include "elbo.h"
#include "threads.h"


namespace pln {

std::vector<std::string> available_backends() { return {"eager", "script", "fused"}; }

std::unique_ptr<Backend> make_backend(const Problem& pb, const FitOptions& opt) {
  if (opt.backend == "eager") return make_eager(pb, opt);
  if (opt.backend == "script") return make_script(pb, opt);
  if (opt.backend == "fused") return make_fused(pb, opt);
  throw std::invalid_argument("unknown backend '" + opt.backend +
                              "' (use 'eager', 'script' or 'fused')");
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// LibTorch's errors carry a C++ backtrace: keep the message alone for the user.
template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw std::runtime_error(e.what_without_backtrace());
  }
}

// Divergence rules of the loop (see fit_impl): the ELBO may not fall below its start by more
// than kDivergeFactor times its size, nor settle (pass the tol test) more than kSettleMargin
// (relative) below it.
constexpr double kDivergeFactor = 1e3;
constexpr double kSettleMargin = 1e-3;
const char* const kDivergeHint = "lower lr, or use dtype = 'float64'";

std::string fmt(double x) {
  std::ostringstream s;
  s.precision(6);
  s << x;
  return s.str();
}

std::runtime_error diverged(size_t step, const std::string& what) {
  return std::runtime_error("the fit diverged at step " + std::to_string(step) + ": the ELBO " +
                            what + "; " + kDivergeHint);
}

// Every number handed back must be finite: a state that overflowed (exp() in float32, S
// collapsing to 0) is an error, not a result.
void check_finite_result(const FitResult& r) {
  auto bad = [](const Matrix& m) {
    return std::any_of(m.values.begin(), m.values.end(), [](double v) { return !std::isfinite(v); });
  };
  const char* what = bad(r.B) ? "B" : bad(r.M) ? "M" : bad(r.S) ? "S" : bad(r.Sigma) ? "Sigma"
                   : bad(r.Omega) ? "Omega" : nullptr;
  if (!what && std::any_of(r.loglik_vec.begin(), r.loglik_vec.end(),
                           [](double v) { return !std::isfinite(v); }))
    what = "the log-likelihood";
  if (what)
    throw std::runtime_error(std::string("the fit diverged: ") + what +
                             " holds non-finite values after step " + std::to_string(r.steps) +
                             "; " + kDivergeHint);
}

at::TensorOptions tensor_options(const std::string& device, const std::string& dtype) {
  return at::TensorOptions().device(parse_device(device)).dtype(parse_dtype(dtype));
}

}  // namespace

FitResult fit_impl(const FitInput& in, const FitOptions& opt, const Callbacks& cb);
ObjectiveResult objective_impl(const FitInput& in, const MatrixView& B, const MatrixView& M,
                               const MatrixView& S, const MatrixView& Omega,
                               const std::string& method, const std::string& dtype);

FitResult fit(const FitInput& in, const FitOptions& opt, const Callbacks& cb) {
  return guarded([&] { return fit_impl(in, opt, cb); });
}

ObjectiveResult objective(const FitInput& in, const MatrixView& B, const MatrixView& M,
                          const MatrixView& S, const MatrixView& Omega, const std::string& method,
                          const std::string& dtype) {
  return guarded([&] { return objective_impl(in, B, M, S, Omega, method, dtype); });
}

FitResult fit_impl(const FitInput& in, const FitOptions& opt, const Callbacks& cb) {
  if (opt.maxit < 1) throw std::invalid_argument("maxit must be at least 1");
  ThreadScope threads(opt.num_threads);
  const auto t_setup = Clock::now();
  const auto topt = tensor_options(opt.device, opt.dtype);
  const at::Device dev = topt.device();

  Problem pb = make_problem(in, topt);
  State st = initial_state(pb, in, opt.init);
  auto backend = make_backend(pb, opt);
  backend->prepare(st);
  st.logdet.item<double>();  // waits for the device: setup is timed apart from the loop

  FitResult res;
  res.setup_seconds = seconds_since(t_setup);
  // On a GPU each check copies the trace back, a sync: do it every 100 steps (< 2% of a step
  // budget at 0.1 ms / step); on the CPU checks are free.
  const int64_t k = opt.check_every > 0 ? opt.check_every : (dev.is_cuda() ? 100 : 1);
  auto trace = at::empty({opt.maxit}, topt.dtype(at::kDouble));
  std::vector<double>& obj = res.objective;
  obj.reserve(static_cast<size_t>(opt.maxit));

  const auto t0 = Clock::now();
  auto last_poll = t0;
  res.status = "maxit";
  int64_t t = 0;
  while (t < opt.maxit) {
    const int64_t count = std::min(k, opt.maxit - t);
    backend->run(st, trace, t, count);
    t += count;
    // Fetch the steps run since the last check (one device-to-host copy) and inspect them.
    auto chunk = trace.slice(0, static_cast<int64_t>(obj.size()), t).to(at::kCPU);
    const double* v = chunk.data_ptr<double>();
    bool converged = false;
    for (int64_t s = 0; s < chunk.size(0); ++s) {
      const double J = v[s];
      if (!std::isfinite(J)) throw diverged(obj.size() + 1, "became non-finite");
      // obj[0] is the ELBO at the start. The start is a feasible point, so an ELBO that falls
      // orders of magnitude below it is a divergence, even if it then stalls (Rprop at its
      // maximal step size, or float32 exp() just below overflow, moves it by a relative 1e-10).
      if (!obj.empty() && J < obj.front() - kDivergeFactor * std::max(std::fabs(obj.front()), 1.0))
        throw diverged(obj.size() + 1, "fell from " + fmt(obj.front()) + " at the start to " +
                                           fmt(J));
      if (!obj.empty() && opt.tol > 0 && !converged &&
          std::fabs(J - obj.back()) <= opt.tol * std::fabs(J)) {
        // Settling below the start is not convergence: the optimiser lost the ground it stood on.
        if (J < obj.front() - kSettleMargin * std::fabs(obj.front()))
          throw diverged(obj.size() + 1, "settled at " + fmt(J) + ", below its start " +
                                             fmt(obj.front()));
        converged = true;
      }
      obj.push_back(J);
    }
    if (opt.trace > 0 && cb.progress) cb.progress(t, obj.back());
    if (converged) {
      res.status = "converged";
      break;
    }
    if (cb.interrupted && std::chrono::duration<double>(Clock::now() - last_poll).count() > 0.05) {
      last_poll = Clock::now();
      if (cb.interrupted()) throw Interrupted();
    }
  }
  // The last check copied the trace back, which waited for the device.
  res.seconds = seconds_since(t0);
  res.steps = t;

  c10::NoGradGuard no_grad;
  auto B = st.B.detach(), M = st.M.detach(), S = st.S.detach();
  auto rows = elbo_rows(pb, B, M, S, st.Omega, st.logdet);
  auto rows_cpu = rows.to(at::kCPU, at::kDouble).contiguous();
  res.loglik_vec.assign(rows_cpu.data_ptr<double>(), rows_cpu.data_ptr<double>() + pb.n);
  res.B = to_matrix(B);
  res.M = to_matrix(M);
  res.S = to_matrix(S);
  res.Sigma = to_matrix(st.Sigma);
  res.Omega = to_matrix(st.Omega);
  res.threads = threads.threads();
  res.backend = opt.backend;
  res.device = dev.str();
  res.dtype = opt.dtype;
  res.optimizer = opt.optimizer;
  check_finite_result(res);
  return res;
}

ObjectiveResult objective_impl(const FitInput& in, const MatrixView& B, const MatrixView& M,
                               const MatrixView& S, const MatrixView& Omega,
                               const std::string& method, const std::string& dtype) {
  const auto topt = tensor_options("cpu", dtype);
  Problem pb = make_problem(in, topt);
  State st;
  st.B = to_tensor(B, topt);
  st.M = to_tensor(M, topt);
  st.S = to_tensor(S, topt);
  st.Omega = to_tensor(Omega, topt);
  if (st.B.size(0) != pb.d || st.B.size(1) != pb.p || st.M.sizes() != pb.Y.sizes() ||
      st.S.sizes() != pb.Y.sizes() || st.Omega.size(0) != pb.p || st.Omega.size(1) != pb.p)
    throw std::invalid_argument("B, M, S or Omega has the wrong dimensions");
  st.logdet = at::logdet(st.Omega);
  ObjectiveResult out;
  if (method == "analytic") {
    auto g = analytic_gradient(pb, st);
    out.objective = eager_objective(pb, st).item<double>();
    out.B = to_matrix(g.B);
    out.M = to_matrix(g.M);
    out.S = to_matrix(g.S);
    return out;
  }
  if (method != "autograd" && method != "script")
    throw std::invalid_argument("unknown method '" + method +
                                "' (use 'autograd', 'script' or 'analytic')");
  st.B.requires_grad_(true);
  st.M.requires_grad_(true);
  st.S.requires_grad_(true);
  auto J = method == "script" ? script_objective(pb, st) : eager_objective(pb, st);
  auto g = torch::autograd::grad({J}, {st.B, st.M, st.S});
  out.objective = J.item<double>();
  out.B = to_matrix(g[0]);
  out.M = to_matrix(g[1]);
  out.S = to_matrix(g[2]);
  return out;
}

BuildInfo build_info() {
  BuildInfo b;
  b.backends = available_backends();
  std::ostringstream v;
  v << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR << "." << TORCH_VERSION_PATCH;
  b.libtorch = v.str();
#ifdef PLN_CUDA
  b.cuda_build = true;  // set by configure for a CUDA LibTorch
#endif
#ifdef PLN_CUDA_KERNELS
  b.cuda_kernels = true;
#endif
  b.cuda = at::hasCUDA();
  b.cuda_devices = b.cuda ? static_cast<int>(at::getNumGPUs()) : 0;
  b.threads = at::get_num_threads();
  return b;
}

}  // namespace pln
