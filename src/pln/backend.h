// One interface for every backend: a step computes J at the current state, moves B, M, S by
// the optimiser and refreshes Sigma / Omega in closed form, all without a host sync.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "optim.h"
#include "problem.h"

namespace pln {

class Backend {
 public:
  virtual ~Backend() = default;
  // Compilation and anything else done once before the timed loop.
  virtual void prepare(State& st) { (void)st; }
  // Returns J before the step as a 0-dim tensor on the fit's device.
  virtual at::Tensor step(State& st) = 0;
  // Runs `count` steps, writing J of step t0 + s into trace[t0 + s], with no host sync. A backend
  // may replace this (the fused CUDA backend replays a captured CUDA graph).
  virtual void run(State& st, at::Tensor& trace, int64_t t0, int64_t count) {
    for (int64_t s = 0; s < count; ++s) trace[t0 + s].copy_(step(st));
  }
};

// Backends that differentiate J with autograd and share the optimiser and the covariance step;
// they differ only in how J is evaluated.
class AutogradBackend : public Backend {
 public:
  AutogradBackend(const Problem& pb, const FitOptions& opt);
  void prepare(State& st) override;
  at::Tensor step(State& st) override;
  virtual at::Tensor objective(const State& st) = 0;

 protected:
  const Problem& pb_;
  std::unique_ptr<Optimizer> optim_;  // null for newton, whose update is newton_update()
};

std::unique_ptr<Backend> make_backend(const Problem& pb, const FitOptions& opt);
std::vector<std::string> available_backends();

// J via each evaluation path, for tests and for the R side's get_ELBO().
at::Tensor eager_objective(const Problem& pb, const State& st);
at::Tensor script_objective(const Problem& pb, const State& st);

std::unique_ptr<Backend> make_eager(const Problem& pb, const FitOptions& opt);
std::unique_ptr<Backend> make_script(const Problem& pb, const FitOptions& opt);
std::unique_ptr<Backend> make_fused(const Problem& pb, const FitOptions& opt);
#ifdef PLN_CUDA_KERNELS
// fused on a CUDA device: kernels and a captured CUDA graph (fused_cuda.cu).
std::unique_ptr<Backend> make_fused_cuda(const Problem& pb, const FitOptions& opt);
#endif

}  // namespace pln
