// The quasi-Newton optimiser's stopping rule (optim/quasi_newton.h): "converged" is earned, at a
// point where J, its gradient and the predicted gain are finite.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "optim/quasi_newton.h"

namespace {

// J(x) = -sum (x - c)^2 / 2 with the exact curvature, or, with nan_gradient, the same J whose
// gradient is NaN (a gradient that overflowed where J did not).
class Quadratic : public pln::QuasiNewtonModel {
 public:
  explicit Quadratic(bool nan_gradient) : nan_(nan_gradient) {}
  double value(const pln::Vars& x) override {
    trial_ = x[0];
    return -0.5 * (trial_ - 3).pow(2).sum().item<double>();
  }
  void accept() override { x_ = trial_; }
  pln::Vars gradient() override {
    if (nan_) return {at::full_like(x_, std::numeric_limits<double>::quiet_NaN())};
    return {3 - x_};
  }
  pln::Vars precondition(const pln::Vars& q) override { return {q[0].clone()}; }

 private:
  bool nan_;
  at::Tensor trial_, x_;
};

pln::FitOptions qn_options() {
  pln::FitOptions o;
  o.maxit = 50;
  o.tol = 1e-9;
  return o;
}

}  // namespace

TEST_CASE("status: a NaN gradient at a finite J is never converged") {
  Quadratic model(true);
  pln::Vars x{at::zeros({4}, at::kDouble)};
  auto r = pln::run_quasi_newton(model, x, qn_options(), [] {}, nullptr);
  CHECK(std::isfinite(r.objective.front()));
  CHECK(r.status == "stalled");
  CHECK(r.iterations == 0);
  CHECK(std::isnan(r.predicted_gain));
}

TEST_CASE("status: a finite model converges at its optimum") {
  Quadratic model(false);
  pln::Vars x{at::zeros({4}, at::kDouble)};
  auto r = pln::run_quasi_newton(model, x, qn_options(), [] {}, nullptr);
  CHECK(r.status == "converged");
  CHECK(r.iterations >= 1);
  CHECK(std::isfinite(r.predicted_gain));
  CHECK(x[0].sub(3).abs().max().item<double>() < 1e-6);
}
