// script: the same J written in TorchScript, compiled once per process by torch::jit::compile
// and run by the TorchScript graph executor (which fuses and differentiates the graph).
#include "backends/script.h"
#include "models/pln/backend.h"

namespace pln {

namespace {

// Mirrors elbo_rows_latent() / elbo() in elbo.cpp op for op (and times_omega(), omega_diagonal() of
// covariance.cpp), so both backends give the same trace.
const char* kSource = R"JIT(
def rows(Y: Tensor, lconst_row: Tensor, Z: Tensor, M: Tensor, S2: Tensor, logS2: Tensor,
         Omega: Tensor, logdet: Tensor, half_p: float) -> Tensor:
    U = Z + 0.5 * S2 - torch.log(torch.clamp_min(Y, 1.0))
    E = torch.expm1(U)
    zero = (Y == 0).to(Z.dtype)
    poisson = -Y * (E - U) - 0.5 * Y * S2 - zero * (E + 1)
    if Omega.dim() == 1:
        MO = M * Omega.unsqueeze(0)
        dO = Omega
    else:
        MO = torch.mm(M, Omega)
        dO = torch.diagonal(Omega)
    terms = poisson + 0.5 * logS2 - 0.5 * MO * M - 0.5 * S2 * dO.unsqueeze(0)
    return terms.sum(1) + lconst_row + 0.5 * logdet + half_p

def elbo(Y: Tensor, O: Tensor, X: Tensor, w: Tensor, lconst_row: Tensor, B: Tensor, M: Tensor,
         S: Tensor, Omega: Tensor, logdet: Tensor, half_p: float) -> Tensor:
    S2 = S * S
    r = rows(Y, lconst_row, O + torch.mm(X, B) + M, M, S2, torch.log(S2), Omega, logdet, half_p)
    return (w * r).sum()
)JIT";

torch::jit::CompilationUnit& unit() { return compiled(kSource); }

double half_p(const Problem& pb) { return 0.5 * static_cast<double>(pb.p); }

}  // namespace

at::Tensor script_objective(const Problem& pb, const State& st) {
  return unit()
      .run_method("elbo", pb.Y, pb.O, pb.X, pb.w, pb.lconst_row, st.B, st.M, st.S, st.Omega,
                  st.logdet, half_p(pb))
      .toTensor();
}

void compile_script() { unit(); }

at::Tensor script_rows(const Problem& pb, const at::Tensor& Z, const at::Tensor& M,
                       const at::Tensor& S2, const at::Tensor& logS2, const at::Tensor& Omega,
                       const at::Tensor& logdet) {
  return unit()
      .run_method("rows", pb.Y, pb.lconst_row, Z, M, S2, logS2, Omega, logdet, half_p(pb))
      .toTensor();
}

}  // namespace pln
