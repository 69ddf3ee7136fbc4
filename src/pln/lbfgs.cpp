#include "lbfgs.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <vector>

#include "curvature.h"

namespace pln {

namespace {

constexpr double kArmijo = 1e-4;   // sufficient increase: J(x + t d) >= J + kArmijo t g'd
constexpr int kBacktracks = 30;    // halvings (or less) of t before the direction is given up

// A pair (M, P) of n x p tensors: the optimiser's vectors.
struct Pair {
  at::Tensor M, P;
};

at::Tensor dot(const Pair& a, const Pair& b) {
  return at::dot(a.M.reshape(-1), b.M.reshape(-1)) + at::dot(a.P.reshape(-1), b.P.reshape(-1));
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

double dot_as(const Pair& a, const Pair& b, double) {
  if (!(plain(a.M) && plain(a.P) && plain(b.M) && plain(b.P))) return dot(a, b).item<double>();
  return a.M.scalar_type() == at::kDouble
             ? dot_cpu<double>(a.M, b.M) + dot_cpu<double>(a.P, b.P)
             : dot_cpu<float>(a.M, b.M) + dot_cpu<float>(a.P, b.P);
}
at::Tensor dot_as(const Pair& a, const Pair& b, const at::Tensor&) { return dot(a, b); }
void axpy(Pair& a, double c, const Pair& b) {  // a += c b
  if (!(plain(a.M) && plain(a.P) && plain(b.M) && plain(b.P))) {
    a.M.add_(b.M, c);
    a.P.add_(b.P, c);
  } else if (a.M.scalar_type() == at::kDouble) {
    axpy_cpu<double>(a.M, c, b.M);
    axpy_cpu<double>(a.P, c, b.P);
  } else {
    axpy_cpu<float>(a.M, c, b.M);
    axpy_cpu<float>(a.P, c, b.P);
  }
}
void axpy(Pair& a, const at::Tensor& c, const Pair& b) {
  a.M.addcmul_(b.M, c);
  a.P.addcmul_(b.P, c);
}

struct Memory {
  Pair s, y;          // step and change of the gradient of -J
  at::Tensor rho;     // 1 / s'y, on the device
  double rho_host;    // the same on the host
  const at::Tensor& coef(const at::Tensor&) const { return rho; }
  double coef(double) const { return rho_host; }
};

class QuasiNewton {
 public:
  QuasiNewton(const Problem& pb, Backend& backend) : pb_(pb), backend_(backend) {}

  // The initial inverse Hessian: the model's curvature at the current point.
  Pair precondition(const Pair& q) const {
    Pair r;
    pln::precondition(pb_, prof_, A_, q.M, q.P, r.M, r.P);
    return r;
  }

  // L-BFGS's two loops over the pairs kept, around the preconditioner; S is the scalars' type.
  template <typename S>
  Pair two_loops() const {
    Pair q{g_.M.clone(), g_.P.clone()};
    std::vector<S> alpha(mem_.size());
    for (size_t k = mem_.size(); k-- > 0;) {
      alpha[k] = mem_[k].coef(S()) * dot_as(mem_[k].s, q, S());
      axpy(q, -alpha[k], mem_[k].y);
    }
    Pair r = precondition(q);
    for (size_t k = 0; k < mem_.size(); ++k) {
      S beta = mem_[k].coef(S()) * dot_as(mem_[k].y, r, S());
      axpy(r, alpha[k] - beta, mem_[k].s);
    }
    return r;
  }

  Pair direction() const {
    if (mem_.empty()) return precondition(g_);
    return g_.M.is_cuda() ? two_loops<at::Tensor>() : two_loops<double>();
  }

  // Evaluates J at x (and keeps the point's profile); NaN when Sigma is not positive definite.
  double value(const Point& x, Profile& prof) {
    prof = profile(pb_, x);
    return backend_.value(x, prof).item<double>();
  }

  void gradient() {
    at::Tensor gM, gP, A;
    backend_.gradient(x_, prof_, gM, gP, A);
    g_ = {gM, gP};
    A_ = A;
  }

  // Backtracking along d from x_ (slope = g'd > 0): the accepted point's J, or NaN.
  double line_search(const Pair& d, double slope, Point& xt, Profile& pt) {
    double t = 1;
    for (int k = 0; k < kBacktracks; ++k) {
      xt = {at::add(x_.M, d.M, t), at::add(x_.P, d.P, t)};
      const double Jt = value(xt, pt);
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

  QuasiNewtonResult run(const FitOptions& opt, State& st, const std::function<void()>& poll,
                        const std::function<void(int64_t, double)>& progress) {
    QuasiNewtonResult res;
    x_ = to_point(pb_, st);
    J_ = value(x_, prof_);
    res.objective.push_back(J_);
    if (!std::isfinite(J_)) return res;  // the caller names the starting values
    gradient();
    double last_gain = std::numeric_limits<double>::infinity();
    res.status = "maxit";
    while (res.iterations < opt.maxit) {
      poll();
      Pair d = direction();
      double slope = dot_as(g_, d, 0.0);
      if (!(slope > 0) && !mem_.empty()) {  // the pairs lost the ascent: start them afresh
        mem_.clear();
        d = precondition(g_);
        slope = dot_as(g_, d, 0.0);
      }
      res.predicted_gain = slope / std::fabs(J_);
      // Stationary: neither the last step nor the next one changes J by a relative tol.
      if (!(slope > 0) || (last_gain < opt.tol && res.predicted_gain < opt.tol)) {
        res.status = "converged";
        break;
      }
      Point xt;
      Profile pt;
      double Jt = line_search(d, slope, xt, pt);
      if (!std::isfinite(Jt) && !mem_.empty()) {  // once more along the preconditioned gradient
        mem_.clear();
        d = precondition(g_);
        slope = dot_as(g_, d, 0.0);
        res.predicted_gain = slope / std::fabs(J_);
        Jt = line_search(d, slope, xt, pt);
      }
      if (!std::isfinite(Jt)) {
        // No increase J can represent: converged at the precision of the fit when the predicted
        // gain is below tol, stalled otherwise.
        res.status = res.predicted_gain < opt.tol ? "converged" : "stalled";
        break;
      }
      // Accepted: the pair (s, y) with s = t d, y = g - g_new (the change of the gradient of -J).
      Pair g_old = g_;
      x_ = xt;
      prof_ = pt;
      last_gain = (Jt - J_) / std::fabs(Jt);
      J_ = Jt;
      gradient();
      Memory m{{d.M.mul_(t_), d.P.mul_(t_)}, {g_old.M.sub_(g_.M), g_old.P.sub_(g_.P)}, {}, 0};
      at::Tensor sy;  // s'y: a 0-dim tensor too on a GPU, for the two loops' device scalars
      if (g_.M.is_cuda()) sy = dot(m.s, m.y);
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
    to_state(pb_, x_, prof_, st);
    return res;
  }

 private:
  const Problem& pb_;
  Backend& backend_;
  Point x_;
  Profile prof_;
  double J_ = 0, t_ = 1;
  Pair g_;
  at::Tensor A_;
  std::deque<Memory> mem_;
};

}  // namespace

QuasiNewtonResult run_quasi_newton(const Problem& pb, Backend& backend, const FitOptions& opt,
                                   State& st, const std::function<void()>& poll,
                                   const std::function<void(int64_t, double)>& progress) {
  QuasiNewton qn(pb, backend);
  return qn.run(opt, st, poll, progress);
}

}  // namespace pln
