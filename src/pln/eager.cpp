// eager: J evaluated op by op with ATen, differentiated by autograd.
#include <torch/csrc/autograd/autograd.h>

#include "backend.h"
#include "elbo.h"

namespace pln {

AutogradBackend::AutogradBackend(const Problem& pb, const FitOptions& opt)
    : pb_(pb), optim_(make_optimizer(opt.optimizer, opt.lr)) {}

void AutogradBackend::prepare(State& st) {
  st.B = st.B.detach().requires_grad_(true);
  st.M = st.M.detach().requires_grad_(true);
  st.S = st.S.detach().requires_grad_(true);
}

at::Tensor AutogradBackend::step(State& st) {
  auto J = objective(st);
  if (optim_) {
    auto g = torch::autograd::grad({J}, {st.B, st.M, st.S});
    optim_->step({st.B, st.M, st.S}, g);
  } else {
    auto g = torch::autograd::grad({J}, {st.M});
    newton_update(pb_, st, g[0]);
  }
  update_covariance(pb_, st);
  return J.detach();
}

at::Tensor eager_objective(const Problem& pb, const State& st) {
  return elbo(pb, st.B, st.M, st.S, st.Omega, st.logdet);
}

namespace {
class Eager : public AutogradBackend {
 public:
  using AutogradBackend::AutogradBackend;
  at::Tensor objective(const State& st) override { return eager_objective(pb_, st); }
};
}  // namespace

std::unique_ptr<Backend> make_eager(const Problem& pb, const FitOptions& opt) {
  return std::make_unique<Eager>(pb, opt);
}

}  // namespace pln
