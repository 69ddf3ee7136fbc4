// PLN's fit: the setup (memory check, data, start, backend), the quasi-Newton optimiser (model.cpp)
// or the first-order rules' loop (steps, convergence and divergence checks on a trace kept on the
// device), the result; and J with its gradient at a given state (objective()).
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

#include "api/pln.h"
#include "core/session.h"
#include "core/threads.h"
#include "models/pln/backend.h"
#include "models/pln/elbo.h"
#include "models/pln/model.h"

namespace pln {

namespace {

// ---- Memory: what a fit needs, what the device offers, and the message when it does not fit.

// Arrays of n x p elements of dtype a fit holds at its peak: the setup's (the input copies, the lm
// start) plus the optimiser's: four moment arrays for Adam and Rprop; for lbfgs its pairs (four
// arrays each) and its working arrays (point, trial point, gradient, direction, A, profiles), and
// for eager and script autograd's saved tensors. Measured (peak resident memory of the whole PLN()
// call at n = 20000, p = 500 on the CPU; on CUDA, fused Adam at n = 1e6, p = 1000, float32,
// 72.1 GB = 18 arrays, inst/bench/bench.cpp): CPU lbfgs 44 (fused) and 56 (eager), Adam ~26.
double arrays_needed(const FitOptions& opt, bool cuda) {
  const bool fused = opt.backend == "fused";
  if (opt.optimizer == "lbfgs") return (cuda ? 36 : 44) + (fused ? 0 : 12);
  return (cuda ? 18 : 26) + (cuda && !fused ? 2 : 0);
}

// Bytes per entry of the p x p matrices a fit holds at its peak: Sigma, Omega, their Cholesky
// factors and inverses, M^T M, the curvature's blocks and the workspace of their factorisations,
// and the result's Sigma and Omega copied out (doubles whatever the dtype). A diagonal or spherical
// fit has no p x p algebra but hands back dense Sigma and Omega. Measured: peak resident memory of
// the engine's call at n = 3, p = 1000 to 2000 on the CPU (every backend and optimiser): full
// 15 to 21 p^2 doubles in float64 (here 22), 17 p^2 floats = 70 bytes in float32 (here 12 floats
// and the six copies out in doubles, 96 bytes), diagonal and spherical 6 p^2 doubles.
double square_bytes(const FitOptions& opt) {
  if (opt.covariance == "diagonal" || opt.covariance == "spherical") return 6 * 8.0;
  return opt.dtype == "float32" ? 12 * 4.0 + 6 * 8.0 : 22 * 8.0;
}

double fit_bytes(const FitInput& in, const FitOptions& opt) {
  const double elem = opt.dtype == "float32" ? 4 : 8;
  const double n = static_cast<double>(in.Y.nrow), p = static_cast<double>(in.Y.ncol);
  return arrays_needed(opt, opt.device.rfind("cuda", 0) == 0) * n * p * elem +
         square_bytes(opt) * p * p;
}

}  // namespace

namespace {

// detail: what LibTorch said it tried to allocate, when an allocation failed (then avail, the
// device's free memory, is not the reason: a process limit or fragmentation may be).
std::runtime_error not_enough_memory(const FitInput& in, const FitOptions& opt, double avail,
                                     const std::string& detail) {
  std::ostringstream m;
  m << "not enough memory on " << opt.device << ": this fit needs about "
    << bytes_str(fit_bytes(in, opt)) << " (" << in.Y.nrow << " x " << in.Y.ncol << " counts, "
    << opt.dtype << ", backend '" << opt.backend << "', optimizer '" << opt.optimizer << "')";
  m << memory_shortfall(opt, avail, detail);
  m << "; try ";
  // Mostly p x p matrices (many species, few samples): what shrinks them, not the n x p arrays.
  const double p = static_cast<double>(in.Y.ncol);
  const bool square = 2 * square_bytes(opt) * p * p > fit_bytes(in, opt);
  const bool dense_cov = opt.covariance != "diagonal" && opt.covariance != "spherical";
  if (square && dense_cov) m << "covariance = 'diagonal' (no p x p matrices), ";
  if (opt.dtype != "float32" && (dense_cov || !square)) m << "dtype = 'float32', ";
  if (!square && opt.optimizer == "lbfgs") m << "optimizer = 'adam' (fewer arrays), ";
  if (opt.device.rfind("cuda", 0) == 0) m << "device = 'cpu', ";
  m << (square ? "or fewer species" : "or fewer samples");
  return std::runtime_error(m.str());
}

}  // namespace

namespace {

// Divergence rules of the loop (see fit_impl): the ELBO may not fall below its start by more
// than kDivergeFactor times its size, nor settle (pass the tol test) more than kSettleMargin
// (relative) below it.
constexpr double kDivergeFactor = 1e3;
constexpr double kSettleMargin = 1e-3;

// The remedy a divergence message gives: what this fit can change (Adam and Rprop a lower lr,
// float32 fits dtype = 'float64'; an lbfgs float64 fit neither).
std::string diverge_hint(const FitOptions& opt) {
  const bool first_order = opt.optimizer != "lbfgs", single = opt.dtype == "float32";
  if (first_order && single) return "lower lr, or use dtype = 'float64'";
  if (first_order) return "lower lr";
  if (single) return "use dtype = 'float64'";
  return "check the scale of the offsets and covariates, or give starting values in `init`";
}

std::string fmt(double x) {
  std::ostringstream s;
  s.precision(6);
  s << x;
  return s.str();
}

std::runtime_error diverged(size_t step, const std::string& what, const FitOptions& opt) {
  return std::runtime_error("the fit diverged at step " + std::to_string(step) + ": the ELBO " +
                            what + "; " + diverge_hint(opt));
}

// Every number handed back must be finite: a state that overflowed (exp() in float32, S
// collapsing to 0) is an error, not a result.
void check_finite_result(const FitResult& r, const FitOptions& opt) {
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
                             "; " + diverge_hint(opt));
}

// A start given in `init` (B0, M0, S0) is absurd where its ELBO lies more than kAbsurdStart
// units below the ELBO of the package's own start (opt.init), the unit being the larger of that
// ELBO's size and the (weighted) total of the counts. Where a start's expected counts
// exp(O + X B + M + S^2 / 2) are e^k times the counts, its ELBO is about -e^k times their total;
// where they are e^-k times, about -k times: the rule refuses a start whose expected counts are on
// average ~1000 times too large (or, what no start of the scale of the data comes near, 1000 log
// units too small). Such a start does not fail gracefully: B = 8 on trichoptera (ELBO -6.4e129,
// against -1.9e3 at the package's start and -1.0e3 at the optimum) gave a NaN gradient and a fit
// "converged" after 0 steps; S = 15 (-6.2e52) crept back for 900 steps. Every sensible start is
// far inside: the package's lm start is within a factor 2 of the optimum on the validation sets,
// a previous fit's optimum (continuing a fit) is above it, the tutorial start (B = 0, M = 0,
// S = 1, PLNtorch's) is about -sum(y log y), below 10 times the counts' total for counts below
// e^10, and M = -100 on trichoptera (every mean e^-100 times too small) is at -100 times the total,
// a start the optimiser recovers from. 1e3 is also the divergence rule's factor (kDivergeFactor).
constexpr double kAbsurdStart = 1e3;

// The ELBO at the starting point is not finite: name the starting values, not the optimiser.
std::string not_finite_start(const FitInput& in) {
  if (in.B0.present() || in.M0.present() || in.S0.present())
    return "the ELBO is not finite at the starting values given in `init` (B, M, S): "
           "exp(O + X B + M + S^2 / 2) overflows, or S is so small or so large that log(S^2) or "
           "the covariance of M and S is out of range; give values of the scale of the data";
  return "the ELBO is not finite at the starting point: the offsets, covariates or counts are "
         "out of the range this dtype can represent (exp(O + X B + M) overflows); use "
         "dtype = 'float64' or rescale the offsets";
}

// The check of a start given in `init`: its ELBO (Omega in closed form, as the fit has it) must be
// finite and not absurd (kAbsurdStart). An error names `init` and both values: an explicit start
// is the user's choice (a fit continued, a warm start), and a fit from another start can end at
// another optimum, so the package does not replace it behind a warning.
void check_given_start(const Problem& pb, const FitInput& in, const FitOptions& opt,
                       const State& st) {
  if (!(in.B0.present() || in.M0.present() || in.S0.present())) return;
  c10::NoGradGuard no_grad;
  // NaN where Sigma is not positive definite (its log det)
  auto J_of = [&](const State& s) {
    return elbo(pb, s.B, s.M, s.S, s.Omega, s.logdet).to(at::kDouble).item<double>();
  };
  const double J = J_of(st);
  if (!std::isfinite(J)) throw std::runtime_error(not_finite_start(in));
  FitInput own = in;
  own.B0 = own.M0 = own.S0 = MatrixView{};
  const double J_own = J_of(initial_state(pb, own, opt.init));
  const double total = (pb.w_col * pb.Y).sum().to(at::kDouble).item<double>();
  const double unit = std::max({std::fabs(J_own), total, 1.0});
  if (std::isfinite(J_own) && J < J_own - kAbsurdStart * unit)
    throw std::runtime_error(
        "the starting values given in `init` (B, M, S) are absurd: the ELBO there is " + fmt(J) +
        ", against " + fmt(J_own) + " at the package's own start (more than " +
        fmt(kAbsurdStart) + " times the larger of its size and the counts' total below it): " +
        "exp(O + X B + M + S^2 / 2) is far off the counts; give values of the scale of the " +
        "data (a previous fit's B, M and S), or none");
}

// Adam and Rprop: `backend.run()` in chunks of steps between checks of the trace (kept on the
// device: on a GPU each check copies it back, a sync), convergence on the relative change of the
// ELBO, and the divergence rules. Returns the steps taken.
int64_t first_order_loop(const FitInput& in, const FitOptions& opt, const at::Device& dev,
                         PlnBackend& backend, State& st, std::vector<double>& obj,
                         std::string& status, const std::function<void()>& poll,
                         const Callbacks& cb) {
  // Every 100 steps on a GPU (< 2% of a step budget at 0.1 ms / step); on the CPU checks are free.
  const int64_t k = opt.check_every > 0 ? opt.check_every : (dev.is_cuda() ? 100 : 1);
  auto trace = at::empty({opt.maxit}, at::TensorOptions().device(dev).dtype(at::kDouble));
  obj.reserve(static_cast<size_t>(opt.maxit));
  status = "maxit";
  int64_t t = 0;
  while (t < opt.maxit) {
    const int64_t count = std::min(k, opt.maxit - t);
    backend.run(st, trace, t, count);
    t += count;
    // Fetch the steps run since the last check (one device-to-host copy) and inspect them.
    auto chunk = trace.slice(0, static_cast<int64_t>(obj.size()), t).to(at::kCPU);
    const double* v = chunk.data_ptr<double>();
    bool converged = false;
    for (int64_t s = 0; s < chunk.size(0); ++s) {
      const double J = v[s];
      if (!std::isfinite(J)) {
        if (obj.empty()) throw std::runtime_error(not_finite_start(in));
        throw diverged(obj.size() + 1, "became non-finite", opt);
      }
      // obj[0] is the ELBO at the start. The start is a feasible point, so an ELBO that falls
      // orders of magnitude below it is a divergence, even if it then stalls (Rprop at its
      // maximal step size, or float32 exp() just below overflow, moves it by a relative 1e-10).
      if (!obj.empty() && J < obj.front() - kDivergeFactor * std::max(std::fabs(obj.front()), 1.0))
        throw diverged(obj.size() + 1, "fell from " + fmt(obj.front()) + " at the start to " +
                                           fmt(J), opt);
      if (!obj.empty() && opt.tol > 0 && !converged &&
          std::fabs(J - obj.back()) <= opt.tol * std::fabs(J)) {
        // Settling below the start is not convergence: the optimiser lost the ground it stood on.
        if (J < obj.front() - kSettleMargin * std::fabs(obj.front()))
          throw diverged(obj.size() + 1, "settled at " + fmt(J) + ", below its start " +
                                             fmt(obj.front()), opt);
        converged = true;
      }
      obj.push_back(J);
    }
    if (opt.trace > 0 && cb.progress) cb.progress(t, obj.back());
    if (converged) {
      status = "converged";
      break;
    }
    poll();
  }
  return t;
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
  // An allocation that fails unwinds the fit (its tensors go back to LibTorch's cache), hands the
  // cache back to the device and becomes one message naming the size the fit needs.
  return guarded([&] { return fit_impl(in, opt, cb); }, opt.device,
                 [&](double avail, const std::string& detail) {
                   return not_enough_memory(in, opt, avail, detail);
                 });
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
  check_memory(opt, dev, fit_bytes(in, opt), [&](double avail, const std::string& detail) {
    return not_enough_memory(in, opt, avail, detail);
  });

  // Adam and Rprop step B with M and S; holding B fixed is a property of the profiled ELBO.
  if (in.B_fixed.present() && opt.optimizer != "lbfgs")
    throw std::invalid_argument("B held fixed (B_fixed, the VE step) needs optimizer 'lbfgs', not '" +
                                opt.optimizer + "'");
  Problem pb = make_problem(in, topt, opt.covariance);
  State st = initial_state(pb, in, opt.init);
  check_given_start(pb, in, opt, st);
  auto backend = make_backend(pb, opt);
  const bool quasi_newton = opt.optimizer == "lbfgs";
  if (!quasi_newton) backend->prepare(st);
  st.logdet.item<double>();  // waits for the device: setup is timed apart from the loop

  FitResult res;
  res.setup_seconds = seconds_since(t_setup);
  std::vector<double>& obj = res.objective;
  const auto t0 = Clock::now();
  Interrupts interrupts(cb);
  auto poll = interrupts.poller();
  int64_t t = 0;
  if (quasi_newton) {
    auto qn = run_quasi_newton(pb, *backend, opt, st, poll, progress_reporter(opt, cb));
    if (qn.objective.empty() || !std::isfinite(qn.objective.front()))
      throw std::runtime_error(not_finite_start(in));
    obj = std::move(qn.objective);
    t = qn.iterations;
    res.status = qn.status;
    res.last_change = qn.last_gain;
    res.predicted_change = qn.predicted_gain;
  } else {
    t = first_order_loop(in, opt, dev, *backend, st, obj, res.status, poll, cb);
    res.last_change = obj.size() > 1 ? std::fabs(obj.back() - obj[obj.size() - 2]) /
                                           std::fabs(obj.back())
                                     : std::numeric_limits<double>::quiet_NaN();
    res.predicted_change = std::numeric_limits<double>::quiet_NaN();
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
  res.Sigma = to_matrix(dense(st.Sigma));
  res.Omega = to_matrix(dense(st.Omega));
  res.sigma2 = st.sigma2;
  res.rho = st.rho;
  res.threads = threads.threads();
  res.backend = opt.backend;
  res.device = dev.str();
  res.dtype = opt.dtype;
  res.optimizer = opt.optimizer;
  check_finite_result(res, opt);
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

}  // namespace pln
