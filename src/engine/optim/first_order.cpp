#include "optim/first_order.h"

#include <cmath>
#include <stdexcept>

namespace pln {

void Adam::step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads) {
  c10::NoGradGuard no_grad;
  if (m.empty()) {
    for (const auto& p : params) {
      m.push_back(at::zeros_like(p));
      v.push_back(at::zeros_like(p));
    }
  }
  ++t_;
  const double bc1 = 1 - std::pow(AdamConst::beta1, static_cast<double>(t_));
  const double bc2 = 1 - std::pow(AdamConst::beta2, static_cast<double>(t_));
  for (size_t k = 0; k < params.size(); ++k) {
    const auto& g = grads[k];
    m[k].mul_(AdamConst::beta1).add_(g, 1 - AdamConst::beta1);
    v[k].mul_(AdamConst::beta2).addcmul_(g, g, 1 - AdamConst::beta2);
    auto denom = (v[k].sqrt() / std::sqrt(bc2)).add_(AdamConst::eps);
    params[k].addcdiv_(m[k], denom, lr_ / bc1);
  }
}

void Rprop::step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads) {
  c10::NoGradGuard no_grad;
  if (prev.empty()) {
    for (const auto& p : params) {
      prev.push_back(at::zeros_like(p));
      step_size.push_back(at::full_like(p, lr_));
    }
  }
  ++t_;
  for (size_t k = 0; k < params.size(); ++k) {
    auto prod = grads[k] * prev[k];
    auto factor = at::where(prod > 0, at::full_like(prod, RpropConst::eta_plus),
                            at::where(prod < 0, at::full_like(prod, RpropConst::eta_minus),
                                      at::ones_like(prod)));
    step_size[k].mul_(factor).clamp_(RpropConst::step_min, RpropConst::step_max);
    // After a sign change the step is skipped and the stored gradient zeroed (PyTorch's rule).
    auto g = at::where(prod < 0, at::zeros_like(prod), grads[k]);
    params[k].addcmul_(g.sign(), step_size[k]);
    prev[k].copy_(g);
  }
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, double lr) {
  if (!(lr > 0) || !std::isfinite(lr)) throw std::invalid_argument("lr must be a positive number");
  if (name == "adam") return std::make_unique<Adam>(lr);
  if (name == "rprop") return std::make_unique<Rprop>(lr);
  if (name == "lbfgs") return nullptr;
  throw std::invalid_argument("unknown optimizer '" + name + "' (use 'lbfgs', 'adam' or 'rprop')");
}

}  // namespace pln
