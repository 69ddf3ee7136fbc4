#include "optim/quasi_newton.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <vector>


namespace pln {

namespace {

constexpr double kArmijo = 1e-4;   // sufficient increase: J(x + t d) >= J + kArmijo t g'd
constexpr int kBacktracks = 30;    // halvings (or less) of t before the direction is given up

at::Tensor dot(const Vars& a, const Vars& b) {
  at::Tensor s = at::dot(a[0].reshape(-1), b[0].reshape(-1));
  for (size_t k = 1; k < a.size(); ++k) s = s + at::dot(a[k].reshape(-1), b[k].reshape(-1));
  return s;
}

// The two loops' scalars: host doubles on the CPU, where the vectors are small enough that a
// dispatched ATen operation costs more than its arithmetic (plain loops, accumulated in double);
// 0-dim tensors on a GPU (no host sync).
template <typename T>
double dot_cpu(const at::Tensor& a, const at::Tensor& b) {
  const T *x = a.data_ptr<T>(), *y = b.data_ptr<T>();
  double s[4] = {0, 0, 0, 0};  // four chains: the adds pipeline (and vectorise) in a fixed order
  const int64_t n = a.numel(), n4 = n - n % 4;
  for (int64_t k = 0; k < n4; k += 4)
    for (int q = 0; q < 4; ++q) s[q] += static_cast<double>(x[k + q]) * y[k + q];
  for (int64_t k = n4; k < n; ++k) s[0] += static_cast<double>(x[k]) * y[k];
  return (s[0] + s[1]) + (s[2] + s[3]);
}
template <typename T>
void axpy_cpu(at::Tensor& a, double c, const at::Tensor& b) {
  T* x = a.data_ptr<T>();
  const T* y = b.data_ptr<T>();
  const T ct = static_cast<T>(c);
  for (int64_t k = 0, n = a.numel(); k < n; ++k) x[k] += ct * y[k];
}
bool plain(const at::Tensor& t) { return t.is_contiguous() && !t.is_cuda(); }
bool plain(const Vars& v) {
  return std::all_of(v.begin(), v.end(), [](const at::Tensor& t) { return plain(t); });
}

double dot_as(const Vars& a, const Vars& b, double) {
  if (!(plain(a) && plain(b))) return dot(a, b).item<double>();
  double s = 0;
  for (size_t k = 0; k < a.size(); ++k)
    s += a[k].scalar_type() == at::kDouble ? dot_cpu<double>(a[k], b[k]) : dot_cpu<float>(a[k], b[k]);
  return s;
}
at::Tensor dot_as(const Vars& a, const Vars& b, const at::Tensor&) { return dot(a, b); }
void axpy(Vars& a, double c, const Vars& b) {  // a += c b
  const bool cpu = plain(a) && plain(b);
  for (size_t k = 0; k < a.size(); ++k) {
    if (!cpu)
      a[k].add_(b[k], c);
    else if (a[k].scalar_type() == at::kDouble)
      axpy_cpu<double>(a[k], c, b[k]);
    else
      axpy_cpu<float>(a[k], c, b[k]);
  }
}
void axpy(Vars& a, const at::Tensor& c, const Vars& b) {
  for (size_t k = 0; k < a.size(); ++k) a[k].addcmul_(b[k], c);
}

struct Memory {
  Vars s, y;          // step and change of the gradient of -J
  at::Tensor rho;     // 1 / s'y, on the device
  double rho_host;    // the same on the host
  const at::Tensor& coef(const at::Tensor&) const { return rho; }
  double coef(double) const { return rho_host; }
};

class QuasiNewton {
 public:
  explicit QuasiNewton(QuasiNewtonModel& model) : model_(model) {}

  // The initial inverse Hessian: the model's curvature at the current point.
  Vars precondition(const Vars& q) const { return model_.precondition(q); }

  // L-BFGS's two loops over the pairs kept, around the preconditioner; S is the scalars' type.
  template <typename S>
  Vars two_loops() const {
    Vars q;
    for (const auto& t : g_) q.push_back(t.clone());
    std::vector<S> alpha(mem_.size());
    for (size_t k = mem_.size(); k-- > 0;) {
      alpha[k] = mem_[k].coef(S()) * dot_as(mem_[k].s, q, S());
      axpy(q, -alpha[k], mem_[k].y);
    }
    Vars r = precondition(q);
    for (size_t k = 0; k < mem_.size(); ++k) {
      S beta = mem_[k].coef(S()) * dot_as(mem_[k].y, r, S());
      axpy(r, alpha[k] - beta, mem_[k].s);
    }
    return r;
  }

  Vars direction() const {
    if (mem_.empty()) return precondition(g_);
    return g_[0].is_cuda() ? two_loops<at::Tensor>() : two_loops<double>();
  }

