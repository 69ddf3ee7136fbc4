// PLN as a model of the quasi-Newton optimiser (optim/quasi_newton.h): the profiled ELBO in
// (M, P), evaluated by a backend, the closed-form blocks of each point computed once and kept
// beside it, and the model's curvature (curvature.h) as the optimiser's initial inverse Hessian.
#include <cmath>

#include "models/pln/backend.h"
#include "models/pln/curvature.h"
#include "models/pln/model.h"

namespace pln {

namespace {

// PLN as a model of the optimiser: the profiled ELBO in (M, P) (elbo.h), evaluated by a backend,
// with the closed-form blocks of each point kept beside it.
class PlnModel : public QuasiNewtonModel {
 public:
  PlnModel(const Problem& pb, PlnBackend& backend) : pb_(pb), backend_(backend) {}
  double value(const Vars& x) override {
    trial_ = {x[0], x[1]};
    trial_prof_ = profile(pb_, trial_);
    return backend_.value(trial_, trial_prof_).item<double>();
  }
  void accept() override {
    x_ = trial_;
    prof_ = trial_prof_;
  }
  Vars gradient() override {
    auto g = backend_.gradient(x_, prof_);
    A_ = g.A;
    return {g.M, g.P};
  }
  Vars precondition(const Vars& q) override {
    at::Tensor rM, rP;
    pln::precondition(pb_, prof_, A_, q[0], q[1], rM, rP);
    return {rM, rP};
  }
  void to_state(State& st) const { pln::to_state(pb_, x_, prof_, st); }

 private:
  const Problem& pb_;
  PlnBackend& backend_;
  Point trial_, x_;
  Profile trial_prof_, prof_;
  at::Tensor A_;
};

}  // namespace

QuasiNewtonResult run_quasi_newton(const Problem& pb, PlnBackend& backend, const FitOptions& opt,
                                   State& st, const std::function<void()>& poll,
                                   const std::function<void(int64_t, double)>& progress) {
  PlnModel model(pb, backend);
  const Point x0 = to_point(pb, st);
  Vars x{x0.M, x0.P};
  auto res = run_quasi_newton(model, x, opt, poll, progress);
  if (!res.objective.empty() && std::isfinite(res.objective.front())) model.to_state(st);
  return res;
}

}  // namespace pln
