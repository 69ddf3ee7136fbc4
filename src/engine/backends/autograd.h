// eager and script for every model: J = sum_i w_i J_i from the model's per-row objective, its
// gradient by autograd. They differ only in how the rows are evaluated (Objective::rows with
// Technique::eager, ATen op by op; with Technique::script, the model's TorchScript function).
// Besides backend.h's types, Objective supplies:
//   static at::Tensor weights(const Problem&);                 the row weights w (n)
//   static at::Tensor rows(const Problem&, Technique, const Point&, const Context&);
//                                                              J_i at a point (n)
//   static std::vector<at::Tensor> variables(const Point&);    the tensors J is differentiated in
//   static at::Tensor rows_of(const Problem&, Technique, const std::vector<at::Tensor>& v,
//                             const Context&);                 J_i from those tensors, differentiable
//   static Gradient gradient(const Problem&, const Point&, const Context&,
//                            const std::vector<at::Tensor>& g);  the Gradient from dJ/dv
// Base: the interface the backend implements: Backend<Objective>, or a model's extension of it.
#pragma once

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <vector>

#include "backends/backend.h"

namespace pln {

template <class Objective, class Base = Backend<Objective>>
class AutogradBackend : public Base {
 public:
  using Point = typename Objective::Point;
  using Context = typename Objective::Context;
  using Gradient = typename Objective::Gradient;
  using Problem = typename Objective::Problem;

  AutogradBackend(const Problem& pb, Technique technique) : pb_(pb), technique_(technique) {}

  at::Tensor value(const Point& x, const Context& ctx) override {
    c10::NoGradGuard no_grad;
    return at::sum(Objective::weights(pb_) * Objective::rows(pb_, technique_, x, ctx), at::kDouble);
  }

  Gradient gradient(const Point& x, const Context& ctx) override {
    std::vector<at::Tensor> v;
    for (const auto& t : Objective::variables(x)) v.push_back(t.detach().requires_grad_(true));
    auto J = (Objective::weights(pb_) * Objective::rows_of(pb_, technique_, v, ctx)).sum();
    auto g = torch::autograd::grad({J}, v);
    return Objective::gradient(pb_, x, ctx, std::vector<at::Tensor>(g.begin(), g.end()));
  }

  Technique technique() const { return technique_; }

 protected:
  const Problem& pb_;
  Technique technique_;
};

}  // namespace pln
