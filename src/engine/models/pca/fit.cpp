// PLN-PCA fits: the model as the quasi-Newton optimiser sees it, and the collection of ranks in one
// call (each rank from the SVD start, the previous rank's optimum or both), with the memory check
// before any tensor.
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <new>
#include <sstream>

#include "core/memory.h"
#include "models/pca/model.h"
#include "models/pca/balance.h"
#include "core/tensor.h"
#include "core/session.h"
#include "core/threads.h"

namespace pln {

namespace {

// PLNmodels' starting variance of the variational scores.
constexpr double kStartS2 = 0.01;

// A fit's first iterations decide which of the ELBO's maxima it climbs, and long first steps can
// carry it to a lower one: on microcosm (880 x 259, counts up to 52485) rank 1 ended 2% below
// PLNmodels' loglik. The warm-up (PcaModel::kWarmup) limits every entry of B, C and M to
// kTrustRadius per iteration, on the balanced model, for kWarmupIterations iterations; measured
// in NOTES-optimiser.md (radius 0.3 and 0.1 reach the higher maximum there, 0.5 to 3 the lower,
// as does the radius without the balancing; a radius kept for the whole fit slows large fits).
constexpr double kTrustRadius = 0.3;
constexpr int64_t kWarmupIterations = 50;

// The model as the optimiser sees it, in one of three modes:
// - kWarmup, a fit's first kWarmupIterations: J~(x) = J(T(x)) with the invariances profiled out
//   (pca_balance.h), and a trust radius: no entry of B, C or M moves by more than kTrustRadius;
// - kPlain, the rest of the fit: J itself, steps of any length;
// - kFixed, the variational step of project(): J with B and C held.
class PcaModel : public QuasiNewtonModel {
 public:
  enum Mode { kWarmup, kPlain, kFixed };
  PcaModel(const PcaProblem& pb, PcaBackend& backend, Mode mode)
      : pb_(pb), backend_(backend), mode_(mode) {}
  double value(const Vars& x) override {
    if (mode_ == kWarmup) {
      trial_balance_ = pca_balance(pb_, x);
      trial_ = pca_balanced(pb_, x, trial_balance_);
    } else {
      trial_ = x;
    }
    return backend_.value(trial_, {}).item<double>();
  }
  void accept() override {
    x_ = trial_;
    balance_ = trial_balance_;
  }
  Vars gradient() override {
    Vars g = backend_.gradient(x_, {});
    h_ = pca_curvature(pb_, x_);
    if (mode_ == kFixed) hold(g);
    if (mode_ == kWarmup) {
      g = pca_pull_gradient(g, balance_);
      h_ = pca_pull_curvature(h_, balance_);
    }
    return g;
  }
  Vars precondition(const Vars& q) override {
    Vars r = pca_precondition(h_, q);
    if (mode_ == kFixed) hold(r);
    return r;
  }
  double max_step(const Vars& d) override {
    if (mode_ != kWarmup) return std::numeric_limits<double>::infinity();
    const double m = at::stack({d[kB].abs().max(), d[kC].abs().max(), d[kM].abs().max()})
                         .max()
                         .item<double>();
    return m > 0 ? kTrustRadius / m : std::numeric_limits<double>::infinity();
  }
  // The model's point of the optimiser's last accepted x (T(x) in the warm-up).
  const Vars& point() const { return x_; }

