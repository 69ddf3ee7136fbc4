// PLN-PCA's J and gradient by each backend: eager (the reference objective op by op, autograd),
// script (the same in TorchScript, autograd), fused (the low-rank passes, analytic gradient).
#include <stdexcept>

#include "backends/autograd.h"
#include "backends/script.h"
#include "models/pca/model.h"

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

torch::jit::CompilationUnit& unit() { return compiled(kSource); }

class FusedPca : public PcaBackend {
 public:
  explicit FusedPca(const PcaProblem& pb) : pb_(pb) {}
  at::Tensor value(const Vars& x, const Context&) override {
    return at::sum(pb_.w * pca_rows_pass(pb_, x), at::kDouble);
  }
  Vars gradient(const Vars& x, const Context&) override { return pca_gradient_pass(pb_, x); }

 private:
  const PcaProblem& pb_;
};

}  // namespace

at::Tensor pca_rows_script(const PcaProblem& pb, const Vars& x) {
  return unit()
      .run_method("rows", pb.Ydense, pb.O, pb.X, pb.lfact_row, x[kB], x[kC], x[kM], x[kP])
      .toTensor();
}

at::Tensor PcaElbo::rows(const Problem& pb, Technique t, const Point& x, const Context&) {
  return t == Technique::script ? pca_rows_script(pb, x) : pca_rows_reference(pb, x);
}

std::unique_ptr<PcaBackend> make_pca_backend(const PcaProblem& pb, const std::string& backend) {
  const Technique t = parse_technique(backend);
  if (t == Technique::fused) return std::make_unique<FusedPca>(pb);
  if (t == Technique::script) unit();  // compile during setup
  return std::make_unique<AutogradBackend<PcaElbo>>(pb, t);
}

}  // namespace pln
