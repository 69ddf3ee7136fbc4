// Refits of one fit on reweighted samples, many at once (api.h, refit()): the batched PLN model of
// batch.h as a model of the quasi-Newton optimiser, the batches sized to a memory budget, and the
// moments the R side needs.
//
// Design: one L-BFGS run on the sum of the K refits' ELBOs, J = sum_k J_k. The refits share no
// variable, so the sum's maximiser is every refit's, and its curvature (batch_precondition()) is
// each refit's own, block by block; what the refits share is the optimiser's scalars (the line
// search's step, the pairs' coefficients), so the optimiser and its loop stay one. Each refit's
// stopping rule is its own: the run stops when every refit's last relative gain and predicted
// gain, on its own J_k, are below tol (BatchModel::stationary()). Measured on the CPU
// (inst/bench/batch-refits.R, results/batch-refits-*-cpu.csv): with one refit per batch the
// iterations are the single fit's; with several, the shared scalars cost iterations where the
// refits' curvatures differ most: the jackknife of oaks ~ tree takes 49 joint iterations in
// batches of 8 against at most 47 for a single refit, that of trichoptera ~ Wind + Temperature
// (whose rare species have flat directions) 183 in batches of 8 and 529 all at once against at
// most 135. Per-refit scalars (K line searches and sets of pairs in one loop) are the next step
// where that matters; on a GPU an iteration costs about the same for any K.
#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <new>
#include <sstream>

#include "api/pln.h"
#include "models/pln/batch.h"
#include "optim/quasi_newton.h"
#include "core/session.h"
#include "core/threads.h"

namespace pln {

namespace {


// The batched PLN model: the sum of the refits' profiled ELBOs over (M, P), K x n x p each.
class BatchModel : public QuasiNewtonModel {
 public:
  explicit BatchModel(const BatchProblem& bp)
      : bp_(bp),
        steps_(static_cast<size_t>(bp.K), 0.0),
        last_(static_cast<size_t>(bp.K), std::numeric_limits<double>::infinity()),
        predicted_(static_cast<size_t>(bp.K), std::numeric_limits<double>::infinity()),
        done_(static_cast<size_t>(bp.K), false) {}

  double value(const Vars& x) override {
    trial_ = {x[0], x[1]};
    trial_prof_ = batch_profile(bp_, trial_);
    trial_J_ = batch_value(bp_, trial_, trial_prof_);
    return trial_J_.sum().item<double>();
  }
  void accept() override {
    x_ = trial_;
    prof_ = trial_prof_;
    J_prev_ = J_;
    J_ = trial_J_;
    ++accepted_;
  }
  Vars gradient() override {
    batch_gradient(bp_, x_, prof_, g_[0], g_[1], A_);
    return {g_[0], g_[1]};
  }
  Vars precondition(const Vars& q) override {
    at::Tensor rM, rP;
    batch_precondition(bp_, prof_, A_, q[0], q[1], rM, rP);
    return {rM, rP};
  }
  // Every refit's own rule, on its J_k: |J_k - J_k before the last step| / |J_k| and
  // |g_k' d_k| / |J_k| below tol (the slope along the joint direction, whose k-th block is refit
  // k's direction).
  bool stationary(const Vars& d, double, double, double tol) override {
    auto slope = (g_[0] * d[0]).sum({1, 2}, false, at::kDouble) +
                 (g_[1] * d[1]).sum({1, 2}, false, at::kDouble);
    auto J = J_.to(at::kDouble);
    auto gain = J_prev_.defined() ? (J - J_prev_.to(at::kDouble)).abs() / J.abs()
                                  : at::full_like(J, std::numeric_limits<double>::infinity());
    auto both = at::stack({gain, slope.abs() / J.abs()}).to(at::kCPU).contiguous();
    const double* v = both.data_ptr<double>();
    const int64_t K = bp_.K, iterations = accepted_ - 1;
    bool all = true;
    for (int64_t k = 0; k < K; ++k) {
      const size_t s = static_cast<size_t>(k);
      last_[s] = v[k];
      predicted_[s] = v[K + k];
      done_[s] = last_[s] < tol && predicted_[s] < tol;  // false on NaN
      if (!done_[s]) steps_[s] = static_cast<double>(iterations + 1);
      all = all && done_[s];
    }
    return all;
  }

