// PLN-PCA's J and gradient by each backend: eager (the reference objective op by op, autograd),
// script (the same in TorchScript, autograd), fused (the low-rank passes, analytic gradient).
#include <torch/csrc/api/include/torch/jit.h>
#include <torch/csrc/autograd/autograd.h>

#include <mutex>
#include <stdexcept>

#include "pca.h"

namespace pln {

namespace {

// Mirrors pca_rows_reference() in pca.cpp op for op.
const char* kSource = R"JIT(
def rows(Y: Tensor, O: Tensor, X: Tensor, lfact_row: Tensor, B: Tensor, C: Tensor, M: Tensor,
         P: Tensor) -> Tensor:
    S2 = torch.exp(P)
    if O.dim() == 1:
        O2 = O.unsqueeze(1)
    else:
        O2 = O
    Z = O2 + torch.mm(X, B) + torch.mm(M, C.t())
    A = torch.exp(Z + 0.5 * torch.mm(S2, (C * C).t()))
    return (Y * Z - A).sum(1) - lfact_row - 0.5 * (M * M + S2 - P - 1).sum(1)
)JIT";

torch::jit::CompilationUnit& unit() {
  static std::shared_ptr<torch::jit::CompilationUnit> cu;
  static std::once_flag once;
  std::call_once(once, [] { cu = torch::jit::compile(kSource); });
  return *cu;
}

using RowsFn = at::Tensor (*)(const PcaProblem&, const Vars&);

// eager and script: J of their rows, differentiated by autograd.
class AutogradPca : public PcaBackend {
 public:
  AutogradPca(const PcaProblem& pb, RowsFn rows) : pb_(pb), rows_(rows) {}
  at::Tensor value(const Vars& x) override {
    c10::NoGradGuard no_grad;
    return at::sum(pb_.w * rows_(pb_, x), at::kDouble);
  }
  Vars gradient(const Vars& x) override {
    Vars v;
    for (const auto& t : x) v.push_back(t.detach().requires_grad_(true));
    auto J = (pb_.w * rows_(pb_, v)).sum();
    auto g = torch::autograd::grad({J}, v);
    return Vars(g.begin(), g.end());
  }

 private:
  const PcaProblem& pb_;
  RowsFn rows_;
};

class FusedPca : public PcaBackend {
 public:
  explicit FusedPca(const PcaProblem& pb) : pb_(pb) {}
  at::Tensor value(const Vars& x) override {
    return at::sum(pb_.w * pca_rows_pass(pb_, x), at::kDouble);
  }
  Vars gradient(const Vars& x) override { return pca_gradient_pass(pb_, x); }

 private:
  const PcaProblem& pb_;
};

}  // namespace

at::Tensor pca_rows_script(const PcaProblem& pb, const Vars& x) {
  return unit()
      .run_method("rows", pb.Ydense, pb.O, pb.X, pb.lfact_row, x[kB], x[kC], x[kM], x[kP])
      .toTensor();
}

std::unique_ptr<PcaBackend> make_pca_backend(const PcaProblem& pb, const std::string& backend) {
  if (backend == "eager") return std::make_unique<AutogradPca>(pb, pca_rows_reference);
  if (backend == "script") {
    unit();  // compile during setup
    return std::make_unique<AutogradPca>(pb, pca_rows_script);
  }
  if (backend == "fused") return std::make_unique<FusedPca>(pb);
  throw std::invalid_argument("unknown backend '" + backend + "' (use 'eager', 'script' or 'fused')");
}

}  // namespace pln
