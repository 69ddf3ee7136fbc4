// eager: J evaluated op by op with ATen, differentiated by autograd.
#include <torch/csrc/autograd/autograd.h>

#include "backend.h"
#include "elbo.h"

namespace pln {

AutogradBackend::AutogradBackend(const Problem& pb, const FitOptions& opt)
    : pb_(pb), optim_(make_optimizer(opt.optimizer, opt.lr)) {}

at::Tensor AutogradBackend::objective(const State& st) {
  auto S2 = st.S * st.S;
  return (pb_.w * rows(pb_.O + at::mm(pb_.X, st.B) + st.M, st.M, S2, at::log(S2), st.Omega,
                       st.logdet)).sum();
}

at::Tensor AutogradBackend::value(const Point& x, const Profile& prof) {
  c10::NoGradGuard no_grad;
  return at::sum(pb_.w * rows(pb_.O + x.M, prof.Mres, prof.S2, x.P, prof.cov.Omega,
                      prof.cov.logdet),
                 at::kDouble);
}

void AutogradBackend::gradient(const Point& x, const Profile& prof, at::Tensor& gM, at::Tensor& gP,
                               at::Tensor& A) {
  // B and Omega enter at their closed form, held fixed: the gradient there is the profiled one.
  auto M = x.M.detach().requires_grad_(true);
  auto P = x.P.detach().requires_grad_(true);
  auto S2 = at::exp(P);
  auto J = (pb_.w * rows(pb_.O + M, residual(pb_, M), S2, P, prof.cov.Omega,
                       prof.cov.logdet)).sum();
  auto g = torch::autograd::grad({J}, {M, P});
  gM = g[0];
  gP = g[1];
  c10::NoGradGuard no_grad;
  A = at::exp(pb_.O + x.M + 0.5 * prof.S2);
}

void AutogradBackend::prepare(State& st) {
  st.B = st.B.detach().requires_grad_(true);
  st.M = st.M.detach().requires_grad_(true);
  st.S = st.S.detach().requires_grad_(true);
}

at::Tensor AutogradBackend::step(State& st) {
  auto J = objective(st);
  auto g = torch::autograd::grad({J}, {st.B, st.M, st.S});
  optim_->step({st.B, st.M, st.S}, g);
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
  at::Tensor rows(const at::Tensor& Z, const at::Tensor& M, const at::Tensor& S2,
                  const at::Tensor& logS2, const at::Tensor& Omega,
                  const at::Tensor& logdet) override {
    return elbo_rows_latent(pb_, Z, M, S2, logS2, Omega, logdet);
  }
};
}  // namespace

std::unique_ptr<Backend> make_eager(const Problem& pb, const FitOptions& opt) {
  return std::make_unique<Eager>(pb, opt);
}

}  // namespace pln
