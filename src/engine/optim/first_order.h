// Adam and Rprop with PyTorch's definitions, written as ascent on J (the gradient passed in is
// dJ/dtheta; PyTorch minimises -J, which gives the same iterates). The fused backend repeats
// this arithmetic inside its kernels; the constants below are shared with it.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>  // c10::NoGradGuard (ATen/ATen.h no longer brings it in 2.x)

#include <memory>
#include <string>
#include <vector>

namespace pln {

struct AdamConst {
  static constexpr double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};
struct RpropConst {
  static constexpr double eta_minus = 0.5, eta_plus = 1.2, step_min = 1e-6, step_max = 50;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Updates params in place (under no-grad) from the ascent directions grads.
  virtual void step(const std::vector<at::Tensor>& params,
                    const std::vector<at::Tensor>& grads) = 0;
  int64_t steps() const { return t_; }

 protected:
  int64_t t_ = 0;
};

class Adam : public Optimizer {
 public:
  explicit Adam(double lr) : lr_(lr) {}
  void step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads) override;
  // Moments of one parameter, created on first use (the fused backend reads them).
  std::vector<at::Tensor> m, v;

 private:
  double lr_;
};

class Rprop : public Optimizer {
 public:
  explicit Rprop(double lr) : lr_(lr) {}
  void step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads) override;
  std::vector<at::Tensor> prev, step_size;

 private:
  double lr_;
};

// Adam or Rprop; null for "lbfgs" (the quasi-Newton optimiser of lbfgs.h, which has a loop of its
// own).
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, double lr);

}  // namespace pln
