// PLN's ELBO as the backends see it (backends/backend.h), and PLN's backends.
// The quasi-Newton optimiser (optim/quasi_newton.h, the default) asks for the profiled ELBO and
// its gradient at points of its own: value(), gradient() of the shared interface, at a Point (M, P)
// with its closed-form blocks (Profile, elbo.h), computed once per point by the model
// (model.cpp) and shared by the evaluation and the curvature.
//
// PLN alone also has the tutorial's first-order rules (Adam, Rprop): the backend runs whole steps
// (step()) that compute J at the current state, move B, M, S by the rule and refresh Sigma / Omega
// in closed form without a host sync, which the fused CUDA backend replays as a CUDA graph. That
// is a second face of PLN's backends (PlnBackend below), not of the shared interface: a model
// fitted by the quasi-Newton optimiser alone needs none of it.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "models/pln/elbo.h"
#include "models/pln/problem.h"
#include "optim/first_order.h"

namespace pln {

struct PlnElbo {
  using Problem = pln::Problem;
  using Point = pln::Point;
  using Context = Profile;
  struct Gradient {
    at::Tensor M, P;  // dJ/dM, dJ/dP
    at::Tensor A;     // exp(O + M + S2 / 2), for the curvature (curvature.h)
  };

  static at::Tensor weights(const Problem& pb) { return pb.w; }
  // J_i (elbo_rows_latent() of elbo.h) by technique: eager, op by op; script, its TorchScript copy
  // (script.cpp).
  static at::Tensor latent_rows(const Problem& pb, Technique t, const at::Tensor& Z,
                                const at::Tensor& M, const at::Tensor& S2, const at::Tensor& logS2,
                                const at::Tensor& Omega, const at::Tensor& logdet);
  static at::Tensor rows(const Problem& pb, Technique t, const Point& x, const Profile& prof) {
    return latent_rows(pb, t, pb.O + x.M, prof.Mres, prof.S2, x.P, prof.cov.Omega,
                       prof.cov.logdet);
  }
  static std::vector<at::Tensor> variables(const Point& x) { return {x.M, x.P}; }
  // B and Omega enter at their closed form, held fixed: the gradient there is the profiled one.
  static at::Tensor rows_of(const Problem& pb, Technique t, const std::vector<at::Tensor>& v,
                            const Profile& prof) {
    return latent_rows(pb, t, pb.O + v[0], residual(pb, v[0]), at::exp(v[1]), v[1],
                       prof.cov.Omega, prof.cov.logdet);
  }
  static Gradient gradient(const Problem& pb, const Point& x, const Profile& prof,
                           const std::vector<at::Tensor>& g);
};

class PlnBackend : public Backend<PlnElbo> {
 public:
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

// eager or script (autograd.h) with the first-order step of autograd.cpp.
std::unique_ptr<PlnBackend> make_autograd(const Problem& pb, const FitOptions& opt, Technique t);
std::unique_ptr<PlnBackend> make_fused(const Problem& pb, const FitOptions& opt);
#ifdef PLN_CUDA_KERNELS
// fused on a CUDA device: kernels and a captured CUDA graph (cuda/fused_cuda.cu).
std::unique_ptr<PlnBackend> make_fused_cuda(const Problem& pb, const FitOptions& opt);
#endif
// opt.backend's backend for the problem.
std::unique_ptr<PlnBackend> make_backend(const Problem& pb, const FitOptions& opt);

// J at a state (B, M, S and its Omega) by each evaluation path, for tests and get_ELBO(): elbo()
// of elbo.h, its TorchScript copy (script.cpp), and the first-order step's (autograd.cpp).
at::Tensor eager_objective(const Problem& pb, const State& st);
at::Tensor script_objective(const Problem& pb, const State& st);
at::Tensor autograd_objective(const Problem& pb, Technique t, const State& st);

// The TorchScript copy of elbo_rows_latent() (script.cpp), and its compilation (done once).
at::Tensor script_rows(const Problem& pb, const at::Tensor& Z, const at::Tensor& M,
                       const at::Tensor& S2, const at::Tensor& logS2, const at::Tensor& Omega,
                       const at::Tensor& logdet);
void compile_script();

}  // namespace pln
