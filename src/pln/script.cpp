// script: the same J written in TorchScript, compiled once per process by torch::jit::compile
// and run by the TorchScript graph executor (which fuses and differentiates the graph).
#include <torch/csrc/api/include/torch/jit.h>

#include <mutex>

#include "backend.h"

namespace pln {

namespace {

// Mirrors elbo_rows() / elbo() in elbo.cpp op for op, so both backends give the same trace.
const char* kSource = R"JIT(
def elbo(Y: Tensor, O: Tensor, X: Tensor, w: Tensor, logfact: Tensor, B: Tensor, M: Tensor,
         S: Tensor, Omega: Tensor, logdet: Tensor, half_p: float) -> Tensor:
    S2 = S * S
    Z = O + torch.mm(X, B) + M
    A = torch.exp(Z + 0.5 * S2)
    MO = torch.mm(M, Omega)
    terms = Y * Z - A - logfact + 0.5 * torch.log(S2) - 0.5 * MO * M - 0.5 * S2 * torch.diagonal(Omega).unsqueeze(0)
    rows = terms.sum(1) + 0.5 * logdet + half_p
    return (w * rows).sum()
)JIT";

torch::jit::CompilationUnit& unit() {
  static std::shared_ptr<torch::jit::CompilationUnit> cu;
  static std::once_flag once;
  std::call_once(once, [] { cu = torch::jit::compile(kSource); });
  return *cu;
}

}  // namespace

at::Tensor script_objective(const Problem& pb, const State& st) {
  return unit()
      .run_method("elbo", pb.Y, pb.O, pb.X, pb.w, pb.logfact, st.B, st.M, st.S, st.Omega,
                  st.logdet, 0.5 * static_cast<double>(pb.p))
      .toTensor();
}

namespace {
class Script : public AutogradBackend {
 public:
  using AutogradBackend::AutogradBackend;
  void prepare(State& st) override {
    AutogradBackend::prepare(st);
    unit();  // compile outside the timed loop
  }
  at::Tensor objective(const State& st) override { return script_objective(pb_, st); }
};
}  // namespace

std::unique_ptr<Backend> make_script(const Problem& pb, const FitOptions& opt) {
  return std::make_unique<Script>(pb, opt);
}

}  // namespace pln
