// One interface for every backend. Two optimisation paths use it:
// - the quasi-Newton optimiser (lbfgs.h, the default) asks for the profiled ELBO and its gradient
//   at points of its own (value(), gradient());
// - the first-order rules (Adam, Rprop) run whole steps: step() computes J at the current state,
//   moves B, M, S by the rule and refreshes Sigma / Omega in closed form, without a host sync.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "elbo.h"
#include "optim.h"
#include "problem.h"

namespace pln {

class Backend {
 public:
  virtual ~Backend() = default;

  // The profiled ELBO (elbo.h) at x, whose closed-form blocks are prof = profile(pb, x): a 0-dim
  // tensor on the fit's device, non-finite where prof.logdet is.
  virtual at::Tensor value(const Point& x, const Profile& prof) = 0;
  // At the point of the last value() call: the gradient of the profiled ELBO in (M, P), and
  // A = exp(O + M + S2 / 2) for the preconditioner.
  virtual void gradient(const Point& x, const Profile& prof, at::Tensor& gM, at::Tensor& gP,
                        at::Tensor& A) = 0;

  // First-order rules. Compilation and anything else done once before the timed loop.
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
// they differ only in how the per-row ELBO (elbo_rows_latent() of elbo.h) is evaluated.
class AutogradBackend : public Backend {
 public:
  AutogradBackend(const Problem& pb, const FitOptions& opt);
  at::Tensor value(const Point& x, const Profile& prof) override;
  void gradient(const Point& x, const Profile& prof, at::Tensor& gM, at::Tensor& gP,
                at::Tensor& A) override;
  void prepare(State& st) override;
  at::Tensor step(State& st) override;
  virtual at::Tensor rows(const at::Tensor& Z, const at::Tensor& M, const at::Tensor& S2,
                          const at::Tensor& logS2, const at::Tensor& Omega,
                          const at::Tensor& logdet) = 0;
  // J at (B, M, S) and the state's Omega.
  at::Tensor objective(const State& st);

 protected:
  const Problem& pb_;
  std::unique_ptr<Optimizer> optim_;  // null for the quasi-Newton optimiser
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