 private:
  // The variational step: B and C do not move.
  static void hold(Vars& v) {
    v[kB] = at::zeros_like(v[kB]);
    v[kC] = at::zeros_like(v[kC]);
  }
  const PcaProblem& pb_;
  PcaBackend& backend_;
  Mode mode_;
  Vars trial_, x_;
  PcaBalance trial_balance_, balance_;
  PcaCurvature h_;
};

at::Tensor columns(const at::Tensor& t, int64_t k0, int64_t k1) {
  return t.slice(1, k0, k1).contiguous();
}

// Bytes a fit needs at its peak: the counts (CSR; dense n x p tensors too for eager and script,
// with autograd's saved ones), the variables and the optimiser's copies of them (5 pairs of 2,
// point, trial, gradient, direction, curvature: ~20), and the passes' blocks of rows.
double pca_bytes(const PcaInput& in, int64_t qmax, const FitOptions& opt) {
  const double elem = opt.dtype == "float32" ? 4 : 8;
  const double n = static_cast<double>(in.Y.present() ? in.Y.nrow : in.n);
  const double p = static_cast<double>(in.Y.present() ? in.Y.ncol : in.p);
  const double d = static_cast<double>(in.X.ncol);
  const double nnz = in.Y.present() ? n * p : static_cast<double>(in.nnz);
  const double q = static_cast<double>(qmax);
  double bytes = nnz * (16 + elem) + 20 * (2 * n * q + p * (q + d)) * elem +
                 n * (5 * q + d * d + d) * elem + 3 * elem * (1 << 22);
  if (opt.backend != "fused") bytes += 8 * n * p * elem;
  if (in.O.present() && in.O.ncol > 1) bytes += n * p * elem;
  return bytes;
}

std::runtime_error pca_not_enough_memory(const PcaInput& in, int64_t qmax, const FitOptions& opt,
                                         double avail, const std::string& detail) {
  std::ostringstream m;
  const int64_t n = in.Y.present() ? in.Y.nrow : in.n, p = in.Y.present() ? in.Y.ncol : in.p;
  m << "not enough memory on " << opt.device << ": this PLN-PCA fit needs about "
    << bytes_str(pca_bytes(in, qmax, opt)) << " (" << n << " x " << p << " counts, rank up to "
    << qmax << ", " << opt.dtype << ", backend '" << opt.backend << "')";
  m << memory_shortfall(opt, avail, detail);
  m << "; try ";
  if (opt.backend != "fused") m << "backend = 'fused' (no n x p arrays), ";
  if (opt.dtype != "float32") m << "dtype = 'float32', ";
  m << "sparse counts (a dgCMatrix), or fewer samples";
  return std::runtime_error(m.str());
}

at::Tensor start_tensor(const MatrixView& v, const char* name, int64_t nrow, int64_t ncol_min,
                        const at::TensorOptions& opt) {
  if (!v.present() || v.nrow != nrow || v.ncol < ncol_min)
    throw std::invalid_argument(std::string("the starting value ") + name +
                                " is missing or has the wrong dimensions");
  return to_tensor(v, opt);
}

PcaRankResult to_result(const PcaProblem& pb, const Vars& x, int64_t q) {
  c10::NoGradGuard no_grad;
  PcaRankResult r;
  r.rank = q;
  r.B = to_matrix(x[kB]);
  r.C = to_matrix(x[kC]);
  r.M = to_matrix(x[kM]);
  r.S = to_matrix(at::exp(0.5 * x[kP]));
  auto rows = pca_rows_pass(pb, x).to(at::kCPU, at::kDouble).contiguous();
  r.loglik_vec.assign(rows.data_ptr<double>(), rows.data_ptr<double>() + pb.n);
  return r;
}

PcaResult pca_fit_impl(const PcaInput& in, const std::vector<int64_t>& ranks,
                       const FitOptions& opt, const Callbacks& cb) {
  if (ranks.empty()) throw std::invalid_argument("no rank to fit");
  for (size_t k = 0; k < ranks.size(); ++k)
    if (ranks[k] < 1 || (k > 0 && ranks[k] <= ranks[k - 1]))
      throw std::invalid_argument("ranks must be positive, increasing and distinct");
  if (opt.optimizer != "lbfgs")
    throw std::invalid_argument("PLN-PCA is fitted by optimizer 'lbfgs' only");
  if (opt.maxit < 1) throw std::invalid_argument("maxit must be at least 1");
  const int64_t qmax = ranks.back();
  ThreadScope threads(opt.num_threads);
  const auto t_setup = Clock::now();
  const auto topt = at::TensorOptions().device(parse_device(opt.device)).dtype(parse_dtype(opt.dtype));
  check_memory(opt, topt.device(), pca_bytes(in, qmax, opt),
               [&](double avail, const std::string& detail) {
                 return pca_not_enough_memory(in, qmax, opt, avail, detail);
               });
  PcaProblem pb = make_pca_problem(in, topt, opt.backend != "fused");
  auto backend = make_pca_backend(pb, opt.backend);
  const auto B0 = start_tensor(in.B0, "B", pb.d, pb.p, topt);
  const auto C0 = start_tensor(in.C0, "C", pb.p, qmax, topt);
  const auto M0 = start_tensor(in.M0, "M", pb.n, qmax, topt);
  const auto P0 = in.S0.present() ? at::log(at::square(start_tensor(in.S0, "S", pb.n, qmax, topt)))
                                  : at::full({pb.n, qmax}, std::log(kStartS2), topt);
  PcaResult out;
  out.setup_seconds = seconds_since(t_setup);
  out.backend = opt.backend;
  out.device = topt.device().str();
  out.dtype = opt.dtype;
  out.threads = threads.threads();

  Interrupts interrupts(cb);
  auto poll = interrupts.poller();
  if (in.start != "best" && in.start != "warm" && in.start != "svd")
    throw std::invalid_argument("unknown start '" + in.start + "' (use 'best', 'warm' or 'svd')");
  auto progress = progress_reporter(opt, cb);
  // One fit from x (left at its optimum): the warm-up, then the plain model from the warm-up's
  // balanced point, one trace.
  auto run = [&](Vars& x) {
    if (in.fixed_model) {
      PcaModel model(pb, *backend, PcaModel::kFixed);
      return run_quasi_newton(model, x, opt, poll, progress);
    }
    FitOptions o = opt;
    o.maxit = std::min<int64_t>(opt.maxit, kWarmupIterations);
    PcaModel warm(pb, *backend, PcaModel::kWarmup);
    auto res = run_quasi_newton(warm, x, o, poll, progress);
    if (res.objective.empty() || !std::isfinite(res.objective.front())) return res;
    x = warm.point();
    if (res.status == "converged" || res.iterations >= opt.maxit) return res;
    o.maxit = opt.maxit - res.iterations;
    const int64_t done = res.iterations;
    PcaModel plain(pb, *backend, PcaModel::kPlain);
    auto rest = run_quasi_newton(plain, x, o, poll,
                                 [&](int64_t step, double J) { progress(done + step, J); });
    // rest starts where the warm-up ended (the same point, the same J): one trace
    res.objective.insert(res.objective.end(), rest.objective.begin() + 1, rest.objective.end());
    res.iterations += rest.iterations;
    res.status = rest.status;
    res.last_gain = rest.last_gain;
    res.predicted_gain = rest.predicted_gain;
    return res;
  };
  Vars prev;
  int64_t q_prev = 0;
  for (int64_t q : ranks) {
    const auto t0 = Clock::now();
    std::vector<Vars> starts;
    if (in.start != "warm" || prev.empty())
      starts.push_back({B0.clone(), columns(C0, 0, q), columns(M0, 0, q), columns(P0, 0, q)});
    if (in.start != "svd" && !prev.empty())
      starts.push_back({prev[kB].clone(), at::cat({prev[kC], columns(C0, q_prev, q)}, 1),
                        at::cat({prev[kM], at::zeros({pb.n, q - q_prev}, topt)}, 1),
                        at::cat({prev[kP], columns(P0, q_prev, q)}, 1)});
    Vars best;
    QuasiNewtonResult best_qn;
    for (auto& x : starts) {
      auto qn = run(x);
      if (qn.objective.empty() || !std::isfinite(qn.objective.front()))
        throw std::runtime_error(
            "the ELBO is not finite at the starting point of rank " + std::to_string(q) +
            ": exp(O + X B + M C') overflows; use dtype = 'float64' or rescale the offsets");
      if (best.empty() || qn.objective.back() > best_qn.objective.back()) {
        best = x;
        best_qn = std::move(qn);
      }
    }
    PcaRankResult r = to_result(pb, best, q);
    r.seconds = seconds_since(t0);
    r.objective = std::move(best_qn.objective);
    r.steps = best_qn.iterations;
    r.status = best_qn.status;
    r.last_change = best_qn.last_gain;
    r.predicted_change = best_qn.predicted_gain;
    for (double v : r.loglik_vec)
      if (!std::isfinite(v))
        throw std::runtime_error("the PLN-PCA fit of rank " + std::to_string(q) +
                                 " diverged: its log-likelihood is not finite");
    out.fits.push_back(std::move(r));
    prev = best;
    q_prev = q;
  }
  return out;
}

}  // namespace

PcaResult pca_fit(const PcaInput& in, const std::vector<int64_t>& ranks, const FitOptions& opt,
                  const Callbacks& cb) {
  const int64_t qmax = ranks.empty() ? 0 : ranks.back();
  return guarded([&] { return pca_fit_impl(in, ranks, opt, cb); }, opt.device,
                 [&](double avail, const std::string& detail) {
                   return pca_not_enough_memory(in, qmax, opt, avail, detail);
                 });
}

PcaObjective pca_objective(const PcaInput& in, const std::string& method, const std::string& dtype) {
  return guarded([&] {
    const auto topt = at::TensorOptions().dtype(parse_dtype(dtype));
    PcaProblem pb = make_pca_problem(in, topt, method != "analytic");
    const int64_t q = in.C0.ncol;
    Vars x{start_tensor(in.B0, "B", pb.d, pb.p, topt), start_tensor(in.C0, "C", pb.p, q, topt),
           start_tensor(in.M0, "M", pb.n, q, topt),
           at::log(at::square(start_tensor(in.S0, "S", pb.n, q, topt)))};
    PcaObjective out;
    Vars g;
    if (method == "analytic") {
      out.objective = at::sum(pb.w * pca_rows_pass(pb, x)).item<double>();
      g = pca_gradient_pass(pb, x);
    } else if (method == "autograd" || method == "script") {
      auto be = make_pca_backend(pb, method == "script" ? "script" : "eager");
      out.objective = be->value(x, {}).item<double>();
      g = be->gradient(x, {});
    } else {
      throw std::invalid_argument("unknown method '" + method +
                                  "' (use 'autograd', 'script' or 'analytic')");
    }
    out.B = to_matrix(g[kB]);
    out.C = to_matrix(g[kC]);
    out.M = to_matrix(g[kM]);
    out.S = to_matrix(g[kP] * 2 / at::exp(0.5 * x[kP]));  // dJ/dS = dJ/dP * 2 / S
    return out;
  });
}

}  // namespace pln