  // Backtracking along d from x_ (slope = g'd > 0): the accepted point's J (then the model's trial
  // point), or NaN.
  double line_search(const Vars& d, double slope, Vars& xt) {
    double t = std::min(1.0, model_.max_step(d));
    for (int k = 0; k < kBacktracks; ++k) {
      xt.clear();
      for (size_t v = 0; v < x_.size(); ++v) xt.push_back(at::add(x_[v], d[v], t));
      const double Jt = model_.value(xt);
      // Jt > J_ too: where J_ + kArmijo t slope rounds to J_, a step must still increase J.
      if (std::isfinite(Jt) && Jt >= J_ + kArmijo * t * slope && Jt > J_) {
        t_ = t;
        return Jt;
      }
      // The maximiser of the quadratic through J, its slope and Jt, kept within [t / 10, t / 2];
      // a quarter of t where J is not finite (exp() overflowed, or Sigma lost definiteness).
      const double q = std::isfinite(Jt) ? slope * t * t / (2 * (slope * t - (Jt - J_))) : 0;
      t = std::isfinite(Jt) ? std::min(0.5 * t, std::max(0.1 * t, q)) : 0.25 * t;
    }
    return std::numeric_limits<double>::quiet_NaN();
  }

  QuasiNewtonResult run(const FitOptions& opt, Vars& x, const std::function<void()>& poll,
                        const std::function<void(int64_t, double)>& progress) {
    QuasiNewtonResult res;
    x_ = x;
    J_ = model_.value(x_);
    res.objective.push_back(J_);
    if (!std::isfinite(J_)) return res;  // the caller names the starting values
    model_.accept();
    g_ = model_.gradient();
    double last_gain = std::numeric_limits<double>::infinity();
    res.status = "maxit";
    while (res.iterations < opt.maxit) {
      poll();
      Vars d = direction();
      double slope = dot_as(g_, d, 0.0);
      if (!(slope > 0) && !mem_.empty()) {  // the pairs lost the ascent: start them afresh
        mem_.clear();
        d = precondition(g_);
        slope = dot_as(g_, d, 0.0);
      }
      // (relative to |J|; J = 0 exactly, a model's optimum at 0, gives 0 / tiny, not 0 / 0)
      res.predicted_gain = slope / std::max(std::fabs(J_), std::numeric_limits<double>::min());
      // A gradient or a curvature that is not finite at a point where J is (exp() overflowing in
      // the gradient's terms, a curvature block that is not positive definite in float32) gives
      // no direction: the fit ends there, never "converged" (a NaN slope fails every test below).
      if (!std::isfinite(slope)) {
        res.status = "stalled";
        break;
      }
      // Stationary: the gradient vanishes (no ascent along the preconditioned gradient, whose
      // curvature is positive definite), or neither the last step nor the next one changes J by
      // a relative tol.
      if (slope <= 0 || model_.stationary(d, last_gain, res.predicted_gain, opt.tol)) {
        res.status = "converged";
        break;
      }
      Vars xt;
      double Jt = line_search(d, slope, xt);
      if (!std::isfinite(Jt) && !mem_.empty()) {  // once more along the preconditioned gradient
        mem_.clear();
        d = precondition(g_);
        slope = dot_as(g_, d, 0.0);
        res.predicted_gain = slope / std::fabs(J_);
        Jt = line_search(d, slope, xt);
      }
      if (!std::isfinite(Jt)) {
        // No increase J can represent: converged at the precision of the fit when the predicted
        // gain is below tol (a finite number: NaN fails the test), stalled otherwise.
        res.status = std::isfinite(slope) && res.predicted_gain < opt.tol ? "converged" : "stalled";
        break;
      }
      // Accepted: the pair (s, y) with s = t d, y = g - g_new (the change of the gradient of -J).
      Vars g_old = g_;
      x_ = xt;
      model_.accept();
      last_gain = (Jt - J_) / std::fabs(Jt);
      J_ = Jt;
      g_ = model_.gradient();
      Memory m{{}, {}, {}, 0};
      for (size_t v = 0; v < d.size(); ++v) {
        m.s.push_back(d[v].mul_(t_));
        m.y.push_back(g_old[v].sub_(g_[v]));
      }
      at::Tensor sy;  // s'y: a 0-dim tensor too on a GPU, for the two loops' device scalars
      if (g_[0].is_cuda()) sy = dot(m.s, m.y);
      m.rho_host = 1 / (sy.defined() ? sy.item<double>() : dot_as(m.s, m.y, 0.0));
      if (m.rho_host > 0 && std::isfinite(m.rho_host)) {  // J is not concave everywhere: keep
        if (sy.defined()) m.rho = 1 / sy;                  // curvature pairs only
        mem_.push_back(std::move(m));
        if (mem_.size() > static_cast<size_t>(kQuasiNewtonMemory)) mem_.pop_front();
      }
      ++res.iterations;
      res.objective.push_back(J_);
      res.last_gain = last_gain;
      if (progress) progress(res.iterations, J_);
    }
    x = x_;
    return res;
  }

 private:
  QuasiNewtonModel& model_;
  Vars x_;
  double J_ = 0, t_ = 1;
  Vars g_;
  std::deque<Memory> mem_;
};

}  // namespace

QuasiNewtonResult run_quasi_newton(QuasiNewtonModel& model, Vars& x, const FitOptions& opt,
                                   const std::function<void()>& poll,
                                   const std::function<void(int64_t, double)>& progress) {
  QuasiNewton qn(model);
  return qn.run(opt, x, poll, progress);
}

}  // namespace pln
