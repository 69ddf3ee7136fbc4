// eager and script for PLN: its per-row ELBO by technique for the shared autograd backend
// (backends/autograd.h), and the first-order step of both (autograd of J at B, M, S, the rule of
// optim/first_order.h, Sigma / Omega in closed form).
#include <torch/csrc/autograd/autograd.h>

#include "backends/autograd.h"
#include "models/pln/backend.h"
#include "models/pln/elbo.h"

namespace pln {

at::Tensor PlnElbo::latent_rows(const Problem& pb, Technique t, const at::Tensor& Z,
                                     const at::Tensor& M, const at::Tensor& S2,
                                     const at::Tensor& logS2, const at::Tensor& Omega,
                                     const at::Tensor& logdet) {
  if (t == Technique::script) return script_rows(pb, Z, M, S2, logS2, Omega, logdet);
  return elbo_rows_latent(pb, Z, M, S2, logS2, Omega, logdet);
}

PlnElbo::Gradient PlnElbo::gradient(const Problem& pb, const Point& x,
                                              const Profile& prof,
                                              const std::vector<at::Tensor>& g) {
  c10::NoGradGuard no_grad;
  return {g[0], g[1], at::exp(pb.O + x.M + 0.5 * prof.S2)};
}

at::Tensor autograd_objective(const Problem& pb, Technique t, const State& st) {
  auto S2 = st.S * st.S;
  return (pb.w * PlnElbo::latent_rows(pb, t, pb.O + at::mm(pb.X, st.B) + st.M, st.M, S2,
                                           at::log(S2), st.Omega, st.logdet))
      .sum();
}

at::Tensor eager_objective(const Problem& pb, const State& st) {
  return elbo(pb, st.B, st.M, st.S, st.Omega, st.logdet);
}

namespace {

class PlnAutograd : public AutogradBackend<PlnElbo, PlnBackend> {
 public:
  PlnAutograd(const Problem& pb, const FitOptions& opt, Technique t)
      : AutogradBackend(pb, t), optim_(make_optimizer(opt.optimizer, opt.lr)) {
    if (t == Technique::script) compile_script();  // during setup, outside the timed loop
  }
  void prepare(State& st) override {
    st.B = st.B.detach().requires_grad_(true);
    st.M = st.M.detach().requires_grad_(true);
    st.S = st.S.detach().requires_grad_(true);
  }
  at::Tensor step(State& st) override {
    auto J = autograd_objective(pb_, technique_, st);
    auto g = torch::autograd::grad({J}, {st.B, st.M, st.S});
    optim_->step({st.B, st.M, st.S}, g);
    update_covariance(pb_, st);
    return J.detach();
  }

 private:
  std::unique_ptr<Optimizer> optim_;  // null for the quasi-Newton optimiser
};

}  // namespace

std::unique_ptr<PlnBackend> make_autograd(const Problem& pb, const FitOptions& opt, Technique t) {
  return std::make_unique<PlnAutograd>(pb, opt, t);
}

std::unique_ptr<PlnBackend> make_backend(const Problem& pb, const FitOptions& opt) {
  const Technique t = parse_technique(opt.backend);
  if (t == Technique::fused) return make_fused(pb, opt);
  return make_autograd(pb, opt, t);
}

}  // namespace pln