  const Point& point() const { return x_; }
  const Profile& profile() const { return prof_; }
  // Per refit, after the run: its iterations and status, given the run's.
  void finish(const QuasiNewtonResult& run, double tol, std::vector<double>& steps,
              std::vector<std::string>& status) const {
    for (size_t k = 0; k < done_.size(); ++k) {
      steps.push_back(std::min(steps_[k], static_cast<double>(run.iterations)));
      if (done_[k])
        status.push_back("converged");
      else if (run.status == "maxit")
        status.push_back("maxit");
      else  // the line search found no increase of J: stationary where nothing more is predicted
        status.push_back(predicted_[k] < tol ? "converged" : "stalled");
    }
  }

 private:
  const BatchProblem& bp_;
  Point trial_, x_;
  Profile trial_prof_, prof_;
  at::Tensor trial_J_, J_, J_prev_, A_;
  at::Tensor g_[2];
  int64_t accepted_ = 0;
  std::vector<double> steps_, last_, predicted_;
  std::vector<bool> done_;
};

// Bytes one refit of a batch holds at its peak, in arrays of its size: K x n x p arrays, the
// optimiser's (point and trial point, their profiles, gradient, its previous value, direction,
// 5 pairs of 2 x 2 arrays, the two loops' vectors) and the evaluations' temporaries, ~52; p x p
// arrays (G, Sigma, its factor, Omega, of the point and the trial point), 12; B's curvature
// blocks, n d^2 and p d^2.
double bytes_per_refit(int64_t n, int64_t p, int64_t d, double elem) {
  const double nd = static_cast<double>(n), pd = static_cast<double>(p), dd = static_cast<double>(d);
  return elem * (52 * nd * pd + 12 * pd * pd + 2 * (nd + pd) * dd * dd + 4 * nd * dd + 4 * nd);
}

std::runtime_error refit_memory_error(const FitOptions& opt, int64_t batch, double per_refit,
                                      double budget, const std::string& detail) {
  std::ostringstream m;
  m << "not enough memory on " << opt.device << " for ";
  if (batch > 0) m << batch << " refit(s) at once";
  else m << "the batched refits";
  m << ": each needs about " << bytes_str(per_refit);
  if (!detail.empty())
    m << " and an allocation failed (" << detail << ")";
  else if (std::isfinite(budget))
    m << " and " << bytes_str(budget) << " is available for them";
  m << "; use a smaller config_post$batch (1: one refit at a time), or dtype = 'float32'";
  return std::runtime_error(m.str());
}

RefitResult refit_impl(const RefitInput& in, const FitOptions& opt, int64_t batch,
                       const Callbacks& cb) {
  if (opt.optimizer != "lbfgs")
    throw std::invalid_argument("batched refits need optimizer 'lbfgs', not '" + opt.optimizer + "'");
  if (opt.covariance != "full")
    throw std::invalid_argument("batched refits need covariance 'full', not '" + opt.covariance + "'");
  if (batch < 0) throw std::invalid_argument("batch must be 0 (automatic) or positive");
  if (!in.Y.present() || !in.W.present() || !in.B0.present() || !in.M0.present() ||
      !in.S0.present() || !in.Omega.present())
    throw std::invalid_argument("refit: Y, O, X, W, B0, M0, S0 and Omega are required");
  const int64_t n = in.Y.nrow, p = in.Y.ncol, d = in.X.ncol, K = in.W.ncol;
  if (in.W.nrow != n) throw std::invalid_argument("W must have one row per sample");
  if (K < 1) throw std::invalid_argument("W must have at least one column (refit)");
  ThreadScope threads(opt.num_threads);
  const auto topt = at::TensorOptions().device(parse_device(opt.device)).dtype(parse_dtype(opt.dtype));
  const at::Device dev = topt.device();
  const double elem = opt.dtype == "float32" ? 4 : 8;

  // The batch: what the budget allows (half of what the device has free, less the shared data),
  // checked before any tensor of the refits is made.
  RefitResult res;
  res.bytes_per_refit = bytes_per_refit(n, p, d, elem);
  double budget = std::numeric_limits<double>::infinity();
  if (opt.max_bytes >= 0) {
    const double avail = opt.max_bytes > 0 ? opt.max_bytes : 0.5 * available_bytes(dev);
    if (std::isfinite(avail))
      budget = avail - elem * 3 * static_cast<double>(n) * static_cast<double>(p);
  }
  const double fit_count = std::floor(budget / res.bytes_per_refit);
  if (batch == 0) {
    if (fit_count < 1) throw refit_memory_error(opt, 1, res.bytes_per_refit, budget, "");
    batch = static_cast<int64_t>(std::min<double>(static_cast<double>(K), fit_count));
  } else {
    batch = std::min(batch, K);
    if (static_cast<double>(batch) > fit_count)
      throw refit_memory_error(opt, batch, res.bytes_per_refit, budget, "");
  }
  res.batch = batch;

  const auto t0 = Clock::now();
  Interrupts interrupts(cb);
  auto poll = interrupts.poller();
  // The start of every refit: the fit's point (M = X B + M_res, P = log S^2).
  at::Tensor M0, P0, Omega_ref;
  {
    auto X = to_tensor(in.X, topt);
    M0 = at::mm(X, to_tensor(in.B0, topt)) + to_tensor(in.M0, topt);
    auto S = to_tensor(in.S0, topt);
    P0 = at::log(S * S);
    Omega_ref = to_tensor(in.Omega, topt).to(at::kDouble);
  }
  auto dev_sum = at::zeros({p, p}, Omega_ref.options()), dev_sq = at::zeros_like(dev_sum);
  std::vector<at::Tensor> Bs;
  for (int64_t k0 = 0; k0 < K; k0 += batch) {
    const int64_t kb = std::min(batch, K - k0);
    MatrixView Wk{in.W.data + k0 * n, n, kb};  // columns k0 .. k0 + kb - 1
    auto W = to_tensor(Wk, at::TensorOptions().dtype(at::kDouble)).t().contiguous();  // kb x n
    BatchProblem bp;
    try {
      bp = make_batch_problem(FitInput{in.Y, in.O, in.X}, W, topt);
    } catch (const std::invalid_argument& e) {  // name the refit among all of them
      std::string what = e.what();
      if (what.rfind("refit ", 0) == 0) {
        const auto sp = what.find(':');
        const int64_t k = std::stoll(what.substr(6, sp - 6)) + k0;
        what = "refit " + std::to_string(k) + what.substr(sp);
      }
      throw std::invalid_argument(what);
    }
    BatchModel model(bp);
    Vars x{M0.unsqueeze(0).expand({kb, n, p}).contiguous(),
           P0.unsqueeze(0).expand({kb, n, p}).contiguous()};
    auto run = run_quasi_newton(model, x, opt, poll, nullptr);
    if (run.objective.empty() || !std::isfinite(run.objective.front()))
      throw std::runtime_error("refits " + std::to_string(k0 + 1) + " to " +
                               std::to_string(k0 + kb) +
                               ": the ELBO is not finite at the fit's values");
    model.finish(run, opt.tol, res.steps, res.status);
    c10::NoGradGuard no_grad;
    auto B = batch_least_squares(bp, model.point().M);  // kb x d x p
    Bs.push_back(B.transpose(1, 2).to(at::kCPU, at::kDouble).contiguous());
    auto dev_k = model.profile().cov.Omega.to(at::kDouble) - Omega_ref.unsqueeze(0);
    dev_sum.add_(dev_k.sum(0));
    dev_sq.add_((dev_k * dev_k).sum(0));
    poll();
  }
  res.seconds = seconds_since(t0);
  // (d p) x K column-major: refit k's vec(B_k) is the k-th block of p rows of d (B_k' row-major).
  auto Ball = at::cat(Bs, 0);  // K x p x d
  res.B.nrow = d * p;
  res.B.ncol = K;
  res.B.values.assign(Ball.data_ptr<double>(), Ball.data_ptr<double>() + Ball.numel());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < d * p; ++j)
      if (!std::isfinite(res.B.values[static_cast<size_t>(k * d * p + j)]))
        throw std::runtime_error("refit " + std::to_string(k + 1) +
                                 ": B holds non-finite values after the fit");
  res.Omega_dev_sum = to_matrix(dev_sum);
  res.Omega_dev_sq = to_matrix(dev_sq);
  res.device = dev.str();
  res.dtype = opt.dtype;
  return res;
}

}  // namespace

RefitResult refit(const RefitInput& in, const FitOptions& opt, int64_t batch, const Callbacks& cb) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double per_refit = bytes_per_refit(in.Y.nrow, in.Y.ncol, in.X.ncol,
                                           opt.dtype == "float32" ? 4 : 8);
  return guarded([&] { return refit_impl(in, opt, batch, cb); }, opt.device,
                 [&](double avail, const std::string& detail) {
                   (void)avail;  // the budget, not the device's free memory, sized the batch
                   return refit_memory_error(opt, batch, per_refit, nan, detail);
                 });
}

}  // namespace pln
