// One backend interface for every model. A model's objective J is evaluated, with its gradient,
// by one of three techniques:
// - eager: the model's per-row objective op by op with ATen, differentiated by autograd;
// - script: the same objective compiled once by TorchScript (script.h), differentiated by autograd;
// - fused: the model's analytic gradient in passes of its own over the data (CPU loops or CUDA
//   kernels), no autograd.
// eager and script are written once for every model (autograd.h); fused is each model's.
//
// A model describes its objective to the backends by a traits struct (models/<model>/backend.h or
// model.h) with:
//   Problem   its data on the fit's device;
//   Point     the optimiser's variables at which J is evaluated;
//   Context   what the model computes once per point and every evaluation there shares (PLN: the
//             closed-form B and Omega; a model without closed-form blocks: an empty struct);
//   Gradient  what its optimiser needs back (the gradient in each variable, and anything else the
//             curvature needs at that point).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace pln {

enum class Technique { eager, script, fused };
// "eager" | "script" | "fused"; throws std::invalid_argument for any other name.
Technique parse_technique(const std::string& name);
// The backends of this build, by name.
std::vector<std::string> available_backends();

template <class Objective>
class Backend {
 public:
  using Point = typename Objective::Point;
  using Context = typename Objective::Context;
  using Gradient = typename Objective::Gradient;
  virtual ~Backend() = default;
  // J at x (a 0-dim tensor on the fit's device), NaN or Inf where it is not defined.
  virtual at::Tensor value(const Point& x, const Context& ctx) = 0;
  // The gradient of J at the point of the last value() call.
  virtual Gradient gradient(const Point& x, const Context& ctx) = 0;
};

}  // namespace pln
